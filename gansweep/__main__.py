"""`python -m gansweep ...` is the same as `gansweep ...`."""

import sys

from gansweep.cli import main

sys.exit(main())
