"""Datasets: read JSONL / Parquet / saved Hugging Face datasets, validate them row by row,
load them as canonical records, and render chat-message fields with a tokenizer's template.
`gro data validate` is gro_core.data.report (it reads the spec's Hub shape, so the package
itself stays below gro_core.spec).

The four kinds (docs/jobspec.md, "Dataset kinds"): prompt, preference, unpaired, sft.
"""

from gro_core.data.issues import DataIssue, DatasetError
from gro_core.data.kinds import KINDS, detect_kind
from gro_core.data.readers import Bounds, detect_format, iter_rows
from gro_core.data.render import RenderError, render_completion, render_prompt
from gro_core.data.validate import ValidationReport, load_rows, validate_file

__all__ = [
    "KINDS",
    "Bounds",
    "DataIssue",
    "DatasetError",
    "RenderError",
    "ValidationReport",
    "detect_format",
    "detect_kind",
    "iter_rows",
    "load_rows",
    "render_completion",
    "render_prompt",
    "validate_file",
]
