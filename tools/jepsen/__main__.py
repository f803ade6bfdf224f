"""`/usr/bin/python3 -m tools.jepsen --help`: one fault run (see run.py and README.md)."""

import sys

from .run import main

sys.exit(main())
