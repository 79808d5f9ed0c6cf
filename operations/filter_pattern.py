"""python -m operations filter-pattern --mapping FILE: the stream trigger's filter for the mapping.

Prints the Lambda event filter pattern (one line of JSON) that lets through only the stream records
whose new or old image meets the mapping's ``resources`` conditions; pass it as the template parameter
``PartnerStreamFilterPattern``. Conditions a filter cannot say are listed on stderr and left out
(the function still checks every item). Nothing printed: the mapping takes every item (no filter).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from vercel_sync.mapping import MappingError, read_mapping_file
from vercel_sync.mapping.stream_filter import stream_filter_pattern


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "filter-pattern",
        help="print the stream trigger's filter pattern for a partner mapping (PartnerStreamFilterPattern)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mapping", required=True, help="the partner mapping file (YAML)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        mapping = read_mapping_file(args.mapping)
    except MappingError as error:
        err.write(f"filter-pattern: {error}\n")
        return 2
    pattern, left_out = stream_filter_pattern(mapping)
    for note in left_out:
        err.write(f"filter-pattern: left out of the filter: {note}\n")
    if pattern is None:
        err.write("filter-pattern: nothing to filter on: leave PartnerStreamFilterPattern empty\n")
        return 0
    out.write(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False) + "\n")
    return 0
