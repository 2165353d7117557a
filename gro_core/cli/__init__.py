"""The `gro` command line: one entry point (`main.py`), one module per verb that needs one.

    main.py      the parser and the verbs' handlers; `python -m gro_core.cli` runs it
    train.py     `gro train SPEC --out DIR [--resume]`
    evaluate.py  `gro eval TARGET [TARGET ...]`
    export.py    `gro export CHECKPOINT --out DIR [--merge-lora] [--dtype D] [--push-to-hub R]`
    quiet.py     the libraries' load reports and progress bars, silenced for both

Verbs import what they run only when called, so `gro --help` and `gro data validate` never
load torch.
"""

from gro_core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
