"""A time bound on one reward call, whatever the reward runs (a rule, a reward model, user code).

    values = call_with_timeout(fn, completions, rows, timeout_s=60.0, label="rewards.0 (python)")

The call runs in a helper thread that the caller waits on for at most `timeout_s`; past it the
caller gets RewardTimeoutError (code `reward_timeout`) and the job fails. Python cannot stop a
thread, so the abandoned call may keep running until its process ends: the worker runs each job
in a child process it ends once the job has failed, which is what frees that CPU.

The bound is the operator's (the setting GRO_REWARD_TIMEOUT_S), never the spec's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_TIMEOUT_S", "TIMEOUT_SETTING", "RewardTimeoutError", "call_with_timeout"]

TIMEOUT_SETTING = "GRO_REWARD_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 300.0


class RewardTimeoutError(RuntimeError):
    """A reward function ran past its time bound."""

    code = "reward_timeout"


def reward_timeout_s() -> float | None:
    """The operator's bound in seconds (GRO_REWARD_TIMEOUT_S; 0 or less: no bound)."""
    raw = os.environ.get(TIMEOUT_SETTING, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError as exc:
        raise ValueError(f"{TIMEOUT_SETTING}={raw!r} is not a number of seconds") from exc
    return seconds if seconds > 0 else None


def call_with_timeout(
    fn: Callable[..., Any], *args: Any, timeout_s: float | None, label: str
) -> Any:
    """fn(*args), or RewardTimeoutError naming `label` when it takes longer than `timeout_s`.
    Exceptions of fn reach the caller unchanged."""
    if timeout_s is None:
        return fn(*args)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=f"reward {label}")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise RewardTimeoutError(
            f"{label}: took longer than {timeout_s:g}s on {len(args[0])} completions; a reward "
            f"must return within the bound the operator set ({TIMEOUT_SETTING})"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
