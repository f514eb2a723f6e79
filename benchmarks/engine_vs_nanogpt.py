"""Time the engine's training loop against nanoGPT's train.py: the same model, data, batch, iterations and
evaluation schedule, run side by side (target: the engine takes at most 0.9x nanoGPT's wall time).

    python benchmarks/engine_vs_nanogpt.py --nanogpt /path/to/nanoGPT      # or set NANOGPT_DIR
    python benchmarks/engine_vs_nanogpt.py --nanogpt ... --repeats 3 --max_iters 400

nanoGPT's code is never copied into this repository: the script runs the train.py of your checkout
(git clone https://github.com/karpathy/nanoGPT) in a temporary folder that holds our Tiny Shakespeare token
files under nanoGPT's names (data/shakespeare_char/train.bin, val.bin, meta.pkl). Without a checkout it says
so and times the engine alone.

Both runs train nanoGPT's "baby" model on characters (4 layers, 4 heads, n_embd 128, context 64, no biases,
no dropout) with batch 12, float32, no torch.compile, on the same number of threads, evaluating 20 batches
per split every --eval_interval steps and saving a checkpoint after each evaluation. The time is the wall
time of the training loop: for nanoGPT, from its first evaluation line (step 0, which the engine does not
have) to its last log line; for the engine, History.train_seconds. Runs alternate, so that a change in the
machine's load hits both alike; the best and the median of --repeats runs are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
TRAIN = dict(batch_size=12, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, beta2=0.99, weight_decay=0.1,
             grad_clip=1.0, eval_iters=20, log_interval=10, gradient_accumulation_steps=1)

ENGINE_RUN = """
import json, sys
from helpers.attention import GPTConfig
from helpers.engine import TrainConfig, train
model, train_config = json.loads(sys.argv[1]), json.loads(sys.argv[2])
_, history = train(GPTConfig(**model), TrainConfig(**train_config))
print(json.dumps({"seconds": history.train_seconds, "val_loss": history.eval_val[-1], "steps": len(history.steps)}))
"""


def nanogpt_folder(nanogpt: Path, work: Path) -> Path:
    """A folder to run nanoGPT's train.py in: its configurator.py, and our Tiny Shakespeare characters as
    data/shakespeare_char/{train,val}.bin and meta.pkl (nanoGPT's own prepare.py makes the same files)."""
    from helpers.data import prepare_shakespeare

    prepared = prepare_shakespeare("char")
    data = work / "data" / "shakespeare_char"
    data.mkdir(parents=True)
    (data / "train.bin").symlink_to(prepared.train_path.resolve())
    (data / "val.bin").symlink_to(prepared.val_path.resolve())
    chars = list(prepared.chars)
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)
    (work / "configurator.py").symlink_to((nanogpt / "configurator.py").resolve())
    return work


def run_nanogpt(nanogpt: Path, work: Path, max_iters: int, eval_interval: int, threads: int) -> dict:
    """Run nanoGPT's train.py; the loop's wall time from its step-0 evaluation line to its last line."""
    settings = {**MODEL, **TRAIN, "max_iters": max_iters, "lr_decay_iters": max_iters, "eval_interval": eval_interval,
                "dataset": "shakespeare_char", "device": "cpu", "compile": False, "dtype": "float32",
                "out_dir": str(work / "out"), "always_save_checkpoint": True}
    settings.pop("vocab_size")  # nanoGPT reads it from meta.pkl
    args = [f"--{key}={value}" for key, value in settings.items()]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, "-u", str(nanogpt / "train.py"), *args], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = end = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("step 0:"):
            start = time.perf_counter()
        end = time.perf_counter()
    if process.wait() != 0 or start is None:
        raise RuntimeError("nanoGPT's train.py failed:\n" + "".join(lines[-20:]))
    val_loss = [float(line.split("val loss")[1]) for line in lines if line.startswith("step ")][-1]
    return {"seconds": end - start, "val_loss": val_loss, "steps": max_iters + 1}


def run_engine(work: Path, max_iters: int, eval_interval: int, threads: int) -> dict:
    """Run the engine (helpers.engine.train) in a fresh process; the loop's wall time is History.train_seconds."""
    train = {**TRAIN, "max_iters": max_iters, "eval_interval": eval_interval, "device": "cpu", "compile": False,
             "dtype": "float32", "num_threads": threads, "out_dir": str(work / "engine"), "overwrite": True,
             "progress": False}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", ENGINE_RUN, json.dumps(MODEL), json.dumps(train)], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError("the engine failed:\n" + result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", default=os.environ.get("NANOGPT_DIR"),
                        help="a nanoGPT checkout (default: $NANOGPT_DIR)")
    parser.add_argument("--max_iters", type=int, default=400)
    parser.add_argument("--eval_interval", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else os.cpu_count())
    args = parser.parse_args(argv)
    nanogpt = Path(args.nanogpt).expanduser() if args.nanogpt else None
    if nanogpt is None:
        print("No nanoGPT checkout given (--nanogpt or NANOGPT_DIR): skipping the comparison, timing the engine alone.")
    elif not (nanogpt / "train.py").is_file():
        print(f"error: {nanogpt} holds no train.py; give the folder of a nanoGPT checkout (git clone "
              "https://github.com/karpathy/nanoGPT)", file=sys.stderr)
        return 2

    print(f"{args.max_iters} steps of batch 12 x 64, evaluation every {args.eval_interval}, {args.threads} threads; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {"engine": []} | ({"nanoGPT": []} if nanogpt else {})
    with tempfile.TemporaryDirectory(prefix="engine-vs-nanogpt-") as tmp:
        work = nanogpt_folder(nanogpt, Path(tmp)) if nanogpt else Path(tmp)
        for repeat in range(args.repeats):
            for name in times:
                result = (run_engine(work, args.max_iters, args.eval_interval, args.threads) if name == "engine"
                          else run_nanogpt(nanogpt, work, args.max_iters, args.eval_interval, args.threads))
                times[name].append(result["seconds"])
                print(f"run {repeat + 1} {name:8s}: {result['seconds']:6.2f} s for {result['steps']} steps, "
                      f"final val loss {result['val_loss']:.4f}")
    for name, seconds in times.items():
        print(f"{name:8s} best {min(seconds):6.2f} s  median {statistics.median(seconds):6.2f} s")
    if nanogpt:
        best = min(times["engine"]) / min(times["nanoGPT"])
        median = statistics.median(times["engine"]) / statistics.median(times["nanoGPT"])
        print(f"engine / nanoGPT wall time: {best:.2f}x (best runs), {median:.2f}x (medians); target <= 0.90x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
