"""The GPU benchmark (issue 14, target 6): three measurements, written to a JSON file and a markdown report.

    python -m benchmarks.gpu                # on a CUDA GPU: the whole benchmark (not yet timed on one)
    python -m benchmarks.gpu --dry-run      # anywhere: the same code on tiny models and steps, in seconds
    python -m benchmarks.gpu --device cpu   # the whole benchmark on the CPU (hours)

1. profile: the engine's GPU profile, `train(*profile("gpu"))`, on Shakespeare's characters to its final
   validation loss. Target: val loss <= 1.47.
2. throughput: tokens/s and MFU of GPT-2 124M (the preset "gpt2-padded") trained by lesson 08's `train_step`,
   set up as the engine sets it up (fused AdamW groups, the device's autocast dtype and GradScaler,
   torch.compile), on random token batches, timed between CUDA synchronisations. The largest batch of
   --batch, --batch/2, ... that fits is used. MFU counts FLOPs as lesson 07 does (helpers.counting.mfu, against
   helpers/gpu_peaks.csv). Target: MFU >= 45% on an H100-class GPU (H100 or H200).
3. generation: tokens/s of lesson 09's `generate` with and without the KV cache, at GPT-2 small's shape with
   random weights, greedy, 200 new tokens from a 16-token prompt, in float32 as `python -m helpers generate`
   runs; both must give identical tokens.
`--parts` runs some of the three; `--batch`, `--compile/--no-compile` and `--dataset` change their settings.

Run `--dry-run` on the GPU machine first: it walks the GPU path (bf16, compile) on tiny models. The dry run
trains on a small made-up text file written to --out, so it needs no download; the whole benchmark needs Tiny
Shakespeare (downloaded, or from GPTFS_OFFLINE_DIR). Reports go to --out: benchmarks/results/ (git-ignored),
or benchmarks/results/dry-run/ for --dry-run. There: gpu.json, gpu.md, and the profile's run folder
(checkpoint and metrics.jsonl). Exit status: 0 when every part ran (a missed target is reported, not an
error), 1 when a part failed, 2 for bad input such as no CUDA GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # also runs as `python benchmarks/gpu.py`

from helpers.counting import count_params, gpu_model, mfu, peak_flops  # noqa: E402
from helpers.device import Capabilities, DeviceChoice, choose_device, detect_capabilities  # noqa: E402
from helpers.downloads import DATA_ENV  # noqa: E402
from helpers.engine import cpu_threads, profile, train  # noqa: E402
from helpers.generation import generate  # noqa: E402
from helpers.model import GPT, preset  # noqa: E402
from helpers.seeding import set_seed  # noqa: E402
from helpers.training import configure_optimizer, train_step  # noqa: E402

VAL_LOSS_TARGET = 1.47  # Shakespeare-char, the GPU profile's final validation loss
MFU_TARGET = 0.45  # GPT-2 124M training, on an H100-class GPU
H100_CLASS = ("H100 SXM", "H100 PCIe", "H100 NVL", "H200 SXM", "H200 NVL")  # helpers/gpu_peaks.csv's names
PASS, FAIL, NOT_APPLICABLE, NOT_MEASURED = "pass", "fail", "not applicable", "not measured"
NOT_RUN = "not_run"  # the key of a part that --parts left out
DEFAULT_OUT = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Plan:
    """What each part runs: the whole benchmark, or the dry run's tiny version of it."""

    dry_run: bool
    profile_overrides: dict = field(default_factory=dict)  # for profile("gpu", ...)
    throughput_model: dict = field(default_factory=dict)  # overrides of the preset "gpt2-padded"
    batch: int = 32  # the first batch tried; halved while it does not fit
    warmup_steps: int = 10  # the first compiles the model
    timed_steps: int = 20  # per round
    rounds: int = 3
    generation_model: dict = field(default_factory=dict)  # overrides of the preset "gpt2"
    prompt_tokens: int = 16
    new_tokens: int = 200
    generation_repeats: int = 3


FULL = Plan(dry_run=False)
DRY_RUN = Plan(
    dry_run=True,
    profile_overrides=dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=4, max_iters=6, warmup_iters=2,
                           eval_interval=3, eval_iters=2, log_interval=2),
    throughput_model=dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512),
    batch=2, warmup_steps=1, timed_steps=2, rounds=2,
    generation_model=dict(n_layer=2, n_head=2, n_embd=64),
    new_tokens=20, generation_repeats=1,
)


class BadInput(ValueError):
    """Input the benchmark cannot run with; main prints its one line and exits with status 2."""


# --- the machine ------------------------------------------------------------------------------------

def pick_device(device: str | None, dry_run: bool, caps: Capabilities | None = None) -> DeviceChoice:
    """The course's device choice (helpers.device); without a CUDA GPU only --dry-run or --device cpu may run."""
    caps = caps if caps is not None else detect_capabilities()
    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}"
    if device in ("cuda", "mps") and not getattr(caps, device):
        raise BadInput(f"--device {device}: there is no {device.upper()} device here ({versions}); "
                       "use --device cpu, or --dry-run to check the benchmark on this machine in seconds")
    try:
        choice = choose_device(device, caps)
    except ValueError as error:
        raise BadInput(str(error)) from None
    if choice.device_type != "cuda" and device is None and not dry_run:
        raise BadInput(f"no usable CUDA GPU here ({versions}); "
                       "use --dry-run to check the benchmark on this machine in seconds, or --device cpu to run "
                       "all of it on the CPU (hours)")
    return choice


def git_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def machine_facts(device: DeviceChoice) -> dict:
    """What the figures depend on: the date, the device and its peak, the versions, the precision."""
    cuda = device.device_type == "cuda"
    name = torch.cuda.get_device_name(device.device) if cuda else device.name
    peak = peak_flops(name, device.dtype) if cuda else None
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device.device,
            "device_name": name, "gpu_count": torch.cuda.device_count() if cuda else 0,
            "peak_table_row": gpu_model(name) if cuda else None, "peak_tflops": None if peak is None else peak / 1e12,
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "platform": platform.platform(), "cpu_threads": torch.get_num_threads(), "commit": git_commit(),
            "dtype": str(device.dtype).removeprefix("torch."), "grad_scaler": device.use_grad_scaler,
            "compile": device.compile, "device_choice": str(device)}


def synchronize(device: DeviceChoice) -> None:
    """Wait for the device's queued work, so that a timer measures it (a no-op on the CPU)."""
    if device.device_type == "cuda":
        torch.cuda.synchronize(device.device)


# --- 1. the GPU profile -------------------------------------------------------------------------------

def synthetic_text(chars: int = 30_000, seed: int = 0) -> str:
    """Lines of made-up words from a few syllables (under 30 characters in all): a text file the engine reads
    as characters, so that the dry run needs no download."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "ve", "di", "po"]
    lines, size = [], 0
    while size < chars:
        words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(rng.randint(3, 9))]
        line = " ".join(words).capitalize() + rng.choice([".", ",", "!", "?"])
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def data_folder(folder: Path | None):
    """Point the course's data folder (GPTFS_DATA_DIR) at `folder` for a while, so that the token files the
    engine prepares from the dry run's text file stay in --out (the engine's load_data takes no folder)."""
    if folder is None:
        yield
        return
    saved = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = saved


def run_profile(plan: Plan, device: DeviceChoice, out: Path, dataset: str | None) -> dict:
    """Train the engine's GPU profile (the dry run: a tiny model, a few steps) and report its losses and speed."""
    text_folder = None
    if dataset is None and plan.dry_run:
        text_folder = out / "dry-run-data"
        text_folder.mkdir(parents=True, exist_ok=True)
        dataset = str(text_folder / "made_up.txt")
        Path(dataset).write_text(synthetic_text(), encoding="utf-8")
    overrides = dict(plan.profile_overrides, out_dir=str(out / "profile-run"), overwrite=True,
                     device=device.device_type, compile=device.compile, progress=not plan.dry_run)
    if dataset is not None and dataset != "shakespeare_char":
        overrides.update(dataset=dataset, tokenizer="char")
    model_config, train_config = profile("gpu", **overrides)
    start = time.perf_counter()
    with data_folder(text_folder):
        _, history = train(model_config, train_config)
    wall = time.perf_counter() - start
    if not history.eval_val:
        raise RuntimeError("the profile stopped before its first evaluation")
    util = (mfu(history.tokens_per_sec, model_config, device.name, device.dtype)
            if device.device_type == "cuda" and history.tokens_per_sec else None)
    return {"dataset": train_config.dataset, "params": count_params(model_config), "model": vars(model_config).copy(),
            "steps": len(history.steps), "max_iters": train_config.max_iters, "batch_size": train_config.batch_size,
            "final_val_loss": history.eval_val[-1], "best_val_loss": history.best_val,
            "final_train_loss": history.eval_train[-1], "train_seconds": history.train_seconds, "wall_seconds": wall,
            "tokens_per_sec": history.tokens_per_sec, "mfu": util, "interrupted": history.interrupted,
            "run_dir": train_config.out_dir}


# --- 2. GPT-2 124M throughput and MFU ------------------------------------------------------------------

@dataclass
class Trainer:
    """GPT-2 124M set up as the engine sets a model up, and one call of lesson 08's train_step per step()."""

    model: torch.nn.Module
    net: torch.nn.Module  # the compiled model, or the model itself
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: list
    device: DeviceChoice
    turn: int = 0

    def step(self) -> torch.Tensor:
        """One optimizer step on the next random batch: [loss, gradient norm], left on the device."""
        batch = self.batches[self.turn % len(self.batches)]
        self.turn += 1
        return train_step(self.net, self.optimizer, [batch], 1.0, self.device.autocast(), self.scaler)


def make_trainer(config, batch: int, device: DeviceChoice, compile: bool) -> Trainer:
    """A fresh model, its fused AdamW groups, the device's GradScaler, and four random batches of `batch` rows."""
    set_seed(1337)
    model = GPT(config).to(device.device).train()
    optimizer = configure_optimizer(model, 0.1, 6e-4, (0.9, 0.95), device.device_type)
    generator = torch.Generator().manual_seed(0)
    batches = [tuple(torch.randint(config.vocab_size, (batch, config.block_size), generator=generator)
                     .to(device.device) for _ in range(2)) for _ in range(4)]
    net = torch.compile(model) if compile else model
    return Trainer(model, net, optimizer, device.grad_scaler(), batches, device)


def timed_steps(step: Callable[[], torch.Tensor], n: int, device: DeviceChoice) -> tuple[float, torch.Tensor]:
    """Seconds for n steps, between two synchronisations, and the last step's [loss, norm]."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        values = step()
    synchronize(device)
    return time.perf_counter() - start, values


def warm_up(config, batch: int, device: DeviceChoice, compile: bool, steps: int) -> tuple[Trainer, str]:
    """A trainer past its warm-up steps (the first compiles), and how it runs: "compiled", or "eager" and why.
    A compiler failure falls back to eager, as the engine does; running out of memory is raised."""
    trainer = make_trainer(config, batch, device, compile)
    try:
        timed_steps(trainer.step, steps, device)
        return trainer, "compiled" if compile else "eager"
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 -- any compiler failure: measure eager, and say so
        if not compile:
            raise
        reason = f"eager (torch.compile failed: {type(error).__name__}: {first_line(error)[:160]})"
    print(f"throughput: {reason}")
    del trainer
    trainer = make_trainer(config, batch, device, compile=False)
    timed_steps(trainer.step, steps, device)
    return trainer, reason


def free_memory(device: DeviceChoice, compile: bool) -> None:
    """Give back what a batch that did not fit left allocated, and forget its compiled graphs."""
    gc.collect()
    if compile:
        torch._dynamo.reset()
    if device.device_type == "cuda":
        torch.cuda.empty_cache()


def run_throughput(plan: Plan, device: DeviceChoice, batch: int | None, compile: bool) -> dict:
    """Tokens/s and MFU of GPT-2 124M at the largest batch (batch, batch/2, ...) that fits: the median of
    `rounds` timed rounds after the warm-up."""
    config = preset("gpt2-padded", **plan.throughput_model)
    batch = batch or plan.batch
    while True:
        fitted = None
        try:
            fitted = warm_up(config, batch, device, compile, plan.warmup_steps)
        except torch.cuda.OutOfMemoryError:
            pass  # handled outside the except clause, so that the traceback's tensors can be freed
        if fitted is not None:
            break
        free_memory(device, compile)
        if batch == 1:
            raise RuntimeError("GPT-2 124M does not train at batch 1 on this device: out of memory")
        print(f"throughput: batch {batch} does not fit, trying {batch // 2}")
        batch //= 2
    trainer, how = fitted
    if device.device_type == "cuda":
        torch.cuda.reset_peak_memory_stats(device.device)
    seconds, losses = [], []
    for _ in range(plan.rounds):
        elapsed, values = timed_steps(trainer.step, plan.timed_steps, device)
        seconds.append(elapsed)
        losses.append(values[0].item())
    if not all(math.isfinite(loss) for loss in losses):
        raise FloatingPointError(f"the loss became {losses[-1]} while timing; the figures would mean nothing")
    tokens_per_step = batch * config.block_size
    rates = [tokens_per_step * plan.timed_steps / s for s in seconds]
    tokens_per_sec = statistics.median(rates)
    name = torch.cuda.get_device_name(device.device) if device.device_type == "cuda" else device.name
    util = mfu(tokens_per_sec, config, name, device.dtype) if device.device_type == "cuda" else None
    peak_memory = torch.cuda.max_memory_allocated(device.device) if device.device_type == "cuda" else None
    return {"preset": "gpt2-padded", "params": count_params(config), "model": vars(config).copy(), "batch_size": batch,
            "block_size": config.block_size, "tokens_per_step": tokens_per_step, "runs": how,
            "dtype": str(device.dtype).removeprefix("torch."), "grad_scaler": device.use_grad_scaler,
            "tokens_per_sec": tokens_per_sec, "tokens_per_sec_rounds": rates,
            "ms_per_step": 1e3 * statistics.median(seconds) / plan.timed_steps, "mfu": util,
            "peak_memory_gb": None if peak_memory is None else peak_memory / 1e9, "last_loss": losses[-1],
            "steps": plan.warmup_steps + plan.rounds * plan.timed_steps}


# --- 3. generation with and without the KV cache -------------------------------------------------------

def run_generation(plan: Plan, device: DeviceChoice) -> dict:
    """Greedy tokens/s of generate with and without the KV cache (the best of `generation_repeats` runs each,
    alternating, after a short warm-up of each), and whether the two made the same tokens."""
    config = preset("gpt2", **plan.generation_model)
    set_seed(0)
    model = GPT(config).to(device.device).eval()
    prompt = torch.randint(config.vocab_size, (1, plan.prompt_tokens), generator=torch.Generator().manual_seed(0))
    prompt = prompt.to(device.device)
    ways = {"kv_cache": True, "no_cache": False}
    seconds, outputs = {name: [] for name in ways}, {}
    for use_cache in ways.values():
        generate(model, prompt, min(8, plan.new_tokens), temperature=0, use_cache=use_cache)  # warm-up
    for _ in range(plan.generation_repeats):
        for name, use_cache in ways.items():
            elapsed, outputs[name] = timed_call(lambda cache=use_cache: generate(
                model, prompt, plan.new_tokens, temperature=0, use_cache=cache), device)
            seconds[name].append(elapsed)
    differ = (outputs["kv_cache"] != outputs["no_cache"])[0, plan.prompt_tokens:].nonzero()
    rates = {name: plan.new_tokens / min(times) for name, times in seconds.items()}
    return {"preset": "gpt2", "params": count_params(config), "model": vars(config).copy(),
            "prompt_tokens": plan.prompt_tokens, "new_tokens": plan.new_tokens, "dtype": "float32", "greedy": True,
            "tokens_per_sec_kv_cache": rates["kv_cache"], "tokens_per_sec_no_cache": rates["no_cache"],
            "speedup": rates["kv_cache"] / rates["no_cache"], "seconds": seconds, "identical_tokens": len(differ) == 0,
            "first_different_token": int(differ[0]) if len(differ) else None}


def timed_call(fn: Callable[[], torch.Tensor], device: DeviceChoice) -> tuple[float, torch.Tensor]:
    """Seconds one call of fn takes, between two synchronisations, and its output."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


# --- targets and the report -------------------------------------------------------------------------------

def problem(part: dict) -> str:
    """Why a part has no figures ("" when it has them): its error, or that --parts left it out."""
    if NOT_RUN in part:
        return f"not run ({part[NOT_RUN]})"
    return part.get("error", "")


def val_loss_target(part: dict, dry_run: bool) -> dict:
    """The Shakespeare-char target: final val loss <= 1.47, for the GPU profile as it stands (not a dry run)."""
    target = {"name": "Shakespeare-char (the GPU profile): final validation loss", "goal": f"<= {VAL_LOSS_TARGET}",
              "value": part.get("final_val_loss")}
    if problem(part):
        return {**target, "status": NOT_MEASURED, "why": problem(part)}
    if dry_run:
        return {**target, "status": NOT_APPLICABLE,
                "why": f"dry run: a tiny model for {part['steps']} steps, not the profile"}
    if part["dataset"] != "shakespeare_char":
        return {**target, "status": NOT_APPLICABLE, "why": f"trained on {part['dataset']}, not Shakespeare-char"}
    if part["interrupted"]:
        return {**target, "status": NOT_MEASURED, "why": f"interrupted after {part['steps']} steps"}
    return {**target, "status": PASS if part["final_val_loss"] <= VAL_LOSS_TARGET else FAIL, "why": ""}


def mfu_target(part: dict, dry_run: bool, peak_row: str | None) -> dict:
    """The GPT-2 124M target: MFU >= 45%, on an H100-class GPU (elsewhere the MFU is reported, not judged)."""
    target = {"name": "GPT-2 124M training: MFU", "goal": f">= {MFU_TARGET:.0%} on an H100-class GPU",
              "value": part.get("mfu")}
    if problem(part):
        return {**target, "status": NOT_MEASURED, "why": problem(part)}
    if dry_run:
        return {**target, "status": NOT_APPLICABLE, "why": "dry run: a tiny model, not GPT-2 124M"}
    if peak_row not in H100_CLASS:
        return {**target, "status": NOT_APPLICABLE, "why": f"not an H100-class GPU ({peak_row or 'no GPU peak known'})"}
    return {**target, "status": PASS if part["mfu"] >= MFU_TARGET else FAIL, "why": ""}


def number(value, spec: str = ",.1f", none: str = "n/a") -> str:
    """A figure for the report, or `none` when there is none."""
    return none if value is None else format(value, spec)


def profile_lines(p: dict) -> list[str]:
    return [f"Not measured: {problem(p)}."] if problem(p) else [
        f"{p['params']:,} parameters, {p['steps']} steps of batch {p['batch_size']} on `{p['dataset']}`: "
        f"val loss **{p['final_val_loss']:.4f}** at the end (best {p['best_val_loss']:.4f}, train "
        f"{p['final_train_loss']:.4f}), {p['train_seconds']:.1f} s of training ({p['wall_seconds']:.1f} s in all), "
        f"{number(p['tokens_per_sec'], ',.0f')} tokens/s at the end, MFU {number(p['mfu'], '.1%')}."]


def throughput_lines(t: dict) -> list[str]:
    memory = "n/a" if t.get("peak_memory_gb") is None else f"{t['peak_memory_gb']:.1f} GB"
    return [f"Not measured: {problem(t)}."] if problem(t) else [
        f"{t['params']:,} parameters (`{t['preset']}`), batch {t['batch_size']} × {t['block_size']} tokens, "
        f"{t['dtype']}{' + GradScaler' if t['grad_scaler'] else ''}, {t['runs']}: "
        f"**{t['tokens_per_sec']:,.0f} tokens/s** ({t['ms_per_step']:.1f} ms/step, the median of "
        f"{len(t['tokens_per_sec_rounds'])} rounds), MFU **{number(t['mfu'], '.1%')}**, peak memory {memory}."]


def generation_lines(g: dict) -> list[str]:
    if problem(g):
        return [f"Not measured: {problem(g)}."]
    same = "yes" if g["identical_tokens"] else f"**NO** (from new token {g['first_different_token']} on)"
    return [f"{g['params']:,} parameters (`{g['preset']}` shape, random weights, {g['dtype']}), greedy, "
            f"{g['new_tokens']} new tokens from {g['prompt_tokens']}:", "",
            "| | tokens/s |", "|---|---|",
            f"| KV cache | {g['tokens_per_sec_kv_cache']:,.1f} |",
            f"| no cache | {g['tokens_per_sec_no_cache']:,.1f} |", "",
            f"Speed-up **{g['speedup']:.1f}×**; identical tokens: {same}."]


def markdown(report: dict) -> str:
    """The report as markdown: the targets, each part's figures, and the machine."""
    m = report["machine"]
    title = "GPU benchmark" + (" (dry run: tiny models, not the targets' runs)" if report["dry_run"] else "")
    lines = [f"# {title}", "",
             f"{m['date']} · {m['device_name']} · torch {m['torch']} · CUDA {m['cuda'] or 'none'} · {m['dtype']}"
             f"{' + GradScaler' if m['grad_scaler'] else ''} · compile {'on' if m['compile'] else 'off'} · "
             f"commit {m['commit'] or 'unknown'}", "",
             "| target | measured | goal | status |", "|---|---|---|---|"]
    for t in report["targets"]:
        spec = ".1%" if "MFU" in t["name"] else ".3f"
        status = t["status"] + (f" ({t['why']})" if t["why"] else "")
        lines.append(f"| {t['name']} | {number(t['value'], spec)} | {t['goal']} | {status} |")
    lines += ["", "## 1. Shakespeare-char: the engine's GPU profile", "", *profile_lines(report["profile"]),
              "", "## 2. GPT-2 124M: training throughput (lesson 08's train_step)", "",
              *throughput_lines(report["throughput"]),
              "", "## 3. Generation: `generate` with and without the KV cache", "",
              *generation_lines(report["generation"]),
              "", "## Machine", "", f"{m['device_choice']}; {m['gpu_count']} GPU(s); peak "
              f"{number(m['peak_tflops'], ',.1f')} TFLOP/s ({m['peak_table_row'] or 'no row in gpu_peaks.csv'}); "
              f"Python {m['python']} on {m['platform']}; CPU threads: {m['cpu_threads']}.", ""]
    return "\n".join(lines)


def first_line(error: BaseException) -> str:
    """The first line of an error's message ("" for none): the rest goes with the traceback, which a report omits."""
    return (str(error).strip().splitlines() or [""])[0]


def run_part(name: str, fn: Callable[[], dict]) -> dict:
    """One part's figures, or {"error": one line} when it failed: the other parts still run."""
    print(f"--- {name}", flush=True)
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # noqa: BLE001 -- reported in the JSON and markdown; the next part runs
        message = f"{type(error).__name__}: {first_line(error)}"
        print(f"{name} failed: {message}")
        return {"error": message}
    print(f"{name}: done in {time.perf_counter() - start:.1f} s")
    return result


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """gpu.json and gpu.md in out."""
    json_path, md_path = out / "gpu.json", out / "gpu.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny models and steps: checks the benchmark in seconds")
    parser.add_argument("--device", choices=("cuda", "mps", "cpu"), help="default: the course's choice (CUDA first)")
    parser.add_argument("--out", type=Path, help=f"the report's folder (default {DEFAULT_OUT.relative_to(ROOT)}/, "
                                                 "or its dry-run/ for --dry-run)")
    parser.add_argument("--batch", type=int, help="the first batch tried for GPT-2 124M (default 32; halved until it fits)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile on or off (default: the device's choice)")
    parser.add_argument("--dataset", help="the profile's data: shakespeare_char, or a text file read as characters "
                                          "(default: shakespeare_char; a made-up text file for --dry-run)")
    parser.add_argument("--parts", nargs="+", choices=("profile", "throughput", "generation"),
                        default=["profile", "throughput", "generation"], help="which parts to run (default: all)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> Path:
    """The output folder; BadInput for settings that cannot work."""
    if args.batch is not None and args.batch < 1:
        raise BadInput(f"--batch {args.batch}: it must be a positive number of sequences")
    if args.dataset not in (None, "shakespeare_char") and not Path(args.dataset).is_file():
        raise BadInput(f"--dataset {args.dataset}: no such text file; give shakespeare_char or a UTF-8 text file")
    out = args.out or (DEFAULT_OUT / "dry-run" if args.dry_run else DEFAULT_OUT)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file; give a folder for the report")
    return out


def make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"--out {out}: cannot create the folder ({error.strerror})") from None


def main(argv: list[str] | None = None, caps: Capabilities | None = None) -> int:
    """Run the parts, write gpu.json and gpu.md; 0 when every part ran, 1 when one failed, 2 for bad input."""
    args = parse_args(argv)
    try:
        out = check_args(args)
        device = pick_device(args.device, args.dry_run, caps)
        make_folder(out)
    except BadInput as error:
        print(f"python -m benchmarks.gpu: {error}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    try:
        return run_benchmark(args, device, out)
    finally:
        torch.set_num_threads(threads)


def run_benchmark(args: argparse.Namespace, device: DeviceChoice, out: Path) -> int:
    plan = DRY_RUN if args.dry_run else FULL
    compile = device.compile if args.compile is None else args.compile
    device = dataclasses.replace(device, compile=compile)
    if device.device_type == "cpu":
        torch.set_num_threads(cpu_threads())  # the idle cores, as the engine takes: a busy core slows every thread
    machine = machine_facts(device)
    print(f"{'dry run' if plan.dry_run else 'benchmark'} on {machine['device_choice']}; reports in {out}", flush=True)
    parts = {
        "profile": lambda: run_profile(plan, device, out, args.dataset),
        "throughput": lambda: run_throughput(plan, device, args.batch, compile),
        "generation": lambda: run_generation(plan, device),
    }
    results = {name: run_part(name, fn) if name in args.parts else {NOT_RUN: "left out by --parts"}
               for name, fn in parts.items()}
    report = {"benchmark": "gpu", "dry_run": plan.dry_run, "machine": machine, **results,
              "targets": [val_loss_target(results["profile"], plan.dry_run),
                          mfu_target(results["throughput"], plan.dry_run, machine["peak_table_row"])]}
    json_path, md_path = write_report(report, out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    failed = [name for name, part in results.items() if "error" in part]
    if failed:
        print(f"failed: {', '.join(failed)} (see {md_path})", file=sys.stderr)
        return 1
    if "identical_tokens" in results["generation"] and not results["generation"]["identical_tokens"]:
        print("generation: the KV cache and no cache made different tokens", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
