"""Experiment trackers a job writes to besides its own run outputs: one variant per `type`.

gro_core.trainers.trackers writes them; here they are only described and validated. A spec is
a document users share and the service stores, so it never holds a credential: keys that look
like one are refused, and each tracker reads its credentials from the operator's environment
(WANDB_API_KEY, MLFLOW_TRACKING_TOKEN, ...), as its library does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, model_validator

from gro_core.spec.base import Section

# Key names that hold secrets in trackers' own configs: api_key, token, password, secret, ...
_SECRET_KEY = re.compile(r"(key|token|secret|password|credential|auth)", re.IGNORECASE)
_TRACKER_NAME = Annotated[str, Field(min_length=1, max_length=128)]


class _Tracker(Section):
    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if isinstance(key, str) and _SECRET_KEY.search(key):
                    raise ValueError(
                        f"{key!r}: a job spec never holds credentials; the tracker reads them "
                        f"from the environment of the trainer ({cls._credentials_hint()})"
                    )
        return data

    @classmethod
    def _credentials_hint(cls) -> str:
        return "set by the operator"


class TensorBoardTracker(_Tracker):
    """TensorBoard event files in `tensorboard/` of the run directory (`tensorboard --logdir`):
    every metric as a scalar, the resolved spec as text, each step's samples as a text table.
    Needs the `trackers` extra (the tensorboard package)."""

    type: Literal["tensorboard"]
    """Selects this tracker."""

    @classmethod
    def _credentials_hint(cls) -> str:
        return "TensorBoard needs none"


class WandbTracker(_Tracker):
    """A Weights & Biases run: every metric, the resolved spec as its config, each step's samples
    as a `wandb.Table` under `samples`. Its files go to `wandb/` of the run directory. Offline by
    default (`wandb sync` uploads it later); online runs log in with the trainer's WANDB_API_KEY.
    Needs the `trackers` extra (the wandb package)."""

    type: Literal["wandb"]
    """Selects this tracker."""
    project: _TRACKER_NAME = "gro"
    """The W&B project."""
    entity: _TRACKER_NAME | None = None
    """The W&B team or user; null: the API key's default entity."""
    run_name: _TRACKER_NAME | None = None
    """The run's display name; null: the job's `name`, else W&B's own."""
    tags: list[_TRACKER_NAME] = Field(default_factory=list)
    """Tags of the run."""
    mode: Literal["offline", "online"] = "offline"
    """offline writes the run files only; online also uploads them as the run goes."""

    @classmethod
    def _credentials_hint(cls) -> str:
        return "WANDB_API_KEY"


class MlflowTracker(_Tracker):
    """An MLflow run: every metric, the resolved spec as params (dotted keys) and as the artifact
    `spec.json`, each step's samples as the table artifact `samples.json`. The store is the
    trainer's MLFLOW_TRACKING_URI when the operator set one, else a local store in `mlflow/` of
    the run directory (an SQLite file, `mlflow/mlflow.db`, and the artifacts beside it: MLflow
    keeps its plain-file store for old data only). Needs the `trackers` extra (mlflow-skinny)."""

    type: Literal["mlflow"]
    """Selects this tracker."""
    experiment: _TRACKER_NAME = "gro"
    """The MLflow experiment, created when it does not exist."""
    run_name: _TRACKER_NAME | None = None
    """The run's name; null: the job's `name`, else MLflow's own."""

    @classmethod
    def _credentials_hint(cls) -> str:
        return "MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"


IntegrationSpec = Annotated[
    TensorBoardTracker | WandbTracker | MlflowTracker, Field(discriminator="type")
]


def integration_type(variant: type[BaseModel]) -> str:
    """The `type` tag of one tracker variant, read off its Literal annotation."""
    return get_args(variant.model_fields["type"].annotation)[0]


INTEGRATION_VARIANTS: tuple[type[BaseModel], ...] = get_args(get_args(IntegrationSpec)[0])
INTEGRATION_TYPES: tuple[str, ...] = tuple(integration_type(v) for v in INTEGRATION_VARIANTS)
