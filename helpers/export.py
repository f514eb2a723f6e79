"""Export a trained checkpoint as a Hugging Face GPT-2 model: model.safetensors plus config.json.

    python -m helpers export --ckpt runs/cpu/ckpt.pt --out exported/cpu
    # then, in Python: transformers.GPT2LMHeadModel.from_pretrained("exported/cpu")

Our module names are GPT-2's, so the state dict keys are Hugging Face's already (helpers.model.hf_key_to_ours
maps them, and is checked here in reverse); the four Conv1D weights are stored transposed, as GPT-2 stores them.
A model without biases (bias=False) is written with zero biases, which computes exactly the same function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from helpers.checkpoint import load_checkpoint
from helpers.model import CONV1D_WEIGHTS, hf_key_to_ours

# How each GPTConfig field is written in GPT-2's config (None: the field has no counterpart in the file).
ACTIVATIONS = {"tanh": "gelu_new", "none": "gelu"}  # gelu_approximate -> activation_function
KNOWN_FIELDS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "gelu_approximate")


class ExportError(ValueError):
    """The model cannot be written in GPT-2's layout; the message names the field."""


def hf_config(model_config: dict, tokenizer: dict | None = None) -> dict:
    """GPT2Config's fields for a model config (a dict, as a checkpoint stores it); ExportError for a field that
    GPT-2's layout cannot express."""
    unknown = [name for name in model_config if name not in KNOWN_FIELDS]
    if unknown:
        raise ExportError(f"the model config has field {unknown[0]}={model_config[unknown[0]]!r}, which GPT-2's "
                          f"layout cannot express (it knows: {', '.join(KNOWN_FIELDS)}); this model cannot be exported")
    approx = model_config.get("gelu_approximate", "none")
    if approx not in ACTIVATIONS:
        raise ExportError(f"gelu_approximate={approx!r} has no GPT-2 activation_function; expected one of "
                          f"{list(ACTIVATIONS)}")
    dropout = float(model_config.get("dropout", 0.0))
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": model_config["vocab_size"], "n_positions": model_config["block_size"],
        "n_ctx": model_config["block_size"], "n_embd": model_config["n_embd"], "n_layer": model_config["n_layer"],
        "n_head": model_config["n_head"], "n_inner": None, "activation_function": ACTIVATIONS[approx],
        "resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout,
        "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    gpt2_tokens = bool(tokenizer) and tokenizer.get("kind") == "gpt2"  # <|endoftext|> is 50256 in GPT-2's BPE only
    config.update(bos_token_id=50256 if gpt2_tokens else None, eos_token_id=50256 if gpt2_tokens else None)
    return config


def hf_state_dict(state: dict[str, torch.Tensor], model_config: dict) -> dict[str, torch.Tensor]:
    """Our GPT's state dict in Hugging Face's layout: the same keys (checked with hf_key_to_ours), Conv1D weights
    transposed, no separate lm_head (tied to wte), and zero biases where the model has none."""
    if "lm_head.weight" in state and not torch.equal(state["lm_head.weight"], state["transformer.wte.weight"]):
        raise ExportError("lm_head.weight differs from transformer.wte.weight: GPT-2's layout ties them, "
                          "so an untied model cannot be exported")
    out = {}
    for key, tensor in state.items():
        if key == "lm_head.weight":
            continue
        if hf_key_to_ours(key) != key:  # the mapping GPT.from_pretrained uses must bring the key back unchanged
            raise ExportError(f"{key} has no GPT-2 counterpart")
        tensor = tensor.detach().float().cpu()
        out[key] = (tensor.t() if key.endswith(CONV1D_WEIGHTS) else tensor).contiguous().clone()
    if not model_config.get("bias", True):  # GPT-2 always has biases: zeros compute the same function
        for key in list(out):
            if key.endswith(".weight") and not key.endswith(("wte.weight", "wpe.weight")):
                bias_key = key.removesuffix("weight") + "bias"
                width = out[key].shape[-1] if key.endswith(CONV1D_WEIGHTS) else out[key].shape[0]
                out.setdefault(bias_key, torch.zeros(width))
    return out


def export_hf(ckpt: str | Path, out_dir: str | Path) -> Path:
    """Write out_dir/model.safetensors and out_dir/config.json from a checkpoint of helpers.engine.train."""
    from safetensors.torch import save_file

    state = load_checkpoint(ckpt)
    config = hf_config(state["model_config"], state.get("tokenizer"))
    tensors = hf_state_dict(state["model"], state["model_config"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers export", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint (ckpt.pt) or a run folder holding one")
    parser.add_argument("--out", required=True, help="the folder to write model.safetensors and config.json to")
    args = parser.parse_args(argv)
    try:
        out = export_hf(args.ckpt, args.out)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}; "
          f"load with transformers.GPT2LMHeadModel.from_pretrained({str(out)!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
