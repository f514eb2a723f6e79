"""The course's command line: `python -m helpers COMMAND [flags]`, thin layers over the engine and the lessons.

    python -m helpers train --profile cpu --out runs/cpu                 # train a GPT (helpers.engine)
    python -m helpers train --out runs/cpu --resume --max_iters 5000     # continue a run
    python -m helpers train --dataset my_text.txt --tokenizer bpe --out runs/mine   # train on your own text
    python -m helpers train --arch llama --n_kv_head 2 --out runs/llama  # lesson 10's Llama-style model
    torchrun --nproc_per_node 4 -m helpers train --profile gpu --out runs/ddp   # several GPUs (DDP)
    python -m helpers generate --ckpt runs/cpu --prompt "ROMEO:" --top-k 20   # sample from it (lesson 09)
    python -m helpers export --ckpt runs/cpu --out runs/cpu-hf           # as a Hugging Face GPT-2 model
    python -m helpers doctor                                              # check this machine
    python -m helpers bundle --out gpt-from-scratch-offline.zip          # everything for an offline room

`python -m helpers COMMAND --help` lists a command's flags. Bad input gets one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path

COMMANDS = {
    "train": "train a GPT (helpers.engine)",
    "generate": "generate text from a trained GPT or GPT-2's weights (helpers.generation)",
    "export": "write a checkpoint as a Hugging Face GPT-2 model (helpers.export)",
    "doctor": "check that this machine can run the course (helpers.doctor)",
    "bundle": "pack the course for a room without internet (helpers.bundle)",
}


# --- train ----------------------------------------------------------------------------------------

TRAIN_HELP = {
    "out_dir": "the run's folder (ckpt.pt, metrics.jsonl)",
    "dataset": "shakespeare_char, shakespeare_gpt2, or the path of a UTF-8 text file",
    "tokenizer": "for a text file: gpt2, bpe (trained on the file) or char",
    "bpe_vocab_size": "for --tokenizer bpe: the vocabulary size",
    "device": "cuda, mps or cpu (default: the best available)",
    "dtype": "float32, bfloat16 or float16 (default: the device's choice)",
    "lr_decay_iters": "where the cosine decay ends (default: max_iters)",
    "num_threads": "CPU threads (default: the idle cores)",
    "compile": "torch.compile the model (default: where it is known to work)",
}


def _field_type(annotation) -> type:
    """The scalar type of a dataclass field's annotation ("int | None" -> int)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"typing": typing})  # noqa: S307 -- our own annotations, e.g. "int | None"
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, title: str, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of a dataclass (but those in `skip`); booleans become --flag / --no-flag. Defaults
    are None (not given), so that only the flags given replace the profile's values."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind, help_text = _field_type(f.type), TRAIN_HELP.get(f.name, "")
        if kind is bool:
            group.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(f"--{f.name}", type=kind, default=None, metavar=kind.__name__.upper(), help=help_text)


def train_parser() -> argparse.ArgumentParser:
    from helpers.attention import GPTConfig
    from helpers.engine import PROFILES, TrainConfig
    from helpers.model import PRESETS

    parser = argparse.ArgumentParser(prog="python -m helpers train", description=COMMANDS["train"],
                                     epilog="Every field of TrainConfig and GPTConfig is a flag; a flag given "
                                            "replaces the profile's value.")
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES),
                        help="the starting point: cpu (a few minutes on a laptop) or gpu (nanoGPT's Shakespeare recipe)")
    parser.add_argument("--preset", help=f"the model's shape, from helpers.model.PRESETS ({', '.join(PRESETS)}); "
                                          "default: the profile's")
    parser.add_argument("--out", dest="out_dir_alias", metavar="DIR", help="same as --out_dir")
    parser.add_argument("--arch", choices=("gpt", "llama"), default="gpt",
                        help="gpt (lesson 06) or llama (lesson 10: RMSNorm, RoPE, SwiGLU, grouped-query attention), "
                             "of the same shape")
    add_dataclass_flags(parser, TrainConfig, "training (TrainConfig)")
    add_dataclass_flags(parser, GPTConfig, "model (GPTConfig)")
    add_dataclass_flags(parser, llama_only_fields(), "with --arch llama (LlamaConfig)", skip=LLAMA_SHARED)
    return parser


LLAMA_SHARED = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias")  # flags GPT's too


def llama_only_fields():
    from helpers.modern import LlamaConfig

    return LlamaConfig


def train_command(argv: list[str]) -> int:
    import torch.distributed as dist

    from helpers.engine import NonFiniteLossError, profile, train
    from helpers.model import PRESETS
    from helpers.modern import LlamaConfig, llama_config_like

    args = vars(train_parser().parse_args(argv))
    name, preset_name, out, arch = args.pop("profile"), args.pop("preset"), args.pop("out_dir_alias"), args.pop("arch")
    llama_names = {f.name for f in dataclasses.fields(LlamaConfig)} - set(LLAMA_SHARED)
    llama_flags = {key: args.pop(key) for key in llama_names if args.get(key) is not None}
    for key in llama_names:
        args.pop(key, None)
    if out is not None:
        args["out_dir"] = out
    overrides = {key: value for key, value in args.items() if value is not None}
    try:
        if preset_name is not None:
            if preset_name not in PRESETS:
                raise ValueError(f"unknown preset {preset_name!r}; the presets are: {', '.join(PRESETS)}")
            overrides = {**PRESETS[preset_name], **overrides}  # the preset replaces the profile's model, flags both
        model_config, train_config = profile(name, **overrides)
        if arch == "llama":
            bias = {"bias": overrides["bias"]} if "bias" in overrides else {}
            model_config = llama_config_like(model_config, **bias, **llama_flags)
        elif llama_flags:
            raise ValueError(f"--{next(iter(llama_flags))} is a LlamaConfig field: add --arch llama")
        _, history = train(model_config, train_config)
    except (ValueError, OSError) as error:  # bad input, or a folder that cannot be written: one clear line
        return fail(error)
    except KeyboardInterrupt:  # while tokenizing a text file (training itself stops cleanly on its own)
        print("error: interrupted while preparing the data; run the same command again to resume", file=sys.stderr)
        return 130
    except NonFiniteLossError as error:  # the message names the step and the checkpoint kept
        print(f"error: {error}", file=sys.stderr)
        return 3
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    final = f", val loss {history.eval_val[-1]:.4f}" if history.eval_val else ""
    print(f"{'interrupted' if history.interrupted else 'done'} at step {history.steps[-1] + 1 if history.steps else 0}"
          f"{final}; checkpoint in {train_config.out_dir}")
    return 0


# --- generate -------------------------------------------------------------------------------------

def generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers generate", description=COMMANDS["generate"],
        epilog="--ckpt is a checkpoint of `python -m helpers train` (a ckpt.pt file or its run folder), or GPT-2's "
               "weights (a name such as gpt2, or a model.safetensors file). Generation stops after --max-new-tokens "
               "tokens or at the tokenizer's <|endoftext|>.")
    parser.add_argument("--ckpt", required=True, help="a checkpoint (ckpt.pt or its run folder), or gpt2 / a model.safetensors")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; below 1 safer, above 1 wilder (default 1.0)")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="sample only within the nucleus of probability p")
    parser.add_argument("--seed", type=int, default=1337, help="random seed, for a repeatable output (default 1337)")
    parser.add_argument("--no-cache", action="store_true", help="recompute everything at every step (slow; for comparison)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    return parser


def load_model(ckpt: str, device: str):
    """The model (in eval mode, on device) and tokenizer of a training checkpoint, or of GPT-2's weights."""
    from helpers.checkpoint import load_trained
    from helpers.downloads import gpt2_tiktoken
    from helpers.model import GPT, GPT2_NAMES

    if ckpt in GPT2_NAMES or ckpt.endswith(".safetensors"):
        return GPT.from_pretrained(ckpt).to(device), gpt2_tiktoken()
    return load_trained(Path(ckpt), device=device)


def generate_command(argv: list[str]) -> int:
    import torch

    from helpers.device import choose_device
    from helpers.downloads import DownloadError
    from helpers.generation import stream_text

    args = generate_parser().parse_args(argv)
    try:
        device = choose_device(args.device).device
        model, tokenizer = load_model(args.ckpt, device)
        generator = torch.Generator(device=device).manual_seed(args.seed)
        pieces = stream_text(model, tokenizer, args.prompt, args.max_new_tokens, temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p, use_cache=not args.no_cache, generator=generator)
        print(args.prompt, end="", flush=True)
        for piece in pieces:
            print(piece, end="", flush=True)
        print()
    except (ValueError, OSError, DownloadError) as error:  # bad input, or weights not to be had: one clear line
        return fail(error)
    return 0


# --- the entry point ------------------------------------------------------------------------------

def fail(error: Exception) -> int:
    """Print a one-line error and return the exit code for bad input."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        return train_command(rest)
    if command == "generate":
        return generate_command(rest)
    if command == "export":
        from helpers.export import main as export_main
        return export_main(rest)
    if command == "doctor":
        from helpers.doctor import main as doctor_main
        return doctor_main(rest)
    if command == "bundle":
        from helpers.bundle import main as bundle_main
        return bundle_main(rest)
    print(f"error: unknown command {command!r}; the commands are: {', '.join(COMMANDS)} "
          "(python -m helpers --help)", file=sys.stderr)
    return 2
