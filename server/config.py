"""Settings of the API, the workers and `gro up`, read from `GRO_*` environment variables.

    settings = get_settings()          # cached; tests call get_settings.cache_clear()

Defaults run everything on one machine under `./.gro/` (SQLite, a local Redis). Outside
development a default secret is refused at start-up, not discovered in production.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from server.limits_config import Limits

DEFAULT_SECRET = "change-me"
DEFAULT_DATA_DIR = Path(".gro")


class Settings(Limits):
    """One field per setting; the environment variable is `GRO_` + the field name in capitals.
    The `limit_*` fields (server.limits_config) bound what one job or owner may ask for."""

    model_config = SettingsConfigDict(env_prefix="GRO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    """Anything but development refuses the default secret."""
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'gro.db'}"
    """SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pass@host/db."""
    db_pool_size: int = Field(10, ge=1)
    """Connections each API or worker process keeps open to the database."""
    db_max_overflow: int = Field(0, ge=0)
    """Connections opened beyond db_pool_size under load, closed again when returned. None by
    default: each one is opened and closed per request (a new PostgreSQL backend, or SQLite's
    file and pragmas, each time); under bench/load.py, 20 of them doubled the API's median
    latency against a pool of 10 and none."""
    db_pool_timeout_s: float = Field(30.0, gt=0)
    """How long a request waits for a free connection before it fails."""
    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker (Redis) the API enqueues to and workers consume from."""
    storage_dir: Path = DEFAULT_DATA_DIR / "storage"
    """Datasets and run directories (checkpoints); shared by the API and every worker."""
    max_upload_bytes: int = Field(512 * 2**20, ge=1)
    """Largest dataset upload accepted; bigger bodies get 413 before they are stored."""
    metrics_cache_bytes: int = Field(64 * 2**20, ge=0)
    """Encoded metrics and job-list responses each API process keeps, so a poll that finds
    nothing new costs one small read (the job's row, or an aggregate of the owner's jobs);
    0 turns the cache off."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed to call the API from a browser (the dashboard talks server-side)."""
    secret_key: str = DEFAULT_SECRET
    """Signs expiring download links (a browser link cannot carry a Bearer key)."""
    model_roots: list[Path] = Field(default_factory=list)
    """Directories whose model directories job specs may name by path (a shared model store);
    any other local path is refused at submit."""
    hub_dataset_roots: list[Path] = Field(default_factory=list)
    """Directories whose dataset directories POST /v1/datasets/hub may read by path; Hub ids
    (`org/name`) are always allowed, any other local path is refused."""
    signed_link_max_s: int = Field(7 * 24 * 3600, ge=1)
    """Longest lifetime of a signed download link: a link expiring later is refused."""
    upload_tmp_max_age_s: float = Field(600.0, gt=0)
    """A temporary upload file unwritten for this long is an orphan (its request died) and is
    removed, at API start and on later uploads."""
    allow_python_rewards: bool = False
    """Let job specs run `python` reward functions (arbitrary code on the workers)."""
    reward_timeout_s: float = Field(300.0, ge=0)
    """Longest one call of one reward function may take (rule, reward model or python) before
    the job fails with `reward_timeout`; 0: no bound."""
    heartbeat_s: float = Field(10.0, gt=0)
    """How often a running job's worker writes its heartbeat."""
    heartbeat_timeout_s: float = Field(120.0, gt=0)
    """A running job whose heartbeat is older than this is presumed dead and re-queued."""
    requeue_after_s: float = Field(60.0, gt=0)
    """A queued job no worker claimed for this long is enqueued again (its message was lost)."""
    reconcile_every_s: float = Field(15.0, gt=0)
    """How often each worker's reconciler looks for lost and dead jobs."""
    max_requeues: int = Field(3, ge=0)
    """A running job whose worker went silent is queued again at most this many times; the next
    loss fails it with `worker_lost` (a job that kills every worker must not go round forever)."""
    job_isolation: Literal["process", "inline"] = "process"
    """`process`: each job runs in a child process of the worker, which keeps the heartbeat and
    enforces cancel, the memory cap and the time limits from outside it. `inline`: in the worker
    process itself (tests that patch the trainer; no limits but the reward bound)."""
    max_job_rss_bytes: int | None = Field(None, ge=1)
    """Memory cap of one job (resident memory of its process and the processes it starts); past
    it the job is ended and fails with `out_of_memory`. None: no cap."""
    job_time_limit_s: float | None = Field(None, gt=0)
    """Wall-clock limit of one attempt at a job; past it the job fails with `time_limit`."""
    generation_time_limit_s: float = Field(120.0, gt=0)
    """Wall-clock limit of a playground generation (POST /v1/generations), loading included:
    a light job that should answer while its page is open."""
    cancel_grace_s: float = Field(5.0, ge=0)
    """After a cancel request, how long a job may take to stop at a step boundary (keeping a
    checkpoint) before its process is ended where it is."""
    job_silent_s: float = Field(300.0, gt=0)
    """A job process whose Python threads have not run for this long (one call holding the
    interpreter lock) is hung: it is ended and the job fails with `hung`."""
    worker_procs: int | None = Field(None, ge=1, le=64)
    """Training processes this worker offers a job (`gro worker --procs`): one per GPU on a GPU
    machine, gloo processes on a CPU one. It takes jobs of up to this many processes per machine
    (resources.nproc_per_node); default: the machine's GPU count, or 1 without GPUs."""
    node_address: str | None = None
    """The address other machines reach this worker at, when it hosts the rendezvous of a job
    spanning machines (resources.nnodes > 1); default: this machine's host name."""
    node_join_timeout_s: float = Field(300.0, gt=0)
    """How long a job spanning machines waits for all its machines (workers) to join its
    rendezvous; past it the job fails with `nodes_missing`."""
    train_nice: int = Field(10, ge=0, le=19)
    """Niceness of a job's process (os.nice) under GRO_JOB_ISOLATION=process: training takes
    whatever CPU it is given, so on a machine the API shares, the API's requests run first and
    training gets the rest. 0: the worker's own priority."""
    train_sched_idle: bool = False
    """Run a job's process under Linux's SCHED_IDLE policy (it inherits to its ranks and
    torch's threads): it gets a CPU only when nothing else wants it, and any request the API
    wakes for preempts it at once, where a niceness only weighs its share. For one machine that
    runs the API and training (`gro up` turns it on); a dedicated training machine needs it
    not. The child's pulse thread keeps the worker's policy."""
    torch_threads: int | None = Field(None, ge=1)
    """CPU threads a worker's job uses (torch.set_num_threads); default: torch's choice. Set
    it to cores / workers when several workers share one CPU machine."""

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> Settings:
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET:
            raise ValueError(
                f"GRO_SECRET_KEY is the default while GRO_ENVIRONMENT={self.environment}: "
                "set it to a long random string (python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
