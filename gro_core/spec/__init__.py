"""JobSpec: the one document that describes a job, for the CLI, the REST API and the workers.

The keys are documented in docs/jobspec.md (generated from these models). Unknown keys are errors
with their path (`train.lrr`), every default is written out by `spec.model_dump(mode="json")`,
and bad values and bad combinations are refused here, before a model is loaded:

    spec = load_spec("job.yaml")                       # or YAML text, or a dict
    spec = load_spec(apply_overrides(doc, {"train.seed": 3}))
    except ValidationError as exc: format_validation_error(exc)  # [{"path", "message"}]

What needs the dataset itself (its kind) is checked once it is read: `check_train_data`.
What depends on the operator (python rewards) is checked by `check_rewards_allowed`.
Nothing here imports torch, so the API validates specs without it.
"""

from gro_core.spec.base import MAX_SEED, Section, SpecError
from gro_core.spec.integrations import INTEGRATION_TYPES, IntegrationSpec
from gro_core.spec.job import (
    JobSpec,
    check_dataset_kind,
    check_rewards_allowed,
    check_train_data,
    is_online,
)
from gro_core.spec.loading import apply_overrides, load_spec
from gro_core.spec.messages import format_validation_error
from gro_core.spec.rewards import REWARD_TYPES, RewardSpec
from gro_core.spec.sections import (
    CheckpointSpec,
    DataSpec,
    EvalSpec,
    LoraSpec,
    ModelOptionsSpec,
    ResourcesSpec,
    RolloutSpec,
    TrainSpec,
)

__all__ = [
    "INTEGRATION_TYPES",
    "MAX_SEED",
    "REWARD_TYPES",
    "CheckpointSpec",
    "DataSpec",
    "EvalSpec",
    "IntegrationSpec",
    "JobSpec",
    "LoraSpec",
    "ModelOptionsSpec",
    "ResourcesSpec",
    "RewardSpec",
    "RolloutSpec",
    "Section",
    "SpecError",
    "TrainSpec",
    "apply_overrides",
    "check_dataset_kind",
    "check_rewards_allowed",
    "check_train_data",
    "format_validation_error",
    "is_online",
    "load_spec",
]
