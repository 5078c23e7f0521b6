"""`python -m mfc`: the same as the `mfc` command."""

import sys

from mfc.start import main

sys.exit(main())
