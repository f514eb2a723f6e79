"""benchmarks/engine_vs_nanogpt.py: the engine against nanoGPT's train.py. A fake checkout stands in for
nanoGPT here (its code is never in this repository): it checks the settings it is given and prints lines in
train.py's format, so the script's folder, arguments, timing and parsing are all walked."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "engine_vs_nanogpt.py"

FAKE_TRAIN = """
import pickle, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
assert Path("configurator.py").exists(), "train.py runs in a folder with configurator.py"
meta = pickle.load(open("data/shakespeare_char/meta.pkl", "rb"))
assert meta["vocab_size"] == 65 and Path("data/shakespeare_char/train.bin").stat().st_size > 1_000_000
for key, value in {"batch_size": "12", "block_size": "64", "n_layer": "4", "n_embd": "128", "bias": "False",
                   "dropout": "0.0", "compile": "False", "dtype": "float32", "device": "cpu", "eval_iters": "20",
                   "gradient_accumulation_steps": "1", "max_iters": "4", "eval_interval": "2"}.items():
    assert args[key] == value, (key, args[key])
print("tokens per iteration will be: 768")
for step in range(int(args["max_iters"]) + 1):
    if step % int(args["eval_interval"]) == 0:
        print(f"step {step}: train loss 4.0000, val loss {4.1 - step / 100:.4f}")
    print(f"iter {step}: loss 4.0000, time 10.00ms, mfu -100.00%")
"""


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_engine_against_a_fake_nanogpt(tmp_path, shakespeare):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    (tmp_path / "configurator.py").write_text("# nanoGPT's reads the --key=value arguments\n")
    result = run("--nanogpt", str(tmp_path), "--max_iters", "4", "--eval_interval", "2", "--repeats", "1",
                 "--threads", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nanoGPT : " in result.stdout and "final val loss 4.0600" in result.stdout  # parsed from its last eval
    assert "engine  : " in result.stdout and "for 4 steps" in result.stdout
    assert "engine / nanoGPT wall time:" in result.stdout and "target <= 0.90x" in result.stdout


def test_without_nanogpt_it_says_so_and_times_the_engine(shakespeare, monkeypatch):
    monkeypatch.delenv("NANOGPT_DIR", raising=False)
    result = run("--max_iters", "2", "--eval_interval", "2", "--repeats", "1", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "No nanoGPT checkout given" in result.stdout and "engine  : " in result.stdout
    assert "nanoGPT" not in result.stdout.split("\n", 1)[1]


def test_a_folder_without_train_py_is_one_line(tmp_path):
    result = run("--nanogpt", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "holds no train.py" in result.stderr
