"""List Apstra blueprint mutexes held for longer than --older-than, and with
--force-unlock remove them (what a crashed `terraform apply` leaves behind).

Only remove a mutex when you know its holder is gone: the holder may still be
changing the blueprint.

    python examples/stale_locks.py --older-than 7200
    python examples/stale_locks.py --older-than 7200 --force-unlock
"""

from __future__ import annotations

import argparse
import sys

from condlock import ApstraClient


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--older-than", type=float, default=3600.0, help="seconds")
    parser.add_argument("--force-unlock", action="store_true", help="remove the stale mutexes")
    args = parser.parse_args(argv)

    client = ApstraClient()  # APSTRA_URL, APSTRA_USER, APSTRA_PASS
    stale = client.stale_mutexes(older_than=args.older_than)
    for tag in stale:
        age = f"{tag.age:.0f}s" if tag.age is not None else "unknown age"
        print(f"blueprint {tag.blueprint_id}: locked for {age}: {tag.message!r} (tag {tag.id})")
        if args.force_unlock:
            removed = client.force_unlock_tag(tag.id)
            print("  force-unlocked" if removed is not None else "  already gone")
    print(f"{len(stale)} stale mutex(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
