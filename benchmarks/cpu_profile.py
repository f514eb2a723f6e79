"""Run the CPU profile of lesson 08 and report its validation loss and wall time (target: val loss <= 1.65 within
3 minutes of training on 2 CPU cores, aiming at 1.60). The time is History.train_seconds: from the first step to
the last evaluation and the checkpoint written after it.

    python benchmarks/cpu_profile.py                       # the profile as the lesson runs it
    python benchmarks/cpu_profile.py --learning_rate 4e-3  # any GPTConfig or TrainConfig field, to tune it

The engine's validation loss is a mean over eval_iters batches (20 of 16 windows: about 20,000 characters), so
it can sit a little above or below the model's true loss. After the timed run the script also prints the loss over
the whole validation split (every window of block_size characters, once), a figure that no sampling moves.

The machine's load average is printed before and after: on a shared machine the time depends on it.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.engine import cpu_threads, load_data, profile, train  # noqa: E402


def parse_overrides(pairs: list[str]) -> dict:
    """--name value pairs as a dict, each value read as a Python literal when it is one (4e-3, 32, True, None)."""
    overrides = {}
    for name, value in zip(pairs[::2], pairs[1::2]):
        try:
            overrides[name.lstrip("-")] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[name.lstrip("-")] = value
    return overrides


@torch.no_grad()
def whole_split_loss(model: nn.Module, tokens, block_size: int, batch_size: int = 256) -> float:
    """The mean loss over every position of `tokens`, cut into consecutive windows of block_size."""
    data = torch.from_numpy(tokens.astype("int64"))
    n = (len(data) - 1) // block_size
    x, y = data[: n * block_size].view(n, block_size), data[1 : n * block_size + 1].view(n, block_size)
    was_training, total = model.training, 0.0
    model.eval()
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        total += model(xb, yb)[1].item() * len(xb)
    model.train(was_training)
    return total / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    overrides.setdefault("out_dir", tempfile.mkdtemp(prefix="cpu-profile-"))
    overrides.setdefault("overwrite", True)
    overrides.setdefault("progress", False)
    model_config, train_config = profile(args.profile, **overrides)
    print(f"load average before: {os.getloadavg()[0]:.2f}; torch threads: {train_config.num_threads or cpu_threads()} "
          "(the idle cores, unless num_threads is given)")
    print(model_config)
    print(train_config)
    start = time.perf_counter()
    model, history = train(model_config, train_config)
    seconds = time.perf_counter() - start
    for step, train_loss, val_loss in zip(history.eval_steps, history.eval_train, history.eval_val):
        print(f"step {step:5d}: train {train_loss:.4f}  val {val_loss:.4f}")
    val, train_seconds = history.eval_val[-1], history.train_seconds
    print(f"val loss {val:.4f} (best {history.best_val:.4f}) after {len(history.steps)} steps: {train_seconds:.0f} s of "
          f"training ({seconds:.0f} s with the data and model set up), {history.tokens_per_sec:,.0f} tokens/s at the "
          f"end; load average after: {os.getloadavg()[0]:.2f}")
    data = load_data(train_config.dataset, train_config.tokenizer, train_config.bpe_vocab_size)
    whole = whole_split_loss(model.cpu(), data.val, model_config.block_size)
    print(f"the whole validation split ({len(data.val):,} tokens, untimed): loss {whole:.4f}")
    def verdict(loss: float) -> str:
        return "met" if loss <= 1.65 and train_seconds <= 180 else "missed"

    print(f"target (val loss <= 1.65 within 180 s of training): {verdict(val)} by the engine's estimate; "
          f"{verdict(whole)} on the whole split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
