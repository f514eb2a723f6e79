"""Time one training step (forward, backward, AdamW) of our GPT, and optionally of another implementation.

    python benchmarks/train_step.py                                   # ours, at two shapes
    python benchmarks/train_step.py --compare /tmp/nanoGPT/model.py   # ours and nanoGPT's model.py side by side
    python benchmarks/train_step.py --unfused                         # also ours with lesson 04's own arithmetic

The other file must define GPT and GPTConfig as nanoGPT's model.py does. Both models get the same shape,
the same batches and the same optimizer settings; their steps are timed in alternating rounds so that
the noise of a shared machine hits both alike. The figure reported is the median ms/step.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.attention import GPTConfig  # noqa: E402
from helpers.engine import profile  # noqa: E402
from helpers.model import GPT  # noqa: E402
from helpers.training import configure_optimizer  # noqa: E402

CPU_MODEL, CPU_TRAIN = profile("cpu")

SHAPES = {
    # nanoGPT's README CPU recipe ("baby" GPT)
    "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    # our CPU profile
    "cpu-profile": dict(n_layer=CPU_MODEL.n_layer, n_head=CPU_MODEL.n_head, n_embd=CPU_MODEL.n_embd,
                        block_size=CPU_MODEL.block_size, batch_size=CPU_TRAIN.batch_size),
}


def load_other(path: str):
    """Import a model.py file (nanoGPT's layout: GPT and GPTConfig) under a private name."""
    spec = importlib.util.spec_from_file_location("other_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(kind: str, shape: dict, other=None):
    """A model and its AdamW (weight decay 0.1 on 2-D weights, lr 1e-3), seeded alike."""
    torch.manual_seed(1337)
    fields = dict(vocab_size=65, block_size=shape["block_size"], n_layer=shape["n_layer"], n_head=shape["n_head"],
                  n_embd=shape["n_embd"], dropout=0.0, bias=True)
    model = GPT(GPTConfig(**fields)) if kind == "ours" else other.GPT(other.GPTConfig(**fields))
    optimizer = configure_optimizer(model, 0.1, 1e-3, (0.9, 0.99), "cpu")  # the same groups for both
    return model.train(), optimizer


@contextlib.contextmanager
def own_arithmetic(enabled: bool):
    """Run lesson 04's own LayerNorm and GELU arithmetic instead of PyTorch's fused kernels (use_fused)."""
    from helpers.layers import GELU, LayerNorm

    saved = LayerNorm.use_fused, GELU.use_fused
    LayerNorm.use_fused = GELU.use_fused = not enabled
    try:
        yield
    finally:
        LayerNorm.use_fused, GELU.use_fused = saved


def step(model, optimizer, x, y) -> None:
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def time_steps(model, optimizer, batches, n: int) -> float:
    """ms per step over n steps."""
    start = time.perf_counter()
    for i in range(n):
        x, y = batches[i % len(batches)]
        step(model, optimizer, x, y)
    return (time.perf_counter() - start) / n * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", help="path to another model.py (nanoGPT's layout) to time side by side")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per model")
    parser.add_argument("--unfused", action="store_true",
                        help="also time ours with lesson 04's own LayerNorm and GELU arithmetic (use_fused off)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    other = load_other(args.compare) if args.compare else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f}")
    for name in args.shapes:
        shape = SHAPES[name]
        gen = torch.Generator().manual_seed(0)
        batches = [(torch.randint(65, (shape["batch_size"], shape["block_size"]), generator=gen),
                    torch.randint(65, (shape["batch_size"], shape["block_size"]), generator=gen)) for _ in range(4)]
        kinds = ["ours"] + (["ours-unfused"] if args.unfused else []) + (["other"] if other else [])
        built = {kind: build("ours" if kind.startswith("ours") else kind, shape, other) for kind in kinds}
        times = {kind: [] for kind in kinds}
        for kind in kinds:  # warm-up
            with own_arithmetic(kind == "ours-unfused"):
                time_steps(*built[kind], batches, 3)
        for _ in range(args.rounds):
            for kind in kinds:
                with own_arithmetic(kind == "ours-unfused"):
                    times[kind].append(time_steps(*built[kind], batches, args.steps))
        label = {"ours": "ours", "ours-unfused": "ours, unfused LayerNorm/GELU",
                 "other": Path(args.compare).name if other else ""}
        summary = ", ".join(f"{label[k]}: {statistics.median(v):.1f} ms/step (min {min(v):.1f})" for k, v in times.items())
        print(f"{name} {shape}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
