"""`python -m gro_core.cli ...` (as torchrun launches one process per rank)."""

import logging
import os
import sys

from gro_core.cli.main import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A rank whose run is over (its process group destroyed, its files closed) leaves without
    # interpreter finalization: that would free gloo's pending work objects, still held by the
    # sharded model's mesh, from gloo's threads while Python is torn down, which aborted a rank
    # at exit once (SIGABRT, "terminate called without an active exception") after success.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
