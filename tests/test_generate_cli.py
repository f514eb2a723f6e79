"""`python -m helpers generate`: streams a checkpoint's continuation of a prompt to stdout."""

import runpy
import subprocess
import sys

import pytest
import torch

from helpers.checkpoint import load_trained
from helpers.engine import TrainConfig, train
from helpers.generation import generate
from helpers.model import GPTConfig

TINY = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (if barely trained) checkpoint of lesson 08's train(), in a run folder."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(out_dir=str(out), max_iters=3, batch_size=4, warmup_iters=1, eval_interval=3, eval_iters=1,
                         log_interval=1, num_threads=1, progress=False, device="cpu")
    threads = torch.get_num_threads()
    try:
        train(TINY, config)
    finally:
        torch.set_num_threads(threads)  # train() sets the thread count for the whole process
    return out


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process, as `python -m helpers generate ARGS` would."""
    monkeypatch.setattr(sys, "argv", ["python -m helpers", "generate", *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("helpers", run_name="__main__")
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_greedy_output_is_the_prompt_and_generate_s_continuation(checkpoint):
    result = subprocess.run([sys.executable, "-m", "helpers", "generate", "--ckpt", str(checkpoint), "--prompt", "ROMEO:",
                             "--max-new-tokens", "25", "--temperature", "0", "--device", "cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    model, tokenizer = load_trained(checkpoint)
    ids = generate(model, torch.tensor([tokenizer.encode("ROMEO:")]), 25, temperature=0)
    assert result.stdout == tokenizer.decode(ids[0].tolist()) + "\n"


def test_seeded_sampling_repeats_and_the_cache_changes_nothing(checkpoint, monkeypatch, capsys):
    args = ["--ckpt", str(checkpoint / "ckpt.pt"), "--prompt", "First", "--max-new-tokens", "30", "--temperature", "0.9",
            "--top-k", "10", "--top-p", "0.95", "--seed", "3", "--device", "cpu"]
    code, first, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and first.startswith("First") and len(first) == len("First") + 30 + 1
    assert run_cli(monkeypatch, capsys, *args)[1] == first
    assert run_cli(monkeypatch, capsys, *args, "--no-cache")[1] == first
    assert run_cli(monkeypatch, capsys, *args[:-4], "--seed", "4", "--device", "cpu")[1] != first


def test_help_lists_the_options(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    for flag in ("--ckpt", "--prompt", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--no-cache"):
        assert flag in out


@pytest.mark.parametrize("args, message", [
    (["--top-k", "0"], "error: top_k=0"),
    (["--top-p", "1.5"], "error: top_p=1.5"),
    (["--temperature", "-1"], "error: temperature=-1.0"),
    (["--max-new-tokens", "-2"], "error: max_new_tokens=-2"),
    (["--prompt", ""], "error: the prompt is empty"),
    (["--prompt", "ROMEO€"], "error: character '€' at position 5 is not in the vocabulary"),
])
def test_bad_input_is_one_clear_line(checkpoint, monkeypatch, capsys, args, message):
    code, out, err = run_cli(monkeypatch, capsys, "--ckpt", str(checkpoint), "--prompt", "ROMEO:", *args)
    assert code == 2 and err.startswith(message) and "Traceback" not in err
    assert out == ""  # nothing printed before the error


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "--ckpt", str(tmp_path / "nothing"), "--prompt", "x")
    assert code == 2 and "no checkpoint" in err and "python -m helpers train" in err


def test_gpt2_weights_that_cannot_be_had_are_one_clear_line(tmp_path, monkeypatch, capsys):
    """gpt2-medium has no recorded checksum, so it is never downloaded unchecked: the DownloadError is one line."""
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(tmp_path))  # an empty offline folder: nothing to copy from
    code, out, err = run_cli(monkeypatch, capsys, "--ckpt", "gpt2-medium", "--prompt", "x", "--device", "cpu")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "gpt2-medium" in err and "Traceback" not in err


def test_a_checkpoint_with_a_padded_vocabulary_writes_only_decodable_tokens(tmp_path, monkeypatch, capsys):
    """A GPT-2-data checkpoint pads its vocabulary past the tokenizer's; sampling must stay within the tokenizer."""
    out = tmp_path / "padded"
    config = TrainConfig(out_dir=str(out), max_iters=1, batch_size=2, warmup_iters=1, eval_interval=1, eval_iters=1,
                         log_interval=1, num_threads=1, progress=False, device="cpu")
    train(GPTConfig(vocab_size=80, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0), config)
    model, tokenizer = load_trained(out)
    with torch.no_grad():  # every position's final features become all ones, and only the padded ids match them
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight[65:] = 10.0  # tied to wte, whose rows past 65 no character uses
        state = torch.load(out / "ckpt.pt", weights_only=True)
        state["model"] = model.state_dict()
        torch.save(state, out / "ckpt.pt")
    assert int(model(torch.tensor([[0]]))[0].argmax()) >= 65  # the padding would win every draw
    capsys.readouterr()
    code, text, err = run_cli(monkeypatch, capsys, "--ckpt", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "30",
                              "--temperature", "1.5", "--device", "cpu")
    assert code == 0, err
    assert len(text) == len("ROMEO:") + 30 + 1 and set(text) <= set(tokenizer.chars)


def test_the_command_line_lists_its_commands_and_refuses_an_unknown_one():
    result = subprocess.run([sys.executable, "-m", "helpers", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert all(f"python -m helpers {command}" in result.stdout for command in ("train", "generate", "export", "doctor", "bundle"))
    result = subprocess.run([sys.executable, "-m", "helpers", "sample"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "unknown command 'sample'" in result.stderr


def test_a_llama_checkpoint_generates_too(tmp_path, monkeypatch, capsys):
    from helpers.modern import llama_config_like

    config = TrainConfig(out_dir=str(tmp_path / "llama"), max_iters=2, batch_size=4, warmup_iters=1, eval_interval=2,
                         eval_iters=1, log_interval=1, num_threads=1, progress=False, device="cpu")
    train(llama_config_like(TINY, n_kv_head=1), config)
    code, out, _ = run_cli(monkeypatch, capsys, "--ckpt", str(tmp_path / "llama"), "--prompt", "ROMEO:",
                           "--max-new-tokens", "12", "--temperature", "0")
    last = out.rstrip("\n").split("\n")[-1]  # (the training above printed its evaluation first)
    assert code == 0 and last.startswith("ROMEO:") and len(last) > len("ROMEO:")
