"""`python -m gro_core.cli ...` (as torchrun launches one process per rank)."""

import sys

from gro_core.cli.main import main

sys.exit(main())
