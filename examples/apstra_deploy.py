"""Wait for an Apstra blueprint's mutex, then deploy: the same mutex the Apstra
Terraform provider takes, so this and `terraform apply` never change the
blueprint at the same time.

The server comes from APSTRA_URL, APSTRA_USER and APSTRA_PASS (as for the
Terraform provider). The mutex also waits while someone holds Apstra's own
blueprint lock in the web UI.

    APSTRA_URL=https://apstra.example APSTRA_USER=admin APSTRA_PASS=... \\
        python examples/apstra_deploy.py --blueprint 801a43ec-96ea-4f08-aa04-1f1faaeeeaf1
"""

from __future__ import annotations

import argparse
import sys

from condlock import ApstraMutex, LockTimeout


def deploy(blueprint_id: str) -> None:
    # Your change: the Apstra API, a playbook, `terraform apply -lock=false`...
    print(f"deploying blueprint {blueprint_id}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blueprint", required=True, help="the blueprint ID")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait at most")
    args = parser.parse_args(argv)

    mutex = ApstraMutex(args.blueprint, message="deploying from examples/apstra_deploy.py at $DATE")
    try:
        held = mutex.acquire(timeout=args.timeout)
    except LockTimeout as e:
        print(f"blueprint still locked after {e.waited or 0:.0f}s: {e.holder}", file=sys.stderr)
        return 1
    with held:  # releases the mutex on leaving, also on errors
        deploy(args.blueprint)
    print("deployed; mutex released", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
