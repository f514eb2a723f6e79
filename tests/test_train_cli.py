"""python -m helpers.train: the command line over helpers.training, and DDP through torchrun (gloo, 2 CPU processes).

`helpers.train` is also the name of the train() function in helpers/__init__.py, so the command line is run
as a subprocess or with runpy, never imported.
"""

import json
import os
import runpy
import subprocess
import sys

import pytest
import torch

from helpers.training import load_checkpoint

TINY = ["--vocab_size", "65", "--block_size", "16", "--n_layer", "1", "--n_head", "2", "--n_embd", "16",
        "--dropout", "0.0", "--batch_size", "4", "--warmup_iters", "2", "--eval_interval", "4", "--eval_iters", "2",
        "--log_interval", "1", "--num_threads", "1", "--no-progress", "--device", "cpu"]


def run_cli(*args, timeout=120):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "helpers.train", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def logged_losses(run_dir) -> list[float]:
    lines = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    return [line["loss"] for line in lines if "loss" in line]


def run_main(monkeypatch, *args) -> int:
    monkeypatch.setattr(sys, "argv", ["python -m helpers.train", *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("helpers.train", run_name="__main__")
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


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    args = ["--out", None, "--max_iters", "4", "--lr_decay_iters", "8", *TINY, "--batch_size", "8"]
    args[1] = str(tmp_path / "single")
    single = run_cli(*args)
    assert single.returncode == 0, single.stderr
    args[1] = str(tmp_path / "ddp")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "helpers.train", *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = logged_losses(tmp_path / "single"), logged_losses(tmp_path / "ddp")
    assert len(one) == len(two) == 4
    assert torch.allclose(torch.tensor(one), torch.tensor(two), atol=1e-5), (one, two)
    a, b = load_checkpoint(tmp_path / "single")["model"], load_checkpoint(tmp_path / "ddp")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # the same weights after 4 steps


def test_a_nan_loss_ends_the_command_with_one_clear_line(tmp_path, monkeypatch, capsys):
    from helpers.model import GPT

    real_loss = GPT.loss
    monkeypatch.setattr(GPT, "loss", staticmethod(lambda logits, targets: real_loss(logits, targets) * float("nan")))
    code = run_main(monkeypatch, *TINY, "--max_iters", "3", "--out", str(tmp_path / "run"))
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became nan at step 0") and "Traceback" not in err
