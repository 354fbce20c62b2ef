"""The ``condlock`` command: ``python -m condlock ...`` and the ``condlock``
console script installed with the wheel.

It is the same program ``cargo install condlock-cli`` builds (run anything
under Terraform's lock, see who holds it, clear stale locks), running inside
the extension module, not a second implementation. ``condlock --help`` lists
the subcommands, the targets and the exit statuses.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and
    return its exit status."""
    from condlock._condlock import run_cli

    args = sys.argv[1:] if argv is None else list(argv)
    return run_cli(["condlock", *args])


if __name__ == "__main__":
    sys.exit(main())
