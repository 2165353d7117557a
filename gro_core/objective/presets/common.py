"""What the preset modules share."""

from __future__ import annotations


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


SCALES = {"group": "group", "batch": "batch", "none": "none", True: "group", False: "none"}
"""TRL's scale_rewards (also its older True/False) -> GROConfig.adv_scale."""


def adv_scale(method: str, scale_rewards: str | bool) -> str:
    require(
        scale_rewards in SCALES,
        f"{method}: scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}",
    )
    return SCALES[scale_rewards]
