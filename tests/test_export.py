"""python -m helpers export: a trained checkpoint as a Hugging Face GPT-2 model (model.safetensors + config.json)."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
import transformers

from helpers.attention import GPTConfig
from helpers.checkpoint import CHECKPOINT, load_checkpoint, load_trained, save_checkpoint
from helpers.engine import TrainConfig, train
from helpers.export import ExportError, export_hf, hf_config, main


def trained(tmp_path, **model_fields):
    model_config = GPTConfig(**{**dict(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0),
                                **model_fields})
    config = TrainConfig(out_dir=str(tmp_path / "run"), max_iters=3, batch_size=4, warmup_iters=1, eval_interval=3,
                         eval_iters=1, num_threads=1, progress=False, device="cpu", learning_rate=1e-2)
    train(model_config, config)
    return tmp_path / "run" / CHECKPOINT


@pytest.mark.parametrize("fields", [dict(), dict(gelu_approximate="tanh"), dict(bias=False)],
                         ids=["gelu", "gelu_new", "no-bias"])
def test_transformers_loads_the_export_and_gives_the_same_logits(tmp_path, fields):
    ckpt = trained(tmp_path, **fields)
    assert main(["--ckpt", str(ckpt), "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ours, tokenizer = load_trained(ckpt)
    idx = torch.tensor([tokenizer.encode("ROMEO:\nWhat li")])
    with torch.no_grad():
        assert torch.allclose(hf(idx).logits, ours(idx)[0], atol=1e-5)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["tie_word_embeddings"] is True
    assert config["activation_function"] == ("gelu_new" if fields.get("gelu_approximate") == "tanh" else "gelu")


def test_command_line(tmp_path):
    ckpt = trained(tmp_path)
    result = subprocess.run([sys.executable, "-m", "helpers", "export", "--ckpt", str(ckpt.parent),
                             "--out", str(tmp_path / "hf")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    result = subprocess.run([sys.executable, "-m", "helpers", "export", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--ckpt" in result.stdout


def test_a_field_gpt2_cannot_express_is_named(tmp_path, capsys):
    ckpt = trained(tmp_path)
    state = load_checkpoint(ckpt)
    state["model_config"]["n_kv_head"] = 1  # grouped-query attention: GPT-2's layout has no such field
    save_checkpoint(ckpt, state)
    assert main(["--ckpt", str(ckpt), "--out", str(tmp_path / "hf")]) == 2
    assert "n_kv_head=1" in capsys.readouterr().err
    assert not (tmp_path / "hf" / "model.safetensors").exists()
    with pytest.raises(ExportError, match="gelu_approximate='sigmoid'"):
        hf_config({**dataclasses.asdict(GPTConfig()), "gelu_approximate": "sigmoid"})


def test_untied_head_is_refused(tmp_path):
    ckpt = trained(tmp_path)
    state = load_checkpoint(ckpt)
    state["model"]["lm_head.weight"] = state["model"]["lm_head.weight"].clone() + 1
    save_checkpoint(ckpt, state)
    with pytest.raises(ExportError, match="lm_head.weight differs"):
        export_hf(ckpt, tmp_path / "hf")
