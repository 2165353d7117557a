"""`gro export CHECKPOINT --out DIR [--merge-lora] [--dtype D] [--push-to-hub REPO]`."""

from __future__ import annotations

import sys
from pathlib import Path


def export_command(
    checkpoint: str,
    out: str,
    *,
    merge_lora: bool = False,
    dtype: str = "auto",
    push_to_hub: str | None = None,
    private: bool = False,
) -> int:
    """Exit code 0 when exported (and pushed), 1 when the checkpoint or output is refused."""
    from gro_core.cli.quiet import quiet_libraries

    quiet_libraries()
    from gro_core.models import export

    try:
        written = export.export_checkpoint(
            Path(checkpoint), Path(out), merge_lora=merge_lora, dtype=dtype
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported {checkpoint} -> {written}")
    if push_to_hub:
        url = export.push_to_hub(written, push_to_hub, private=private)
        print(f"pushed {written} to the Hub as {push_to_hub}: {url}")
    return 0
