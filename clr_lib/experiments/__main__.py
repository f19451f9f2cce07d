"""Entry point of ``python -m clr_lib.experiments`` (see :mod:`clr_lib.experiments.cli`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        print(f"python -m clr_lib.experiments: error: {error}", file=sys.stderr)
        sys.exit(2)
