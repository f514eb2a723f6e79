"""`python -m helpers COMMAND`: the course's command line (see helpers/cli.py)."""

import sys

from helpers.cli import main

sys.exit(main())
