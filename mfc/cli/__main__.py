import sys

from mfc.cli import main

sys.exit(main())
