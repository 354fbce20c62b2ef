"""Run a command under a Terraform state's S3 lock, as `terraform apply` holds it.

While the command runs, `terraform plan/apply` on the same state waits (or
fails with "Error acquiring the state lock"), and this script waits for a
running `terraform apply` before it starts. The lock is released when the
block is left, also when the command fails or Ctrl-C is pressed.

    python examples/s3_migration.py --bucket tfstate --key envs/prod/terraform.tfstate \\
        -- ./migrate.sh --apply

Credentials, region and endpoint come from the standard AWS chain (the
environment, AWS_PROFILE and ~/.aws/config, SSO, instance metadata...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from condlock import S3Lock


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the Terraform state's bucket")
    parser.add_argument("--key", required=True, help="the state key (not the .tflock)")
    parser.add_argument("--workspace", default=None, help="Terraform workspace (default: default)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    lock = S3Lock(
        bucket=args.bucket,
        key=args.key,
        workspace=args.workspace,
        operation="OperationTypeApply",  # what `terraform force-unlock` shows
        info="migration: " + " ".join(command),
    )
    with lock as held:  # waits for Terraform or anyone else, however long
        print(f"holding {lock.lock_key} (ID {held.lock_id}); running {command[0]}", flush=True)
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
