"""The `gro` command line: one entry point, one small handler per verb."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

# Each handler imports its verb's module when called, so parsing never loads torch.


def _cmd_data_validate(args: argparse.Namespace) -> int:
    from gro_core.data.report import cli_validate

    hub = {"config": args.config, "split": args.split, "revision": args.revision}
    hub = {key: value for key, value in hub.items() if value is not None}
    columns = dict(pair.partition("=")[::2] for pair in args.column)
    hub_keys = hub | ({"columns": columns} if columns else {})
    return cli_validate(args.file, as_json=args.json, tokenizer=args.tokenizer, hub_keys=hub_keys)


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect and validate datasets")
    data_sub = data.add_subparsers(dest="data_cmd", required=True)
    validate = data_sub.add_parser("validate", help="validate a dataset file; exit 1 on errors")
    validate.add_argument(
        "file",
        help="JSONL, Parquet, a saved Hugging Face dataset directory, or hf:org/name (Hub)",
    )
    hub = validate.add_argument_group("Hugging Face datasets (hf:org/name)")
    hub.add_argument("--config", default=None, help="the dataset's configuration (subset)")
    hub.add_argument("--split", default=None, help="the split to read (default: train)")
    hub.add_argument("--revision", default=None, help="branch, tag or commit")
    hub.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="read gro's FIELD from the dataset's COLUMN (repeatable)",
    )
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.add_argument(
        "--tokenizer", default=None, help="model whose tokenizer measures token lengths"
    )
    validate.set_defaults(handler=_cmd_data_validate)


def _cmd_train(args: argparse.Namespace) -> int:
    from gro_core.cli.train import Rendezvous, train_command

    rendezvous = Rendezvous(args.master_addr, args.master_port, args.node_rank)
    return train_command(
        args.spec, args.out, resume=args.resume, quiet=args.quiet, rendezvous=rendezvous
    )


# Checked against JobSpec's keys by tests/test_docs.py (importing the spec here would slow
# every `gro` command down).
TRAIN_EPILOG = """\
A job spec is one YAML document. Every key, with its type, default and allowed values, is
documented in docs/jobspec.md; the methods and their objectives in docs/objective.md.

  model, method          required: the starting model and the training method
  data                   required: data.train (a dataset file) and/or data.task (builtin:<task>);
                         data.train: hf:org/name reads a Hugging Face dataset
  method_args            the method's arguments, e.g. {beta: 0.1}
  rewards                online methods: the weighted reward functions
  rollout                online methods: how completions are sampled
  train                  steps, batch_size, lr, seed, ...
  model_options          dtype, attention kernel, gradient checkpointing, dropout
  lora                   train low-rank adapters instead of the full weights
  eval, checkpoint       how often to evaluate and to save
  resources              processes per machine, machines, strategy (ddp | fsdp), cpu_offload;
                         more than one process: gro train starts them itself
  integrations           experiment trackers: tensorboard, wandb, mlflow
  name, reference_model  a label; the frozen reference (default: a copy of the model)
"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train",
        help="train a job spec locally, writing run outputs to --out",
        description="Train a job spec on this machine; its metrics, samples, events,\n"
        "checkpoints and summary go to --out.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("spec", help="job spec YAML (keys: docs/jobspec.md)")
    train.add_argument("--out", required=True, help="run directory (metrics, checkpoints, ...)")
    train.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    nodes = train.add_argument_group(
        "several machines (resources.nnodes > 1; run the same command on each)"
    )
    nodes.add_argument("--node-rank", type=int, default=None, help="this machine's, 0..nnodes-1")
    nodes.add_argument(
        "--master-addr", default=None, help="address of node rank 0, which hosts the rendezvous"
    )
    nodes.add_argument(
        "--master-port", type=int, default=None, help="its rendezvous port (default: 29500)"
    )
    train.set_defaults(handler=_cmd_train)


def _cmd_eval(args: argparse.Namespace) -> int:
    from gro_core.cli.evaluate import eval_command

    return eval_command(
        args.targets,
        as_json=args.json,
        spec_path=args.spec,
        num_prompts=args.num_prompts,
        num_generations=args.num_generations,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        with_reference=not args.no_kl,
    )


def _add_eval(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser(
        "eval", help="held-out reward, pass@k, KL and diversity of models; one row per target"
    )
    evaluate.add_argument(
        "targets", nargs="+", metavar="TARGET", help="job spec YAML, checkpoint dir or run dir"
    )
    evaluate.add_argument(
        "--spec", default=None, help="evaluate on this spec's data and rewards instead"
    )
    evaluate.add_argument("--num-prompts", type=int, default=None, help="default: eval.num_prompts")
    evaluate.add_argument(
        "--num-generations", type=int, default=None, help="samples per prompt (the k of pass@k)"
    )
    evaluate.add_argument("--max-new-tokens", type=int, default=None)
    evaluate.add_argument("--temperature", type=float, default=None)
    evaluate.add_argument("--seed", type=int, default=None, help="default: train.seed")
    evaluate.add_argument(
        "--no-kl", action="store_true", help="skip loading the reference model (no eval/kl_ref)"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.set_defaults(handler=_cmd_eval)


def _cmd_export(args: argparse.Namespace) -> int:
    from gro_core.cli.export import export_command

    return export_command(
        args.checkpoint,
        args.out,
        merge_lora=args.merge_lora,
        dtype=args.dtype,
        push_to_hub=args.push_to_hub,
        private=args.private,
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export",
        help="write a checkpoint as a plain save_pretrained model directory (no trainer state)",
        description="Write a checkpoint (or a run directory's newest) as a model directory "
        "transformers or peft load: the weights, or a LoRA run's adapters naming their base, "
        "and the tokenizer.",
    )
    export.add_argument("checkpoint", help="checkpoint dir (runs/a/checkpoints/step-N) or run dir")
    export.add_argument("--out", required=True, help="new directory to write the model to")
    export.add_argument(
        "--merge-lora", action="store_true", help="merge a LoRA run's adapters into its base"
    )
    export.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="dtype of the written weights (auto: float32)",
    )
    export.add_argument(
        "--push-to-hub",
        default=None,
        metavar="REPO",
        help="then upload it as Hub model repo REPO (token: HF_TOKEN or `hf auth login`)",
    )
    export.add_argument("--private", action="store_true", help="with --push-to-hub: a private repo")
    export.set_defaults(handler=_cmd_export)


# Each entry adds one verb's parser.
_VERBS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data,
    _add_train,
    _add_eval,
    _add_export,
]
# Packages installed beside gro_core (the service: keys, submit, up, ...) add their verbs
# through this entry-point group, so gro_core never imports them.
PLUGIN_GROUP = "gro.cli"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gro", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in _VERBS:
        add(sub)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)
