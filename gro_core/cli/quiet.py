"""What the commands that load models share: the libraries' own output silenced."""

from __future__ import annotations

import os


def quiet_libraries() -> None:
    """transformers prints load reports and progress bars on every model load."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Imported here: transformers is slow to import, and the commands call this only once a
    # spec is known to be valid (an invalid one is reported without loading it).
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
