"""python -m operations <command> ...: see ``operations/__init__.py`` and docs/operations.md."""

from __future__ import annotations

import argparse
import os
import sys

from operations import backfill_cli, filter_pattern, preview, reconcile_cli, replay, stack, stream_failures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m operations", description=__doc__)
    subparsers = parser.add_subparsers(required=True, metavar="command")
    backfill_cli.add_parser(subparsers)
    replay.add_parser(subparsers)
    stream_failures.add_parser(subparsers)
    filter_pattern.add_parser(subparsers)
    preview.add_parser(subparsers)
    reconcile_cli.add_parser(subparsers)
    stack.add_arguments(subparsers)  # --stack-name and --region, on every command above
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        variables = stack.variables_for(args, os.environ, err=sys.stderr)
    except stack.StackError as exc:
        sys.stderr.write(f"python -m operations: {exc}\n")
        return 2
    with stack.exported(variables):
        result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
