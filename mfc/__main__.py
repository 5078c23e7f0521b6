"""`python -m mfc`: the same as the `mfc` command."""

import sys

from mfc.cli import main

sys.exit(main())
