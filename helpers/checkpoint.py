"""Checkpoint files: everything a run needs to continue exactly where it stopped (part of the training engine).

Hand-written infrastructure above the lessons, not taught in a notebook. Lesson 08 says what a checkpoint
holds and why it is written atomically; this module does it:

- `save_checkpoint` writes a dict of tensors and plain values atomically (temporary file, then rename);
- `load_checkpoint` reads it back with `torch.load(weights_only=True)`, with a clear error for a bad file;
- `rng_states` / `set_rng_states` capture and restore every random state a run depends on;
- `build_model` makes the model a config describes (GPT, or lesson 10's Llama), and `load_trained` rebuilds
  a trained model and its tokenizer (lesson 09 and the command lines use it).
"""

from __future__ import annotations

import random
import typing
from pathlib import Path

import numpy as np
import torch

from helpers.attention import GPTConfig
from helpers.files import atomic_write
from helpers.model import GPT
from helpers.tokenization import CharTokenizer

CHECKPOINT = "ckpt.pt"  # the checkpoint's file name in a run folder
FORMAT = "gptfs-checkpoint-1"  # stored in every checkpoint, checked when one is read


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, truncated, or from a different config."""


def rng_states(data_generator: torch.Generator) -> dict:
    """Every random state a run depends on, as tensors and plain Python values (torch.load-safe)."""
    state = {"python": random.getstate(), "numpy": list(np.random.get_state()), "torch": torch.get_rng_state(),
             "data": data_generator.get_state()}
    state["numpy"][1] = torch.from_numpy(state["numpy"][1].astype(np.int64))  # a tensor, not a NumPy array
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict, data_generator: torch.Generator) -> None:
    """Restore what rng_states saved."""
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a checkpoint atomically: to a temporary file in the same folder, then renamed into place,
    so a crash mid-write leaves the previous checkpoint intact."""
    with atomic_write(path) as f:
        torch.save(state, f)
    return Path(path)


def load_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """Read a checkpoint written by helpers.engine.train with torch.load(weights_only=True): tensors and plain
    values only.

    It is read onto the CPU, where the random states must stay (torch.set_rng_state and Generator.set_state
    accept only CPU tensors); then the model's weights are moved to `device`."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one first (python -m helpers train --out DIR)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: it is truncated or corrupt "
                              f"({type(error).__name__}: {str(error)[:200]}); train again, or use another copy") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by helpers.engine.train")
    state["model"] = {name: tensor.to(device) for name, tensor in state["model"].items()}
    return state


def config_differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """The fields whose values differ between two configs (as dicts), as 'name: saved -> current'."""
    names = [name for name in {**saved, **current} if name not in ignore]
    return [f"{name}: {saved.get(name)!r} -> {current.get(name)!r}" for name in names
            if saved.get(name) != current.get(name)]


def make_tokenizer(info: dict):
    """Rebuild a tokenizer (an object with encode and decode) from the info a checkpoint stores."""
    if info.get("kind") == "char":
        return CharTokenizer(info["chars"])
    if info.get("kind") == "gpt2":
        from helpers.downloads import gpt2_tiktoken

        return gpt2_tiktoken()
    if info.get("kind") == "bpe":  # trained on a text file by helpers.prepare
        from helpers.tokenization import BPETokenizer

        return BPETokenizer.from_dict(info["tables"], source="the checkpoint's tokenizer")
    raise ValueError(f"unknown tokenizer info {str(info)[:100]}: expected kind 'char' (with chars), 'gpt2' or 'bpe'")


def model_classes(kind: str) -> tuple[type, type]:
    """The config class and model class of a model kind (the config's class name): GPTConfig -> GPT (lesson 06),
    LlamaConfig -> Llama (lesson 10)."""
    if kind == "GPTConfig":
        return GPTConfig, GPT
    if kind == "LlamaConfig":
        from helpers.modern import Llama, LlamaConfig

        return LlamaConfig, Llama
    raise ValueError(f"unknown model config {kind!r}: the engine trains a GPTConfig (lesson 06) or a LlamaConfig (lesson 10)")


def build_model(model_config) -> torch.nn.Module:
    """The model that model_config describes: GPT(config) for a GPTConfig, Llama(config) for a LlamaConfig."""
    _, model_class = model_classes(type(model_config).__name__)
    return model_class(model_config)


def load_trained(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, typing.Any]:
    """A trained model (in eval mode, on `device`) and its tokenizer, from a checkpoint file or a run folder."""
    state = load_checkpoint(path, device)
    config_class, model_class = model_classes(state.get("model_kind", "GPTConfig"))
    model = model_class(config_class(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), make_tokenizer(state["tokenizer"])
