"""One side of a case in a fresh interpreter: ``python -m bench.child MODULE:FUNCTION CONFIG_JSON RESULT_PATH``.

Calls ``FUNCTION(config)`` and writes what it returns (a JSON object) to ``RESULT_PATH``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    target, config, result_path = argv
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(json.loads(config))
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
