"""`python -m faceguard` runs the command line."""

import sys

from faceguard.launcher import main

sys.exit(main())
