"""Train a GPT from the command line: a thin layer over helpers.training (lesson 08).

    python -m helpers.train --profile cpu --out runs/cpu
    python -m helpers.train --preset shakespeare-char --profile gpu --out runs/gpu
    python -m helpers.train --profile cpu --out runs/cpu --resume --max_iters 3000
    torchrun --nproc_per_node 4 -m helpers.train --profile gpu --out runs/ddp   # several GPUs (DDP)

Every field of TrainConfig and of GPTConfig is a flag (--learning_rate, --n_layer, ...); a flag given
replaces the profile's value. Do not import this module: `helpers.train` is also the train() function.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing

from helpers.attention import GPTConfig
from helpers.model import PRESETS
from helpers.training import PROFILES, NonFiniteLossError, TrainConfig, profile, train

HELP = {
    "out_dir": "the run's folder (ckpt.pt, metrics.jsonl)",
    "dataset": "shakespeare_char or shakespeare_gpt2",
    "device": "cuda, mps or cpu (default: the best available)",
    "dtype": "float32, bfloat16 or float16 (default: the device's choice)",
    "lr_decay_iters": "where the cosine decay ends (default: max_iters)",
    "num_threads": "CPU threads (default: the idle cores)",
    "compile": "torch.compile the model (default: where it is known to work)",
}


def _field_type(annotation) -> tuple[type, bool]:
    """The scalar type of a dataclass field's annotation, and whether None is allowed."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"typing": typing})  # noqa: S307 -- our own annotations, e.g. "int | None"
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in args if a is not type(None)), True
    return annotation, False


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, title: str) -> None:
    """One --flag per field of a dataclass; booleans become --flag / --no-flag. Defaults are None
    (not given), so that only the flags given replace the profile's values."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        kind, _ = _field_type(f.type)
        help_text = HELP.get(f.name, "")
        if kind is bool:
            group.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(f"--{f.name}", type=kind, default=None, metavar=kind.__name__.upper(), help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.train", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:7]))
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES),
                        help="the starting point: cpu (a few minutes on a laptop) or gpu (nanoGPT's Shakespeare recipe)")
    parser.add_argument("--preset", help=f"the model's shape, from helpers.model.PRESETS ({', '.join(PRESETS)}); "
                                          "default: the profile's")
    parser.add_argument("--out", dest="out_dir_alias", metavar="DIR", help="same as --out_dir")
    add_dataclass_flags(parser, TrainConfig, "training (TrainConfig)")
    add_dataclass_flags(parser, GPTConfig, "model (GPTConfig)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    name, preset, out = args.pop("profile"), args.pop("preset"), args.pop("out_dir_alias")
    if out is not None:
        args["out_dir"] = out
    overrides = {key: value for key, value in args.items() if value is not None}
    try:
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; the presets are: {', '.join(PRESETS)}")
            overrides = {**PRESETS[preset], **overrides}  # the preset replaces the profile's model, flags both
        model_config, train_config = profile(name, **overrides)
        model, history = train(model_config, train_config)
    except (ValueError, OSError) as error:  # bad input, or a folder that cannot be written: one clear line
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NonFiniteLossError as error:  # the message names the step and the checkpoint kept
        print(f"error: {error}", file=sys.stderr)
        return 3
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    final = f", val loss {history.eval_val[-1]:.4f}" if history.eval_val else ""
    print(f"{'interrupted' if history.interrupted else 'done'} at step {history.steps[-1] + 1 if history.steps else 0}"
          f"{final}; checkpoint in {train_config.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
