#!/usr/bin/env python3
"""The local runner's entry point: `.venv/bin/python scripts/runner/runner.py --app NAME ...`.

The runner is the package around this file (its __init__.py says what each module does); this
file only makes that package importable when run as a script, then calls its `main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts this folder first on sys.path, where the package's modules
    # would be importable under their bare names too; the package is imported from scripts/.
    here = Path(__file__).resolve().parent
    if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == here:
        sys.path[0] = str(here.parent)
    else:
        sys.path.insert(0, str(here.parent))
    from runner.cli import main

    sys.exit(main())
