"""`python -m faceguard` runs the command line."""

import sys

from faceguard.cli import main

sys.exit(main())
