"""Lesson 06: the GPT model, its presets and GPT-2 weight loading, checked against Hugging Face's transformers."""

import dataclasses
import json
import math
import os

import pytest
import torch
from safetensors.torch import save_file

from helpers.attention import GPTConfig
from helpers.downloads import ASSETS, DownloadError
from helpers.model import (
    CONV1D_WEIGHTS,
    GPT,
    PRESETS,
    RESIDUAL_PROJECTIONS,
    WeightLoadError,
    config_from_hf,
    hf_key_to_ours,
    load_hf_gpt2_state_dict,
    preset,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import transformers  # noqa: E402 -- a required test dependency (the [test] extra), imported after HF_HUB_OFFLINE is set

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

TINY = dict(vocab_size=97, block_size=32, n_layer=2, n_head=4, n_embd=32)


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**TINY, **overrides})).eval()


def hf_model(vocab_size, n_positions, n_embd, n_layer, n_head, seed):
    """A small, randomly initialised GPT2LMHeadModel with dropout off."""
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=None, eos_token_id=None,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # make the biases and LayerNorm affine params non-trivial, so a misplaced one shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.05 * torch.randn_like(p))
    return model


HF_SHAPES = [
    dict(vocab_size=211, n_positions=32, n_embd=64, n_layer=2, n_head=2, seed=1),
    dict(vocab_size=128, n_positions=64, n_embd=48, n_layer=3, n_head=4, seed=2),
]


@pytest.fixture(scope="module", params=HF_SHAPES, ids=["2x2x64", "3x4x48"])
def saved_hf(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    model = hf_model(**request.param)
    model.save_pretrained(folder)
    return model, folder


def greedy(model, idx, steps):
    with torch.no_grad():
        for _ in range(steps):
            idx = torch.cat([idx, model(idx)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


# ---- Hugging Face parity


def test_logits_match_hugging_face(saved_hf):
    hf, folder = saved_hf
    ours = GPT.from_pretrained(folder)
    assert ours.config.n_layer == hf.config.n_layer and ours.config.gelu_approximate == "tanh"
    idx = torch.randint(0, hf.config.vocab_size, (3, hf.config.n_positions))
    with torch.no_grad():
        want = hf(idx).logits
        got, loss = ours(idx, idx)
        hf_loss = hf(idx, labels=idx).loss  # HF shifts inside; compare with our shifted loss below
    assert (got - want).abs().max().item() < 1e-4
    ours_shifted = torch.nn.functional.cross_entropy(got[:, :-1].flatten(0, 1), idx[:, 1:].flatten())
    assert abs(ours_shifted.item() - hf_loss.item()) < 1e-4
    assert loss is not None and torch.isfinite(loss)


def test_greedy_continuation_matches_hugging_face_generate(saved_hf):
    hf, folder = saved_hf
    ours = GPT.from_pretrained(folder)
    prompt = torch.randint(0, hf.config.vocab_size, (1, 6))
    want = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, do_sample=False,
                       pad_token_id=0)
    assert want.shape == (1, 26)
    assert torch.equal(greedy(ours, prompt, 20), want)


def test_loads_a_bare_safetensors_file_with_gpt2_width(tmp_path):
    """The original gpt2 checkpoint: no 'transformer.' prefix, attn.bias buffers, no config.json."""
    hf = hf_model(vocab_size=64, n_positions=16, n_embd=768, n_layer=1, n_head=12, seed=3)
    state = {k.removeprefix("transformer."): v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    for i in range(1):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 16, 16))
        state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(state, str(tmp_path / "weights.safetensors"))
    ours = GPT.from_pretrained(tmp_path / "weights.safetensors")
    assert ours.config.n_head == 12 and ours.config.block_size == 16
    idx = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        assert (ours(idx)[0] - hf(idx).logits).abs().max().item() < 1e-4


def test_config_from_hf_json(saved_hf):
    hf, folder = saved_hf
    config = config_from_hf(json.loads((folder / "config.json").read_text()))
    assert (config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd) == (
        hf.config.vocab_size, hf.config.n_positions, hf.config.n_layer, hf.config.n_head, hf.config.n_embd)
    assert config_from_hf({**hf.config.to_dict(), "activation_function": "gelu"}).gelu_approximate == "none"
    with pytest.raises(ValueError, match="relu"):
        config_from_hf({**hf.config.to_dict(), "activation_function": "relu"})


# ---- loading errors


def hf_style_state_dict(model: GPT) -> dict:
    return {k.removeprefix("transformer."): v.t() if k.endswith(CONV1D_WEIGHTS) else v
            for k, v in model.state_dict().items() if k != "lm_head.weight"}


def test_load_round_trip_and_key_mapping():
    source, target = tiny_gpt(), tiny_gpt()
    torch.manual_seed(1)
    source = GPT(GPTConfig(**TINY)).eval()
    load_hf_gpt2_state_dict(target, hf_style_state_dict(source))
    idx = torch.randint(0, 97, (2, 8))
    assert torch.equal(target(idx)[0], source(idx)[0])
    assert hf_key_to_ours("h.0.attn.bias") is None and hf_key_to_ours("h.0.attn.masked_bias") is None
    assert hf_key_to_ours("lm_head.weight") is None
    assert hf_key_to_ours("h.0.attn.c_attn.bias") == "transformer.h.0.attn.c_attn.bias"
    assert hf_key_to_ours("transformer.wte.weight") == "transformer.wte.weight"


def test_load_error_missing_tensor_leaves_model_unchanged():
    model = tiny_gpt()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = hf_style_state_dict(tiny_gpt())
    state = {k: torch.zeros_like(v) for k, v in state.items() if k != "h.1.mlp.c_fc.bias"}
    with pytest.raises(WeightLoadError, match=r"transformer\.h\.1\.mlp\.c_fc\.bias"):
        load_hf_gpt2_state_dict(model, state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_load_error_unexpected_tensor():
    state = {**hf_style_state_dict(tiny_gpt()), "h.2.ln_1.weight": torch.ones(32)}
    with pytest.raises(WeightLoadError, match=r"unexpected tensor h\.2\.ln_1\.weight"):
        load_hf_gpt2_state_dict(tiny_gpt(), state)


def test_load_error_wrong_shape_names_both_shapes():
    state = {**hf_style_state_dict(tiny_gpt()), "wpe.weight": torch.zeros(64, 32)}
    with pytest.raises(WeightLoadError, match=r"wpe\.weight.*\(64, 32\).*\(32, 32\)"):
        load_hf_gpt2_state_dict(tiny_gpt(), state)
    square = hf_style_state_dict(tiny_gpt())
    square["h.0.mlp.c_fc.weight"] = square["h.0.mlp.c_fc.weight"].t()  # forgot HF's (in, out) layout
    with pytest.raises(WeightLoadError, match=r"h\.0\.mlp\.c_fc\.weight.*\(128, 32\).*Conv1D.*\(128, 32\)"):
        load_hf_gpt2_state_dict(tiny_gpt(), square)
    assert issubclass(WeightLoadError, ValueError)


def test_load_error_untied_head():
    state = {**hf_style_state_dict(tiny_gpt()), "lm_head.weight": torch.zeros(97, 32)}
    with pytest.raises(WeightLoadError, match="tied"):
        load_hf_gpt2_state_dict(tiny_gpt(), state)


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="gpt2"):
        GPT.from_pretrained(tmp_path / "nothing-here")
    for name in ("gpt2-medium", "gpt2-large", "gpt2-xl"):
        if len(ASSETS[f"{name}-model.safetensors"].sha256) != 64:
            with pytest.raises(DownloadError, match="sha256"):
                GPT.from_pretrained(name)


def test_gpt2_asset_is_checksummed():
    asset = ASSETS["gpt2-model.safetensors"]
    assert asset.url == "https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors"
    assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0


# ---- forward


def test_forward_shapes_and_loss():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (3, 32))
    logits, loss = model(idx)
    assert logits.shape == (3, 32, 97) and loss is None
    targets = torch.randint(0, 97, (3, 32))
    logits, loss = model(idx, targets)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, 97), targets.reshape(-1)))
    assert abs(loss.item() - math.log(97)) < 0.1  # near-uniform predictions at init


def test_ignore_index_and_bad_targets():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (2, 8))
    targets = idx.clone()
    targets[:, :4] = -1
    logits, loss = model(idx, targets)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 97), idx[:, 4:].reshape(-1)))
    with pytest.raises(ValueError, match="targets"):
        model(idx, idx[:, :4])


@pytest.mark.parametrize("idx, match", [
    (torch.tensor([[1, 2, 97]]), r"vocab_size=97.*97"),
    (torch.tensor([[-1, 2]]), r"\[0, vocab_size=97\).*-1"),
    (torch.zeros(1, 0, dtype=torch.long), "at least one token"),
    (torch.zeros(0, 4, dtype=torch.long), "at least one"),
    (torch.zeros(1, 33, dtype=torch.long), r"33.*block_size=32"),
    (torch.tensor([1, 2, 3]), r"2-D.*idx\[None\]"),
    (torch.zeros(1, 2, 3, dtype=torch.long), "2-D"),
    (torch.tensor([[1.0, 2.0]]), "integer"),
    (torch.tensor([[True, False]]), "integer"),
    ([[1, 2]], "torch.Tensor"),
])
def test_bad_input(idx, match):
    with pytest.raises(ValueError, match=match):
        tiny_gpt()(idx)


# ---- presets


def test_every_preset_builds_a_valid_config():
    assert {"smallgpt", "gpt2-padded", "char-8x384", "shakespeare-char", "cpu", "gpt2", "gpt2-medium", "gpt2-large",
            "gpt2-xl"} <= set(PRESETS)
    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    for name, values in PRESETS.items():
        assert set(values) <= fields, name
        config = preset(name)
        assert isinstance(config, GPTConfig)
        with torch.device("meta"):
            GPT(config)  # builds, shapes only


def test_preset_values():
    gpt2_shapes = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280),
                   "gpt2-xl": (48, 25, 1600)}
    for name, shape in gpt2_shapes.items():
        c = preset(name)
        assert (c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.block_size) == (*shape, 50257, 1024)
        assert c.bias and c.gelu_approximate == "tanh"
    c = preset("smallgpt")
    assert (c.vocab_size, c.n_embd, c.block_size, c.n_layer) == (50257, 1024, 1024, 2)
    c = preset("gpt2-padded")
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == (12, 12, 768, 1024, 50304)  # 50304 = 64 * 786
    c = preset("char-8x384")  # the shape of the quoted "13.1M" model, with our block (lesson 07)
    assert (c.n_embd, c.n_layer, c.n_head, c.block_size, c.vocab_size, c.bias) == (384, 8, 6, 256, 65, True)
    c = preset("shakespeare-char")  # nanoGPT's model: no biases
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size, c.dropout, c.bias) == (6, 6, 384, 256, 65, 0.2, False)
    c = preset("cpu")
    assert c.vocab_size == 65 and c.dropout == 0.0


def test_parameter_counts_against_references():
    """shakespeare-char: nanoGPT's 10,745,088 (bias=False, tied); GPT-2 small: HF's GPT2LMHeadModel."""
    model = GPT(preset("shakespeare-char"))
    assert sum(p.numel() for p in model.parameters()) == 10_745_088
    with torch.device("meta"):
        ours = GPT(preset("gpt2"))
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())


def test_lesson_06_adds_nothing_to_lesson_03s_config():
    """preset is a function of helpers.model: GPTConfig keeps only its own fields and head_size."""
    public = {name for name in vars(GPTConfig) if not name.startswith("_")}
    assert public == {field.name for field in dataclasses.fields(GPTConfig)} | {"head_size"}


def test_preset_overrides_and_errors():
    c = preset("gpt2", dropout=0.1, block_size=256)
    assert (c.dropout, c.block_size, c.n_layer) == (0.1, 256, 12)
    assert PRESETS["gpt2"]["block_size"] == 1024  # the table is not modified
    with pytest.raises(ValueError, match=r"unknown preset 'gpt3'.*gpt2-xl.*cpu|unknown preset 'gpt3'.*cpu.*gpt2"):
        preset("gpt3")
    with pytest.raises(ValueError, match=r"'n_layers'.*n_layer"):
        preset("gpt2", n_layers=6)
    with pytest.raises(ValueError, match="n_head"):
        preset("gpt2", n_head=7)  # GPTConfig's own validation still applies


# ---- weights: tying and initialisation


def test_weight_tying():
    model = tiny_gpt()
    assert model.lm_head.weight is model.transformer.wte.weight
    names = [name for name, _ in model.named_parameters()]
    assert "lm_head.weight" not in names  # counted once
    idx = torch.randint(0, 97, (2, 8))
    model.train()
    model(idx, idx)[1].backward()
    assert model.transformer.wte.weight.grad is model.lm_head.weight.grad


def test_init_std():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=512, block_size=256, n_layer=8, n_head=4, n_embd=256)
    model = GPT(config)
    residual_std = 0.02 / math.sqrt(2 * config.n_layer)
    for name, p in model.named_parameters():
        if name.endswith(RESIDUAL_PROJECTIONS):
            assert abs(p.std().item() - residual_std) < 0.1 * residual_std, name
        elif name.endswith("weight") and p.dim() == 2:
            assert abs(p.std().item() - 0.02) < 0.002, name
            assert abs(p.mean().item()) < 0.002, name
        elif ".ln_" in name or "ln_f" in name:
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name


# ---- the KV-cache hook


class ListCache:
    def __init__(self):
        self.k = self.v = None
        self.length = 0

    def update(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        self.length = self.k.size(2)  # counted after the call; GPT reads it before calling the blocks
        return self.k, self.v


def test_kv_cache_one_token_at_a_time_matches_full_forward():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (2, 32))
    with torch.no_grad():
        full, _ = model(idx)
        caches = [ListCache() for _ in range(model.config.n_layer)]
        steps = [model(idx[:, :5], kv_cache=caches)[0]]  # a prompt of 5, then one token at a time
        steps += [model(idx[:, t:t + 1], kv_cache=caches)[0] for t in range(5, 32)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_kv_cache_errors():
    model = tiny_gpt()
    idx = torch.randint(0, 97, (1, 4))
    with pytest.raises(ValueError, match="n_layer=2"):
        model(idx, kv_cache=[ListCache()])
    caches = [ListCache() for _ in range(2)]
    with torch.no_grad():
        model(torch.randint(0, 97, (1, 30)), kv_cache=caches)
    with pytest.raises(ValueError, match=r"30 positions.*34.*block_size=32"):
        model(idx, kv_cache=caches)
