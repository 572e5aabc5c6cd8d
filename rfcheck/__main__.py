"""``python -m rfcheck``: the same as the ``rfcheck`` command."""

import sys

from rfcheck.cli import main

sys.exit(main())
