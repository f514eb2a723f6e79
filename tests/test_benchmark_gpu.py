"""The GPU benchmark (benchmarks/gpu.py) on the CPU: its dry run writes an honest report, and its GPU-only
decisions (device, batch halving, the compile fallback, the targets' verdicts) are walked with fakes."""

import dataclasses
import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

from benchmarks import gpu
from helpers.device import Capabilities, choose_device
from helpers.downloads import fetch

ROOT = Path(__file__).resolve().parent.parent
CPU = choose_device("cpu")


@pytest.fixture
def one_thread():
    """Tiny models on a shared CPU: one thread does not wait for busy cores (main() picks the idle ones)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_dry_run_command_writes_the_json_and_markdown_report(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--dry-run", "--device", "cpu", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    text = (tmp_path / "gpu.md").read_text(encoding="utf-8")

    m = report["machine"]
    assert report["dry_run"] is True
    assert datetime.fromisoformat(m["date"]).tzinfo is not None
    assert (m["device"], m["torch"], m["cuda"], m["dtype"], m["compile"]) == ("cpu", torch.__version__,
                                                                              torch.version.cuda, "float32", False)
    assert m["cpu_threads"] >= 1

    p = report["profile"]
    assert p["steps"] == p["max_iters"] == gpu.DRY_RUN.profile_overrides["max_iters"]
    assert all(finite(p[k]) for k in ("final_val_loss", "best_val_loss", "final_train_loss", "train_seconds"))
    assert 0 < p["final_val_loss"] < 6 and p["mfu"] is None  # a fresh model scores about ln(vocab) = 3.4
    assert (tmp_path / "profile-run" / "ckpt.pt").is_file()

    t = report["throughput"]
    assert t["runs"] == "eager" and t["mfu"] is None and t["batch_size"] == gpu.DRY_RUN.batch
    assert t["tokens_per_step"] == t["batch_size"] * t["block_size"]
    assert all(finite(r) and r > 0 for r in t["tokens_per_sec_rounds"]) and finite(t["last_loss"])
    assert min(t["tokens_per_sec_rounds"]) <= t["tokens_per_sec"] <= max(t["tokens_per_sec_rounds"])

    g = report["generation"]
    assert g["identical_tokens"] is True and g["first_different_token"] is None and g["new_tokens"] == gpu.DRY_RUN.new_tokens
    rates = g["tokens_per_sec_kv_cache"], g["tokens_per_sec_no_cache"]
    assert all(finite(r) and r > 0 for r in rates)
    assert math.isclose(g["speedup"], rates[0] / rates[1])

    val, util = report["targets"]
    assert (val["goal"], val["value"], val["status"]) == ("<= 1.47", p["final_val_loss"], "not applicable")
    assert (util["goal"], util["value"], util["status"]) == (">= 45% on an H100-class GPU", None, "not applicable")
    for line in (f"| {val['name']} | {p['final_val_loss']:.3f} | <= 1.47 | not applicable (dry run: a tiny model for 6 steps, not the profile) |",
                 f"| {util['name']} | n/a | >= 45% on an H100-class GPU | not applicable (dry run: a tiny model, not GPT-2 124M) |",
                 f"val loss **{p['final_val_loss']:.4f}**", f"**{t['tokens_per_sec']:,.0f} tokens/s**",
                 f"| KV cache | {rates[0]:,.1f} |", "identical tokens: yes",
                 f"torch {torch.__version__} · CUDA none · float32 · compile off"):
        assert line in text, line


def test_the_targets_are_judged_on_the_full_runs_only():
    run = {"dataset": "shakespeare_char", "final_val_loss": 1.46, "steps": 5000, "interrupted": False}
    assert gpu.val_loss_target(run, dry_run=False)["status"] == "pass"
    assert gpu.val_loss_target({**run, "final_val_loss": 1.48}, dry_run=False)["status"] == "fail"
    assert gpu.val_loss_target(run, dry_run=True)["status"] == "not applicable"
    assert gpu.val_loss_target({**run, "interrupted": True}, dry_run=False)["status"] == "not measured"
    assert gpu.val_loss_target({**run, "dataset": "my.txt"}, dry_run=False)["status"] == "not applicable"
    failed = gpu.val_loss_target({"error": "DownloadError: no network"}, dry_run=False)
    assert (failed["status"], failed["why"]) == ("not measured", "DownloadError: no network")

    assert gpu.mfu_target({"mfu": 0.46}, False, "H100 SXM")["status"] == "pass"
    assert gpu.mfu_target({"mfu": 0.44}, False, "H200 NVL")["status"] == "fail"
    assert gpu.mfu_target({"mfu": 0.60}, False, "A100")["status"] == "not applicable"  # not H100-class: reported only
    assert gpu.mfu_target({"mfu": None}, False, None)["status"] == "not applicable"  # the CPU: no peak to divide by
    assert gpu.mfu_target({"mfu": 0.46}, True, "H100 SXM")["status"] == "not applicable"


def test_a_failed_part_and_a_missed_target_show_in_the_markdown():
    machine = gpu.machine_facts(CPU)
    profile_run = {"dataset": "shakespeare_char", "params": 10_745_088, "steps": 5000, "max_iters": 5000,
                   "batch_size": 64, "final_val_loss": 1.5, "best_val_loss": 1.49, "final_train_loss": 1.3,
                   "train_seconds": 200.0, "wall_seconds": 230.0, "tokens_per_sec": 4e5, "mfu": 0.2, "interrupted": False}
    report = {"dry_run": False, "machine": machine, "profile": profile_run,
              "throughput": {"error": "OutOfMemoryError: CUDA out of memory"}, "generation": {gpu.NOT_RUN: "left out"},
              "targets": [gpu.val_loss_target(profile_run, False), gpu.mfu_target({"error": "OutOfMemoryError"}, False,
                                                                                  "H100 SXM")]}
    text = gpu.markdown(report)
    assert "| 1.500 | <= 1.47 | fail |" in text
    assert "| n/a | >= 45% on an H100-class GPU | not measured (OutOfMemoryError) |" in text
    assert "Not measured: OutOfMemoryError: CUDA out of memory." in text
    assert "Not measured: not run (left out)." in text
    assert "dry run" not in text.splitlines()[0]


def test_bad_input_gets_one_line_and_status_2(tmp_path, capsys):
    no_gpu = Capabilities()
    cases = {(): "--dry-run", ("--device", "cuda"): "--device cpu", ("--dry-run", "--batch", "0"): "--batch 0",
             ("--dry-run", "--out", __file__): "is a file", ("--dry-run", "--dataset", "nowhere.txt"): "no such text"}
    for args, hint in cases.items():
        out = () if "--out" in args else ("--out", str(tmp_path / "report"))
        assert gpu.main([*args, *out], caps=no_gpu) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and hint in captured.err, args
    assert not (tmp_path / "report").exists()  # nothing written before the input is known to be good


def test_the_gpu_run_takes_the_course_s_device_choice():
    h100 = Capabilities(cuda=True, cuda_name="NVIDIA H100 80GB HBM3", cuda_capability=(9, 0), cuda_count=1,
                        triton=True, platform="linux")
    t4 = Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=1, triton=True,
                      platform="linux")
    choice = gpu.pick_device(None, False, h100)
    assert (choice.device, choice.dtype, choice.use_grad_scaler, choice.compile) == ("cuda", torch.bfloat16, False, True)
    choice = gpu.pick_device(None, False, t4)  # no bf16: fp16 with a GradScaler
    assert (choice.dtype, choice.use_grad_scaler) == (torch.float16, True)
    assert gpu.pick_device("cpu", False, h100).device == "cpu"


def test_a_batch_that_does_not_fit_is_halved(monkeypatch, capsys, one_thread):
    real_warm_up, tried = gpu.warm_up, []

    def warm_up(config, batch, device, compile, steps):
        tried.append(batch)
        if batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (faked)")
        return real_warm_up(config, batch, device, compile, steps)

    monkeypatch.setattr(gpu, "warm_up", warm_up)
    plan = dataclasses.replace(gpu.DRY_RUN, rounds=1, timed_steps=1)
    result = gpu.run_throughput(plan, CPU, batch=8, compile=False)
    assert tried == [8, 4, 2] and result["batch_size"] == 2
    assert "batch 8 does not fit, trying 4" in capsys.readouterr().out


def test_a_compiler_failure_is_measured_eagerly_and_said(monkeypatch, one_thread):
    class Broken(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda model: Broken())
    config = gpu.preset("gpt2-padded", **gpu.DRY_RUN.throughput_model)
    trainer, how = gpu.warm_up(config, 1, CPU, compile=True, steps=1)
    assert how == "eager (torch.compile failed: RuntimeError: no C++ compiler found)"
    assert trainer.net is trainer.model and finite(trainer.step()[0].item())


def test_the_dry_run_trains_on_shakespeare_as_the_gpu_run_does(tmp_path):
    fetch("tinyshakespeare")  # where the course cannot get it, conftest ends the test with one line
    assert gpu.main(["--dry-run", "--device", "cpu", "--parts", "profile", "--dataset", "shakespeare_char",
                     "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    assert report["profile"]["dataset"] == "shakespeare_char" and finite(report["profile"]["final_val_loss"])
    assert report["throughput"] == {gpu.NOT_RUN: "left out by --parts"}
    assert [t["status"] for t in report["targets"]] == ["not applicable", "not measured"]


def test_different_tokens_with_and_without_the_cache_fail_the_run(tmp_path, monkeypatch, capsys):
    real_generate = gpu.generate

    def generate(model, prompt, new_tokens, **kwargs):
        tokens = real_generate(model, prompt, new_tokens, **kwargs)
        if not kwargs["use_cache"]:
            tokens[0, -1] = (tokens[0, -1] + 1) % model.config.vocab_size  # a last token that differs
        return tokens

    monkeypatch.setattr(gpu, "generate", generate)
    assert gpu.main(["--dry-run", "--device", "cpu", "--parts", "generation", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "generation: the KV cache and no cache made different tokens\n"
    report = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    last = gpu.DRY_RUN.new_tokens - 1
    assert (report["generation"]["identical_tokens"], report["generation"]["first_different_token"]) == (False, last)
    assert f"identical tokens: **NO** (from new token {last} on)" in (tmp_path / "gpu.md").read_text(encoding="utf-8")
