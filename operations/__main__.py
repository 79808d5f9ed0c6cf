"""python -m operations <command> ...: see ``operations/__init__.py`` and docs/operations.md."""

from __future__ import annotations

import argparse
import sys

from operations import backfill_cli, filter_pattern, preview, replay, stream_failures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m operations", description=__doc__)
    subparsers = parser.add_subparsers(required=True, metavar="command")
    backfill_cli.add_parser(subparsers)
    replay.add_parser(subparsers)
    stream_failures.add_parser(subparsers)
    filter_pattern.add_parser(subparsers)
    preview.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
