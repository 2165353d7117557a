"""`python -m gro_core.docgen [--check]`."""

import sys

from gro_core.docgen import main

sys.exit(main())
