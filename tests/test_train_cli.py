"""`python -m helpers train`: the command line over helpers.engine, and DDP through torchrun (gloo, 2 CPU processes).

The command line is run as a subprocess, or in this process with runpy, as `python -m helpers` runs it.
"""

import json
import os
import runpy
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("shakespeare")  # every test here trains on it, most in a subprocess

TINY = ["--vocab_size", "65", "--block_size", "16", "--n_layer", "1", "--n_head", "2", "--n_embd", "16",
        "--dropout", "0.0", "--batch_size", "4", "--warmup_iters", "2", "--eval_interval", "4", "--eval_iters", "2",
        "--log_interval", "1", "--num_threads", "1", "--no-progress", "--device", "cpu"]


def run_cli(*args, timeout=120):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "helpers", "train", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def logged_losses(run_dir) -> list[float]:
    lines = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    return [line["loss"] for line in lines if "loss" in line]


def run_main(monkeypatch, *args) -> int:
    monkeypatch.setattr(sys, "argv", ["python -m helpers", "train", *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("helpers", run_name="__main__")
    return done.value.code


def test_help_lists_every_field():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--profile", "--preset", "--out", "--resume", "--overwrite", "--learning_rate", "--max_iters",
                 "--gradient_accumulation_steps", "--n_layer", "--dropout", "--checkpoint_interval", "--no-compile"):
        assert flag in result.stdout, flag


def test_train_then_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run_main(monkeypatch, "--out", str(out), "--max_iters", "4", "--lr_decay_iters", "8", *TINY) == 0
    assert "done at step 4" in capsys.readouterr().out
    assert run_main(monkeypatch, "--out", str(out), "--max_iters", "4", *TINY) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert run_main(monkeypatch, "--out", str(out), "--max_iters", "8", "--lr_decay_iters", "8", "--resume", *TINY) == 0
    assert load_checkpoint(out)["step"] == 8
    straight = tmp_path / "straight"
    assert run_main(monkeypatch, "--out", str(straight), "--max_iters", "8", "--lr_decay_iters", "8", *TINY) == 0
    assert logged_losses(out) == logged_losses(straight)


@pytest.mark.parametrize("args, message", [
    (["--preset", "gpt5"], "unknown preset 'gpt5'"),
    (["--learning_rate", "0"], "learning_rate"),
    (["--block_size", "100000000"], "block_size"),
])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    assert run_main(monkeypatch, "--out", str(tmp_path / "run"), *TINY, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_profile_is_refused():
    result = run_cli("--profile", "tpu")
    assert result.returncode == 2 and "invalid choice: 'tpu'" in result.stderr


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "helpers", "train"]
TORCHRUN_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run_ddp(*args, timeout=120):
    """python -m helpers train ARGS on two gloo processes, as torchrun starts them."""
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=timeout, env=TORCHRUN_ENV)


@pytest.mark.parametrize("accumulation", [1, 2])
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path, accumulation):
    """The same global batch (batch_size rows per micro-batch, `accumulation` micro-batches) on one process
    or split over two gives the same losses and weights."""
    args = ["--max_iters", "4", "--lr_decay_iters", "8", *TINY, "--batch_size", "8",
            "--gradient_accumulation_steps", str(accumulation)]
    single = run_cli("--out", str(tmp_path / "single"), *args)
    assert single.returncode == 0, single.stderr
    ddp = run_ddp("--out", str(tmp_path / "ddp"), *args)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = logged_losses(tmp_path / "single"), logged_losses(tmp_path / "ddp")
    assert len(one) == len(two) == 4
    assert torch.allclose(torch.tensor(one), torch.tensor(two), atol=1e-5), (one, two)
    a, b = load_checkpoint(tmp_path / "single")["model"], load_checkpoint(tmp_path / "ddp")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # the same weights after 4 steps


def test_ddp_with_dropout_and_accumulation_resumes_with_each_process_s_own_random_states(tmp_path):
    """Each process draws its own dropout masks; a resumed run gives each process its own states back,
    so stopping and resuming changes nothing."""
    args = [*TINY, "--dropout", "0.1", "--gradient_accumulation_steps", "2", "--batch_size", "8",
            "--lr_decay_iters", "8", "--eval_interval", "3"]
    straight = run_ddp("--out", str(tmp_path / "straight"), "--max_iters", "6", *args)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = run_ddp("--out", str(tmp_path / "split"), "--max_iters", "3", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    state = load_checkpoint(tmp_path / "split")
    assert len(state["rng_ranks"]) == 2 and not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    resumed = run_ddp("--out", str(tmp_path / "split"), "--max_iters", "6", "--resume", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert logged_losses(tmp_path / "split") == logged_losses(tmp_path / "straight")


def worker_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of the processes torchrun started (read from /proc: Linux only)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            ranks = [line.split(b"=", 1)[1] for line in environ if line.startswith(b"RANK=")]
            if ranks:
                found[int(ranks[0])] = int(entry)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes through /proc")
def test_ctrl_c_in_one_ddp_process_stops_all_of_them_at_the_same_step(tmp_path):
    """A signal that reaches one process only must not leave the other waiting in a collective: both stop
    at the same step, the checkpoint is written, and the command ends normally."""
    out = tmp_path / "run"
    job = subprocess.Popen([*TORCHRUN, "--out", str(out), "--max_iters", "100000", *TINY, "--eval_interval", "100000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=TORCHRUN_ENV)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ((out / "metrics.jsonl").exists() and len(logged_losses(out)) >= 3):
            time.sleep(0.2)
        workers = worker_pids(job.pid)
        assert set(workers) == {0, 1}, workers
        os.kill(workers[1], signal.SIGINT)  # the second process only
        stdout, stderr = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == 0, stderr[-3000:]
    assert "Interrupted at step" in stdout and "Traceback" not in stderr
    step = load_checkpoint(out)["step"]
    assert 3 <= step < 100000 and f"Interrupted at step {step}" in stdout


def test_an_out_path_that_is_a_file_is_one_clear_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").write_text("a file")
    assert run_main(monkeypatch, "--out", str(tmp_path / "taken"), *TINY, "--max_iters", "2") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out_dir=") and "is a file, not a folder" in err and "Traceback" not in err


def test_a_nan_loss_ends_the_command_with_one_clear_line(tmp_path, monkeypatch, capsys):
    from helpers.model import GPT

    real_loss = GPT.loss
    monkeypatch.setattr(GPT, "loss", staticmethod(lambda logits, targets: real_loss(logits, targets) * float("nan")))
    code = run_main(monkeypatch, *TINY, "--max_iters", "3", "--out", str(tmp_path / "run"))
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became nan at step 0") and "Traceback" not in err


def test_train_on_a_text_file_of_ones_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path / "data"))
    text = tmp_path / "notes.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 400, encoding="utf-8")
    tiny = [arg for arg in TINY]
    tiny[tiny.index("--vocab_size") + 1] = "64"
    args = ["--dataset", str(text), "--tokenizer", "char", "--out", str(tmp_path / "run"), "--max_iters", "2", *tiny]
    assert run_main(monkeypatch, *args) == 0
    assert "done at step 2" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run")["tokenizer"]["kind"] == "char"
    assert run_main(monkeypatch, "--dataset", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "x"), *tiny) == 2
    assert "text file that exists" in capsys.readouterr().err


def test_arch_llama_trains_lesson_10s_model(tmp_path, monkeypatch, capsys):
    args = ["--arch", "llama", "--n_kv_head", "1", "--out", str(tmp_path / "llama"), "--max_iters", "2", *TINY]
    assert run_main(monkeypatch, *args) == 0
    state = load_checkpoint(tmp_path / "llama")
    assert state["model_kind"] == "LlamaConfig"
    assert (state["model_config"]["n_kv_head"], state["model_config"]["n_head"], state["model_config"]["n_embd"]) == (1, 2, 16)
    capsys.readouterr()
    assert run_main(monkeypatch, "--n_kv_head", "1", "--out", str(tmp_path / "gpt"), *TINY) == 2
    assert "add --arch llama" in capsys.readouterr().err
