"""`python -m automation <command>`."""

import sys

from .cli import main

sys.exit(main())
