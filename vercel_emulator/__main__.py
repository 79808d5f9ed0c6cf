"""``python -m vercel_emulator``: the same as the ``vercel-emulator`` console script."""

from vercel_emulator.cli import main

raise SystemExit(main())
