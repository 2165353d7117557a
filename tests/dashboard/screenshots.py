"""Regenerate the README's screenshots: `bash scripts/screenshots` (docs/screenshots/*.png).

A throwaway stack seeded with the demo data, every page in Chromium (the browser test's
tour, then the playground prompting a job trained here), each screenshot reduced to a
128-colour palette so the repository stays small. `--playground`: only the playground's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from tests.dashboard.browser import browser_page, tour
from tests.dashboard.playground import play, trained_job
from tests.dashboard.stack import ROOT, running_stack, seed_demo

OUT = ROOT / "docs" / "screenshots"


def shrink(path: Path, colours: int = 128) -> None:
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colours, method=Image.Quantize.FASTOCTREE)
    small.save(path, optimize=True)


def main() -> None:
    args = sys.argv[1:]
    only_playground = "--playground" in args  # only the newest page's shot
    args = [a for a in args if a != "--playground"]
    out = Path(args[0]) if args else OUT
    with (
        tempfile.TemporaryDirectory(prefix="gro-shots-") as tmp,
        running_stack(Path(tmp), dashboard=True) as stack,
    ):
        seeded = seed_demo(stack)
        with browser_page(width=1280, height=860) as page:
            if not only_playground:
                tour(page, stack.dashboard_url, seeded, out)
            play(page, stack, [trained_job(stack), "builtin:tiny-llama"], out)
    for path in sorted(out.glob("playground.png" if only_playground else "*.png")):
        shrink(path)
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size // 1024} KiB"
        )


if __name__ == "__main__":
    main()
