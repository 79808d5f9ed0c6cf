"""Compile the built artifacts (``.aws-sam/build``) to bytecode, so Lambda does not at each cold start.

    python tools/compile_build.py [.aws-sam/build]

SAM's ``python3.13`` builder unpacks wheels without compiling them, and Lambda mounts a layer
read-only at ``/opt``, so a cold start compiles every module it imports (boto3, botocore,
pydantic, Powertools, httpx and ours) and cannot keep the result: most of a cold start's import
time (the bench's cold-start case, docs/performance.md). ``make build`` runs this after
``sam build``; ``sam deploy`` then packages the ``__pycache__`` folders with the code.

The bytecode is checked by hash, never by time (``unchecked-hash``): a zip does not keep the
modification times a timestamp check compares, and nothing edits the artifacts after the build.
It must be made by the runtime's Python version (3.13): another version's bytecode is ignored.
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import sys
from pathlib import Path

RUNTIME_VERSION = (3, 13)  # template.yaml: Runtime python3.13
OUR_PACKAGE = "vercel_sync"


def uncompiled(root: Path) -> list[Path]:
    """The ``.py`` files below ``root`` without bytecode of this interpreter beside them."""
    missing = []
    for source in root.rglob("*.py"):
        cached = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        if not cached.exists():
            missing.append(source)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", nargs="?", default=".aws-sam/build", type=Path)
    args = parser.parse_args(argv)
    if sys.version_info[:2] != RUNTIME_VERSION:
        print(
            f"compile_build: needs Python {'.'.join(map(str, RUNTIME_VERSION))} (the Lambda runtime's)", file=sys.stderr
        )
        return 2
    artifacts = [path for path in sorted(args.build_dir.iterdir()) if path.is_dir()] if args.build_dir.is_dir() else []
    if not artifacts:
        print(f"compile_build: nothing built in {args.build_dir} (run sam build first)", file=sys.stderr)
        return 2
    ours_left: list[Path] = []
    for artifact in artifacts:
        ok = compileall.compile_dir(
            artifact,
            quiet=1,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        # Test modules and templates shipped inside packages may not compile (Python 2 syntax in a
        # data file, say); they are never imported, so only what stays uncompiled is reported.
        left = uncompiled(artifact)
        sources = sum(1 for _ in artifact.rglob("*.py"))
        print(f"compile_build: {artifact.name}: {sources - len(left)} of {sources} modules compiled")
        if not ok and left:
            for source in left[:10]:
                print(f"  not compiled: {source.relative_to(artifact)}", file=sys.stderr)
        # Our own code (the core package, the handlers) must compile: a module that does not would
        # fail at its first import in Lambda too.
        ours_left += [source for source in left if OUR_PACKAGE in source.parts or artifact.name.endswith("Function")]
    if ours_left:
        print(f"compile_build: {len(ours_left)} of our own modules did not compile", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
