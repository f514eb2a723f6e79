"""The training engine: a full training run built from lesson 08's pieces, with what no lesson teaches.

Hand-written infrastructure above the lessons (see ../shared/DESIGN.md). Lesson 08 teaches the loss, the
optimizer groups, the learning-rate schedule, `train_step` and `estimate_loss`, and a 40-line loop over
them; `train()` here runs the same pieces and adds:

- `TrainConfig`, whose values are checked as it is created, and two profiles (`cpu`, `gpu`);
- a run folder with `ckpt.pt` and `metrics.jsonl`, checkpoints that resume bit for bit (helpers.checkpoint);
- DDP under torchrun (helpers.distributed), mixed precision with a GradScaler, a torch.compile fallback;
- a clean stop on Ctrl-C, a clear error on a NaN loss, and a progress bar with tokens/s and MFU.

    from helpers.engine import profile, train
    model, history = train(*profile("cpu", out_dir="runs/cpu"))

Read `train()` first: it is a loop over the short steps of `Run` (step, log, evaluate, save).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from helpers.attention import GPTConfig
from helpers.checkpoint import (
    CHECKPOINT,
    FORMAT,
    CheckpointError,
    build_model,
    config_differences,
    load_checkpoint,
    model_classes,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from helpers.counting import mfu
from helpers.data import check_block_size, prepare_shakespeare, read_tokens
from helpers.device import DeviceChoice, choose_device
from helpers.distributed import (
    Distributed,
    StopRequest,
    gather_rng_states,
    mean_over_processes,
    rank_batch,
    setup_distributed,
)
from helpers.model import preset
from helpers.seeding import set_seed
from helpers.training import configure_optimizer, estimate_loss, get_lr, train_step

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # without ipywidgets tqdm.auto falls back to a text bar, and would warn about it
    from tqdm.auto import tqdm

METRICS = "metrics.jsonl"  # one JSON line per log step and per evaluation, in the run folder
DATASETS = {"shakespeare_char": "char", "shakespeare_gpt2": "gpt2"}  # dataset name -> helpers.data kind
TEXT_TOKENIZERS = ("gpt2", "bpe", "char")  # for a dataset that is a text file (helpers.prepare)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Fields that may change when a run is resumed; any other difference is an error. (lr_decay_iters may change
# only as long as the cosine still ends at the same step: see check_resumable.)
RESUMABLE_CHANGES = ("out_dir", "max_iters", "lr_decay_iters", "eval_interval", "eval_iters", "log_interval",
                     "checkpoint_interval", "device", "compile", "resume", "overwrite", "progress", "num_threads")


# --- configuration --------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """How to train (the model's shape is a GPTConfig). The defaults are the CPU recipe of lesson 08:
    with the preset "cpu", Tiny Shakespeare's characters on 2 CPU cores in about 3 minutes."""

    out_dir: str = "runs/default"  # the run's folder: ckpt.pt and metrics.jsonl
    dataset: str = "shakespeare_char"  # or "shakespeare_gpt2", or the path of a UTF-8 text file
    tokenizer: str = "gpt2"  # for a text file: gpt2 (GPT-2's BPE), bpe (trained on the file) or char
    bpe_vocab_size: int = 2048  # for tokenizer="bpe": its vocabulary, <|endoftext|> included
    max_iters: int = 3200  # optimizer steps
    batch_size: int = 16  # sequences per micro-batch, summed over all processes
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step
    learning_rate: float = 3e-3  # peak learning rate, reached after warm-up
    min_lr: float = 3e-4  # the floor of the cosine decay
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # where the cosine reaches min_lr; None: max_iters
    weight_decay: float = 0.1  # applied to 2-D weights only
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # clip the gradient's global norm to this; 0 turns clipping off
    eval_interval: int = 500  # evaluate (and checkpoint) every this many steps
    eval_iters: int = 20  # batches per split in each evaluation
    log_interval: int = 50  # steps between log lines (and GPU syncs)
    checkpoint_interval: int = 0  # also checkpoint every this many steps; 0: only at evaluations and the end
    seed: int = 1337
    device: str | None = None  # None: choose_device() picks cuda, mps or cpu
    dtype: str | None = None  # None: the device's choice (bf16, fp16 with a GradScaler, or float32)
    compile: bool | None = None  # None: torch.compile where the device choice says it works
    num_threads: int | None = None  # CPU threads for torch; None: the idle cores (see cpu_threads)
    resume: bool = False  # continue the run in out_dir from its checkpoint
    overwrite: bool = False  # replace a run already in out_dir
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        check_train_config(self)

    @property
    def decay_iters(self) -> int:
        """Where the cosine decay ends: lr_decay_iters, or max_iters if that is None."""
        return self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters


def _require(ok: bool, name: str, value, rule: str) -> None:
    if not ok:
        raise ValueError(f"TrainConfig.{name}={value!r}: {rule}")


def check_train_config(c: TrainConfig) -> None:
    """Raise ValueError naming the first field whose value cannot work, and what it must be."""
    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for name in ("max_iters", "batch_size", "gradient_accumulation_steps", "eval_interval", "eval_iters", "log_interval"):
        value = getattr(c, name)
        _require(is_int(value) and value >= (0 if name == "max_iters" else 1), name, value, "it must be a positive integer")
    for name in ("warmup_iters", "checkpoint_interval", "seed"):
        value = getattr(c, name)
        _require(is_int(value) and value >= 0, name, value, "it must be an integer >= 0")
    _require(c.learning_rate > 0, "learning_rate", c.learning_rate, "it must be > 0 (try 1e-3)")
    _require(0 <= c.min_lr <= c.learning_rate, "min_lr", c.min_lr, f"it must lie in [0, learning_rate={c.learning_rate}]")
    _require(c.lr_decay_iters is None or c.lr_decay_iters > c.warmup_iters, "lr_decay_iters", c.lr_decay_iters,
             f"it must be larger than warmup_iters={c.warmup_iters}, or None for max_iters")
    for name in ("weight_decay", "grad_clip"):
        _require(getattr(c, name) >= 0, name, getattr(c, name), "it must be >= 0")
    for name in ("beta1", "beta2"):
        _require(0 <= getattr(c, name) < 1, name, getattr(c, name), f"it must satisfy 0 <= {name} < 1")
    _require(c.dataset in DATASETS or Path(c.dataset).is_file(), "dataset", c.dataset,
             f"use one of {', '.join(DATASETS)}, or the path of a UTF-8 text file that exists")
    _require(c.tokenizer in TEXT_TOKENIZERS, "tokenizer", c.tokenizer, f"use one of {', '.join(TEXT_TOKENIZERS)}")
    _require(c.dtype is None or c.dtype in DTYPES, "dtype", c.dtype,
             f"use one of {', '.join(DTYPES)}, or None for the device's choice")
    _require(c.num_threads is None or c.num_threads >= 1, "num_threads", c.num_threads, "it must be at least 1, or None")


PROFILES: dict[str, dict] = {
    # The CPU recipe: the preset "cpu" with TrainConfig's defaults (how they were tuned: lesson 08).
    "cpu": dict(preset="cpu", model={}, train={}),
    # nanoGPT's Shakespeare-char recipe for one GPU: 10.7M parameters (no biases), 5000 steps.
    "gpu": dict(preset="shakespeare-char", model=dict(dropout=0.2),
                train=dict(max_iters=5000, batch_size=64, learning_rate=1e-3, min_lr=1e-4,
                           eval_interval=250, eval_iters=200, log_interval=10)),
}
PROFILE_ENV = "GPTFS_PROFILE"  # cpu or gpu: which profile the notebooks run, whatever the device


def profile(name: str, **overrides) -> tuple[GPTConfig, TrainConfig]:
    """The model and training configs of a profile in PROFILES; each override goes to the config that has
    the field (GPTConfig or TrainConfig). With dataset="shakespeare_gpt2" the vocabulary becomes GPT-2's."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; the profiles are: {', '.join(PROFILES)}")
    model_fields = {f.name for f in dataclasses.fields(GPTConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = [key for key in overrides if key not in model_fields | train_fields]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is neither a GPTConfig nor a TrainConfig field")
    spec = PROFILES[name]
    train_config = TrainConfig(**{**spec["train"], **{k: v for k, v in overrides.items() if k in train_fields}})
    model_overrides = {**spec["model"], **{k: v for k, v in overrides.items() if k in model_fields}}
    if "vocab_size" not in overrides:
        model_overrides.update(text_vocab_size(train_config))
    return preset(spec["preset"], **model_overrides), train_config


def text_vocab_size(config: TrainConfig) -> dict:
    """The model's vocab_size where the data fixes it in advance, padded to a multiple of 64 (GPU kernels like
    it): GPT-2's tokens, or a BPE trained on a text file. A text file read as characters is sized by check_fits."""
    if config.dataset in DATASETS:
        return {"vocab_size": 50304} if DATASETS[config.dataset] == "gpt2" else {}  # 50,257 padded
    if config.tokenizer == "char":
        return {}
    tokens = 50257 if config.tokenizer == "gpt2" else config.bpe_vocab_size
    return {"vocab_size": -(-tokens // 64) * 64}


def profile_for(device: DeviceChoice) -> str:
    """The name of the profile to run on this device: GPTFS_PROFILE if set, else gpu on CUDA and cpu elsewhere."""
    name = os.environ.get(PROFILE_ENV) or ("gpu" if device.device_type == "cuda" else "cpu")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; set it to one of {', '.join(PROFILES)}, or unset it")
    return name


# --- data -----------------------------------------------------------------------------------------

@dataclass
class TrainingData:
    """The token files of a dataset, opened as memmaps, and what rebuilds its tokenizer."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    tokenizer: dict  # {"kind": "char", "chars": [...]} or {"kind": "gpt2"} (see helpers.checkpoint.make_tokenizer)


def load_data(dataset: str, tokenizer: str = "gpt2", bpe_vocab_size: int = 2048, progress: bool = False) -> TrainingData:
    """Tokenize the dataset once and open its train and val token files: Tiny Shakespeare through lesson 02's
    prepare_shakespeare, or any UTF-8 text file through helpers.prepare (streamed, resumable, cached)."""
    if dataset not in DATASETS:
        if not Path(dataset).is_file():
            raise ValueError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}, or the path of a text file")
        from helpers.prepare import prepare_text_file

        text = prepare_text_file(dataset, tokenizer, vocab_size=bpe_vocab_size if tokenizer == "bpe" else None,
                                 progress=progress)
        return TrainingData(read_tokens(text.train_path), read_tokens(text.val_path), text.vocab_size, text.tokenizer)
    prepared = prepare_shakespeare(DATASETS[dataset])
    tokenizer = {"kind": "char", "chars": list(prepared.chars)} if prepared.kind == "char" else {"kind": "gpt2"}
    return TrainingData(read_tokens(prepared.train_path), read_tokens(prepared.val_path), prepared.vocab_size, tokenizer)


def check_fits(data: TrainingData, model_config: GPTConfig, batch_size: int) -> None:
    """Raise ValueError unless the model's vocabulary covers the data's and a batch fits in each split."""
    if model_config.vocab_size < data.vocab_size:
        raise ValueError(f"vocab_size={model_config.vocab_size} is smaller than the dataset's {data.vocab_size} "
                         f"tokens; set vocab_size to at least {data.vocab_size}")
    for name, split in (("train", data.train), ("val", data.val)):
        check_block_size(len(split), model_config.block_size)
        windows = len(split) - model_config.block_size
        if batch_size > windows:
            raise ValueError(f"batch_size={batch_size} is more than the {windows} windows of block_size="
                             f"{model_config.block_size} in the {name} split; use a smaller batch_size or block_size")


# --- what a run records, and how it fails -----------------------------------------------------------

@dataclass
class History:
    """What happened in a run: the loss of every step, the evaluations, and how the run ended."""

    steps: list[int] = field(default_factory=list)  # every optimizer step, counting from 0
    train_loss: list[float] = field(default_factory=list)  # the loss of that step's batch
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # the gradient's norm before clipping
    eval_steps: list[int] = field(default_factory=list)  # steps after which the model was evaluated
    eval_train: list[float] = field(default_factory=list)
    eval_val: list[float] = field(default_factory=list)
    tokens_per_sec: float | None = None  # the throughput of the last log interval
    train_seconds: float = 0.0  # time spent in this and earlier (resumed) calls, evaluations included
    interrupted: bool = False  # stopped by KeyboardInterrupt (the notebook's stop button or Ctrl-C)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def best_val(self) -> float | None:
        return min(self.eval_val) if self.eval_val else None


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step. The last good checkpoint is kept."""


# --- the run's setting: folder, device, threads, resume ---------------------------------------------

def prepare_out_dir(config: TrainConfig) -> Path:
    """The run's folder; refuses to mix two runs in one folder unless resume or overwrite says what to do."""
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out)!r} is a file, not a folder; choose a folder for the run (--out DIR)")
    existing = [out / name for name in (CHECKPOINT, METRICS) if (out / name).exists()]
    if config.resume:
        if not (out / CHECKPOINT).exists():
            raise ValueError(f"resume=True but {out} holds no {CHECKPOINT}; start the run without --resume")
    elif existing and not config.overwrite:
        raise ValueError(f"{out} already holds a run ({existing[0].name}); pass resume=True (--resume) to continue it, "
                         "overwrite=True (--overwrite) to replace it, or choose another out_dir")
    elif existing:
        for path in existing:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_cpu_times() -> dict[int, tuple[int, int]]:
    """Each CPU's (total, idle) time so far, from Linux's /proc/stat; {} where there is no such file."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            numbers = [int(v) for v in values]
            times[int(name[3:])] = (sum(numbers), numbers[3] + numbers[4])  # idle + iowait
    return times


def busy_cores(seconds: float = 0.25, read: Callable[[], dict] = read_cpu_times) -> float:
    """How many of this process's cores other programs keep busy: measured over `seconds` where /proc/stat
    exists (this process sleeps meanwhile, so it counts itself out), else the 1-minute load average, else 0."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    before = read()
    if before and cores <= set(before):
        time.sleep(seconds)
        after = read()
        spans = [(after[c][0] - before[c][0], after[c][1] - before[c][1]) for c in cores]
        return sum(1 - idle / total for total, idle in spans if total > 0)
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def cpu_threads(processes: int = 1, busy: float | None = None) -> int:
    """Threads for torch on a CPU: the cores other programs leave idle, shared among `processes`, at least 1,
    and never more than OMP_NUM_THREADS where that is set. On a busy machine, more threads than free cores
    make them wait for each other."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        cores = min(cores, max(1, int(os.environ["OMP_NUM_THREADS"])))
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, round(cores - busy)) // processes)


def resolve_device(config: TrainConfig, ddp_local_rank: int = 0) -> DeviceChoice:
    """The device choice of the foundation (helpers.device), with this config's overrides."""
    choice = choose_device(config.device)
    if config.dtype is not None:
        dtype = DTYPES[config.dtype]
        if choice.device == "cpu" and dtype == torch.float16:
            raise ValueError("dtype='float16' is not supported on the CPU; use float32 or bfloat16")
        choice = dataclasses.replace(choice, dtype=dtype, use_grad_scaler=dtype == torch.float16)
    if config.compile is not None:
        choice = dataclasses.replace(choice, compile=config.compile)
    if choice.device == "cuda":
        choice = dataclasses.replace(choice, device=f"cuda:{ddp_local_rank}")
    return choice


def check_resumable(state: dict, model_config: GPTConfig, config: TrainConfig) -> None:
    """Raise CheckpointError naming every field in which the checkpoint's configs differ from these."""
    problems = config_differences(state["model_config"], dataclasses.asdict(model_config))
    problems += config_differences(state["train_config"], dataclasses.asdict(config), ignore=RESUMABLE_CHANGES)
    if problems:
        raise CheckpointError(f"the checkpoint in {config.out_dir} was trained with a different config ("
                              + "; ".join(problems) + "); use its settings to resume, or --overwrite to start afresh")
    saved = state["train_config"]
    saved_end = state.get("schedule", {}).get("lr_decay_iters") or saved["lr_decay_iters"] or saved["max_iters"]
    if saved_end != config.decay_iters:
        raise CheckpointError(
            f"resuming would move the end of the learning-rate schedule from step {saved_end} to {config.decay_iters} "
            f"(lr_decay_iters follows max_iters unless it is set). To extend the run on purpose, keep the schedule "
            f"with lr_decay_iters={saved_end} (--lr_decay_iters {saved_end}): the extra steps then train at min_lr")


# --- one run, in short steps --------------------------------------------------------------------------

class Run:
    """One training run: its model, optimizer, data and history, and the step it has reached.

    `train()` drives it with four methods: `step()` trains one optimizer step, `log()` records the
    recent steps, `evaluate()` measures both splits, `save()` writes the checkpoint."""

    def __init__(self, model_config: GPTConfig, config: TrainConfig, device: DeviceChoice, ddp: Distributed):
        self.model_config, self.config, self.device, self.ddp = model_config, config, device, ddp
        if ddp.is_main:  # one process tokenizes; the others then open its finished files
            self.data = load_data(config.dataset, config.tokenizer, config.bpe_vocab_size, progress=config.progress)
        if ddp.world_size > 1:
            dist.barrier()
        if not ddp.is_main:
            self.data = load_data(config.dataset, config.tokenizer, config.bpe_vocab_size)
        check_fits(self.data, model_config, config.batch_size)
        self.out = prepare_out_dir(config) if ddp.is_main else Path(config.out_dir)
        if ddp.world_size > 1:
            dist.barrier()  # the main process has checked (and maybe cleared) the folder
        state = load_checkpoint(self.out / CHECKPOINT, device.device) if config.resume else None
        if state is not None:
            check_resumable(state, model_config, config)

        set_seed(config.seed)
        self.model = build_model(model_config).to(device.device)  # what is saved: never the DDP or compiled wrapper
        self.optimizer = configure_optimizer(self.model, config.weight_decay, config.learning_rate,
                                             (config.beta1, config.beta2), device.device_type)
        self.scaler = device.grad_scaler()
        self.data_generator = torch.Generator().manual_seed(config.seed)  # draws the training batches
        self.history, self.step_count, self.saved_step = History(), 0, None
        if state is not None:
            self._restore(state)
        elif ddp.world_size > 1:
            torch.manual_seed(config.seed + ddp.rank)  # each process its own dropout masks

        self.net = self.model  # what trains: DDP and compiled wrappers share the model's parameters
        if ddp.world_size > 1:
            device_ids = [ddp.local_rank] if device.device_type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.compiled = torch.compile(self.net) if device.compile else None  # tried on the first step
        self.pending = []  # (step, lr, [loss, norm] on the device) not yet read: one sync per log step
        self.rng = rng_states(self.data_generator)  # the random states at the start of the next step
        self.started = time.perf_counter()
        self.seconds_before = self.history.train_seconds  # from earlier, resumed, calls
        self.interval = (time.perf_counter(), self.step_count)  # where the current log interval began

    def _restore(self, state: dict) -> None:
        """Continue from a checkpoint: weights, optimizer, scaler, history, and every random state."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        rngs = state.get("rng_ranks") or [state["rng"]]  # each process its own random states
        same_processes = len(rngs) == self.ddp.world_size
        set_rng_states(rngs[self.ddp.rank] if same_processes else rngs[0], self.data_generator)
        if not same_processes and self.ddp.world_size > 1:  # resumed with another number of processes
            torch.manual_seed(self.config.seed + self.ddp.rank + state["step"])
        self.history = History(**{**state["history"], "interrupted": False})
        self.step_count = self.saved_step = state["step"]

    def step(self) -> None:
        """One optimizer step at the scheduled learning rate, on this process's share of the batch."""
        c = self.config
        lr = get_lr(self.step_count, c.learning_rate, c.min_lr, c.warmup_iters, max(c.decay_iters, c.warmup_iters + 1))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [rank_batch(self.data.train, self.model_config.block_size, c.batch_size, self.ddp,
                              self.device.device, self.data_generator) for _ in range(c.gradient_accumulation_steps)]
        values = self._train_step(batches)
        self.pending.append((self.step_count, lr, values))
        self.step_count += 1
        self.rng = rng_states(self.data_generator)

    def _train_step(self, batches: list) -> torch.Tensor:
        """Lesson 08's train_step, compiled if the device allows; a compiler failure falls back to eager once."""
        args = (self.optimizer, batches, self.config.grad_clip, self.device.autocast(), self.scaler)
        if self.compiled is None:
            return train_step(self.net, *args)
        try:
            values = train_step(self.compiled, *args)
        except Exception as error:  # noqa: BLE001 -- any compiler failure: fall back to eager
            print(f"torch.compile failed ({type(error).__name__}: {str(error)[:200]}); training eagerly instead")
            self.compiled = None
            self.optimizer.zero_grad(set_to_none=True)
            return train_step(self.net, *args)
        self.net, self.compiled = self.compiled, None  # compiled once and working: keep using it
        return values

    def record(self) -> None:
        """Move the pending losses to the history (one device sync), checking that they are finite."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        values = mean_over_processes(torch.stack([v for _, _, v in pending]), self.ddp)
        for (step, lr, _), (loss, norm) in zip(pending, values.tolist()):
            if not math.isfinite(loss):
                raise NonFiniteLossError(f"the loss became {loss} at step {step}; training stopped. {self._kept()} "
                                         "Lower learning_rate or check the data.")
            self.history.steps.append(step)
            self.history.train_loss.append(loss)
            self.history.lr.append(lr)
            self.history.grad_norm.append(norm)

    def _kept(self) -> str:
        if self.saved_step is None:
            return "No checkpoint had been written yet, so none is kept."
        return f"The last good checkpoint ({self.out / CHECKPOINT}, step {self.saved_step}) is kept."

    def log(self, bar: tqdm) -> None:
        """Record the recent steps, measure the throughput, and write a line to the bar and metrics.jsonl."""
        self.record()
        now, (start, start_step) = time.perf_counter(), self.interval
        tokens_per_step = self.config.batch_size * self.config.gradient_accumulation_steps * self.model_config.block_size
        h = self.history
        h.tokens_per_sec = tokens_per_step * (self.step_count - start_step) / (now - start)
        self.interval = (now, self.step_count)
        util = (mfu(h.tokens_per_sec / self.ddp.world_size, self.model_config, self.device.name, self.device.dtype)
                if self.device.device_type == "cuda" else None)
        bar.set_postfix(loss=f"{h.train_loss[-1]:.4f}", tok_s=f"{h.tokens_per_sec:,.0f}",
                        mfu="" if util is None else f"{util:.1%}", refresh=False)
        self._write_metrics({"step": self.step_count, "loss": h.train_loss[-1], "lr": h.lr[-1],
                             "grad_norm": h.grad_norm[-1], "tokens_per_sec": h.tokens_per_sec, "mfu": util})

    def evaluate(self) -> None:
        """estimate_loss (lesson 08) on both splits, into the history, metrics.jsonl and a printed line."""
        c, splits = self.config, {"train": self.data.train, "val": self.data.val}
        losses = estimate_loss(self.net, splits, self.model_config.block_size, c.batch_size, c.eval_iters,
                               self.device.device, self.device.autocast(), seed=c.seed)
        self.history.eval_steps.append(self.step_count)
        self.history.eval_train.append(losses["train"])
        self.history.eval_val.append(losses["val"])
        self._write_metrics({"step": self.step_count, "train_loss": losses["train"], "val_loss": losses["val"]})
        if self.ddp.is_main:
            tqdm.write(f"step {self.step_count}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")

    def save(self) -> None:
        """Write the checkpoint: the weights after the last completed step, and the random states to go on from
        it. Every process takes part (their random states are gathered); the main process writes."""
        self.record()
        self.history.train_seconds = self.seconds_before + time.perf_counter() - self.started
        rngs = gather_rng_states(self.rng, self.ddp)
        if self.ddp.is_main:
            save_checkpoint(self.out / CHECKPOINT, {
                "format": FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rngs[0], "rng_ranks": rngs, "step": self.step_count,
                "history": self.history.to_dict(), "schedule": {"lr_decay_iters": self.config.decay_iters},
                "model_kind": type(self.model_config).__name__, "model_config": dataclasses.asdict(self.model_config),
                "train_config": dataclasses.asdict(self.config), "tokenizer": self.data.tokenizer})
        self.saved_step = self.step_count

    def _write_metrics(self, record: dict) -> None:
        """Append one JSON line to the run's metrics.jsonl (the main process only)."""
        if self.ddp.is_main:
            with open(self.out / METRICS, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def train(model_config: GPTConfig, config: TrainConfig, callback: Callable[[History], None] | None = None,
          ) -> tuple[nn.Module, History]:
    """Train the model of model_config (a GPT, or lesson 10's Llama for a LlamaConfig) as config says; return
    the model (on its device, in train mode) and its History.

    Checkpoints go to config.out_dir/ckpt.pt, metrics to metrics.jsonl. Under torchrun it trains with DDP.
    KeyboardInterrupt (Ctrl-C, the notebook's stop button) saves a checkpoint and returns (history.interrupted);
    a NaN or infinite loss raises NonFiniteLossError and keeps the last good checkpoint. `callback(history)`
    runs after every log line and evaluation (a live plot, say)."""
    if not dataclasses.is_dataclass(model_config) or isinstance(model_config, type):
        raise ValueError(f"model_config must be a GPTConfig (or lesson 10's LlamaConfig), got "
                         f"{type(model_config).__name__}; use helpers.model.preset(name) or profile(name)")
    model_classes(type(model_config).__name__)  # a clear error now for a config the engine cannot build
    ddp = setup_distributed(resolve_device(config).device_type)
    device = resolve_device(config, ddp.local_rank)
    if config.batch_size % ddp.world_size:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {ddp.world_size} processes")
    threads = torch.get_num_threads()
    if device.device_type == "cpu":
        torch.set_num_threads(config.num_threads or cpu_threads(ddp.world_size))
    try:
        run = Run(model_config, config, device, ddp)
        return _train_loop(run, callback)
    finally:
        torch.set_num_threads(threads)  # the notebook's later cells keep their own thread count


def _train_loop(run: Run, callback: Callable[[History], None] | None) -> tuple[nn.Module, History]:
    """Step until max_iters: log every log_interval steps, evaluate and save every eval_interval steps."""
    c, stop = run.config, StopRequest(run.ddp)
    bar = tqdm(total=c.max_iters, initial=run.step_count, disable=not (c.progress and run.ddp.is_main),
               mininterval=1.0, dynamic_ncols=True)
    run.net.train()
    try:
        while run.step_count < c.max_iters:
            run.step()
            bar.update(1)
            step, is_last = run.step_count, run.step_count == c.max_iters
            evaluating = step % c.eval_interval == 0 or is_last
            if step % c.log_interval == 0 or evaluating:
                run.log(bar)
                if callback is not None and not evaluating:
                    callback(run.history)
                if stop.requested(run.device.device):  # every process stops at this same step
                    raise KeyboardInterrupt
            if evaluating:
                run.evaluate()
                if callback is not None:
                    callback(run.history)
            if evaluating or (c.checkpoint_interval and step % c.checkpoint_interval == 0):
                run.save()
    except KeyboardInterrupt:
        run.history.interrupted = True
        run.save()
        if run.ddp.is_main:
            print(f"Interrupted at step {run.step_count}: checkpoint saved to {run.out / CHECKPOINT}; "
                  "resume=True continues from here.")
    finally:
        stop.restore()
        bar.close()
    return run.model, run.history
