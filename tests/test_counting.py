"""Lesson 07: parameter, memory and FLOP counts (helpers.counting) against the real models and references."""

import csv
import io
import math
from importlib.resources import files

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel

from helpers.attention import GPTConfig
from helpers.block import Block
from helpers.counting import (
    _GPU_NAME_PATTERNS,
    COMPONENTS,
    GPU_PEAK_FLOPS,
    activation_bytes,
    activation_bytes_per_layer,
    block_params,
    count_params,
    flops_params,
    flops_per_token,
    gpu_model,
    mfu,
    model_breakdown,
    param_breakdown,
    peak_flops,
    precision_name,
    read_gpu_peaks,
    training_flops,
    training_memory,
    training_time,
    weight_bytes,
)
from helpers.model import GPT, PRESETS, preset

TINY = GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=2, n_embd=4)


def on_meta(config: GPTConfig) -> nn.Module:
    with torch.device("meta"):
        return GPT(config)


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_formula_equals_numel_for_every_preset(name):
    config = preset(name)
    model = on_meta(config)
    assert count_params(config) == numel(model)
    assert param_breakdown(config) == model_breakdown(model)


@pytest.mark.parametrize("name", ["gpt2", "shakespeare-char", "smallgpt"])
def test_breakdown_sums_to_total_and_has_every_component(name):
    config = preset(name)
    for tied in (True, False):
        parts = param_breakdown(config, tied=tied)
        assert tuple(parts) == COMPONENTS
        assert sum(parts.values()) == count_params(config, tied=tied)
        assert all(v >= 0 for v in parts.values())


def test_gpt2_sizes_equal_hugging_face():
    # The sizes of HF's GPT2LMHeadModel for the four OpenAI checkpoints, as published on their model pages...
    published = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080, "gpt2-xl": 1_557_611_200}
    for name, size in published.items():
        assert count_params(preset(name)) == size
    # ... and counted from HF's own model, built on the meta device (no memory)
    for name in ("gpt2", "gpt2-medium"):
        config = preset(name)
        hf_config = GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                               n_layer=config.n_layer, n_head=config.n_head)
        with torch.device("meta"):
            hf = GPT2LMHeadModel(hf_config)
        assert numel(hf) == count_params(config) == published[name]


def test_untied_count_matches_hugging_face_without_tying():
    config = GPTConfig(vocab_size=300, block_size=32, n_layer=2, n_head=4, n_embd=64)
    with torch.device("meta"):
        hf = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                        tie_word_embeddings=False))
    assert numel(hf) == count_params(config, tied=False)


def test_tied_vs_untied_difference_is_vocab_times_width():
    for name in ("gpt2", "shakespeare-char", "smallgpt"):
        config = preset(name)
        assert count_params(config, tied=False) - count_params(config) == config.vocab_size * config.n_embd
    config = preset("gpt2")
    model = on_meta(config)
    model.lm_head.weight = nn.Parameter(torch.empty_like(model.transformer.wte.weight))  # untie it
    assert numel(model) == count_params(config, tied=False)
    assert model_breakdown(model) == param_breakdown(config, tied=False)


@pytest.mark.parametrize("name", ["gpt2", "shakespeare-char", "cpu"])
def test_bias_false_counts(name):
    config = preset(name, bias=False)
    assert count_params(config) == numel(on_meta(config))
    with_bias = preset(name, bias=True)
    # 11·d per block (3d + d + 4d + d Linear biases, 2d LayerNorm shifts) and d for ln_f
    assert count_params(with_bias) - count_params(config) == 11 * config.n_embd * config.n_layer + config.n_embd


def test_block_formula_matches_block():
    for bias in (True, False):
        config = GPTConfig(n_embd=48, n_head=3, bias=bias)
        assert block_params(config) == numel(Block(config))


def test_tiny_model_by_hand():
    # wte 10·4 + wpe 4·4 + 3 LayerNorms (4 + 4) + c_attn (4·12 + 12) + c_proj (16 + 4) + c_fc (4·16 + 16) + c_proj (64 + 4)
    by_hand = 40 + 16 + 3 * 8 + 60 + 20 + 80 + 68
    assert count_params(TINY) == by_hand == numel(GPT(TINY))


def test_references_stated_sizes():
    char = preset("shakespeare-char")  # nanoGPT's model: bias=False, tied
    assert count_params(char) == 10_745_088
    nanogpt = count_params(char) - param_breakdown(char)["wpe"]  # nanoGPT's get_num_params leaves wpe out
    assert f"{nanogpt / 1e6:.2f}M" == "10.65M"
    assert count_params(preset("shakespeare-char", bias=True)) == 10_770_816
    assert count_params(preset("char-8x384")) == 14_319_744


def test_the_quoted_13m_model_from_our_parts():
    """Lesson 07: 8 blocks of 11·d² + 9·d (bias-free Q, K, V; no attention c_proj; MLP and LayerNorms with biases),
    77 symbols, 256 positions, ln_f, and an untied head with a bias make exactly 13,162,061 parameters."""
    config = GPTConfig(vocab_size=77, block_size=256, n_layer=8, n_head=6, n_embd=384)
    with torch.device("meta"):
        model = GPT(config)
        for block in model.transformer.h:
            block.attn.c_attn = nn.Linear(384, 3 * 384, bias=False)
            block.attn.c_proj = nn.Identity()
        model.lm_head = nn.Linear(384, 77, bias=True)
    assert numel(model.transformer.h[0]) == 11 * 384**2 + 9 * 384
    assert numel(model) == 13_162_061
    d = 384
    assert 8 * (11 * d * d + 9 * d) + 77 * d + 256 * d + 2 * d + (77 * d + 77) == 13_162_061


def test_model_breakdown_rejects_a_model_that_is_not_a_gpt():
    with pytest.raises(ValueError, match="no known component"):
        model_breakdown(nn.Sequential(nn.Linear(2, 2)))


def test_weight_bytes_match_tensor_sizes():
    model = GPT(TINY)
    n = count_params(TINY)
    assert sum(p.nbytes for p in model.parameters()) == weight_bytes(n, torch.float32) == 4 * 308
    assert sum(p.nbytes for p in model.to(torch.bfloat16).parameters()) == weight_bytes(n, "bf16") == 2 * 308
    assert weight_bytes(n, torch.int8) == weight_bytes(n, "int8") == 308
    assert weight_bytes(n, torch.float16) == weight_bytes(n, "half") == 616


def test_training_memory_is_16_bytes_per_parameter_and_matches_adamw():
    n = count_params(TINY)
    fp32, mixed = training_memory(TINY), training_memory(TINY, mixed_precision=True)
    assert sum(fp32.values()) == sum(mixed.values()) == 16 * n
    assert mixed["master_weights"] == 4 * n and fp32["master_weights"] == 0
    assert mixed["weights"] == 2 * n and fp32["weights"] == 4 * n
    model = GPT(TINY)
    optimizer = torch.optim.AdamW(model.parameters())
    idx = torch.zeros(1, 4, dtype=torch.long)
    model(idx, targets=idx)[1].backward()
    optimizer.step()
    moments = sum(s[k].nbytes for s in optimizer.state.values() for k in ("exp_avg", "exp_avg_sq"))
    assert moments == fp32["adam_m"] + fp32["adam_v"]
    assert sum(p.grad.nbytes for p in model.parameters()) == fp32["gradients"]


def test_activation_formula_on_a_hand_computable_config():
    # s=4, b=1, h=4, a=2: s·b·h·34 = 544, plus 5·a·s²·b = 160 without flash attention
    assert activation_bytes_per_layer(TINY, batch_size=1) == 544 + 160
    assert activation_bytes_per_layer(TINY, batch_size=1, flash=True) == 544
    assert activation_bytes_per_layer(TINY, batch_size=3, seq_len=2) == 3 * (34 * 2 * 4 + 5 * 2 * 2 * 2)
    two_layers = GPTConfig(vocab_size=10, block_size=4, n_layer=2, n_head=2, n_embd=4)
    assert activation_bytes(two_layers, batch_size=1) == 2 * (544 + 160)


def test_flops_formula_on_a_hand_computable_config():
    # N: one block (12·16 + 13·4 = 244), ln_f (8), head (10·4 = 40) = 292; attention: 12·L·d·T = 12·1·4·4
    assert flops_params(TINY) == 292
    assert flops_per_token(TINY) == 6 * 292 + 192
    assert flops_per_token(TINY, seq_len=2) == 6 * 292 + 96
    assert training_flops(TINY, 1000) == 1000 * flops_per_token(TINY)
    assert flops_params(TINY) == count_params(TINY) - param_breakdown(TINY)["wpe"]  # nanoGPT's N, tied


def test_flops_formula_matches_pytorch_flop_counter():
    config = GPTConfig(vocab_size=128, block_size=32, n_layer=2, n_head=4, n_embd=64, bias=False)
    model = GPT(config)
    idx = torch.randint(0, config.vocab_size, (2, config.block_size), generator=torch.Generator().manual_seed(0))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(idx, targets=idx)[1].backward()
    measured = counter.get_total_flops() / idx.numel()
    # the formula also counts the LayerNorm gains as weights; the counter sees only matrix multiplies
    assert math.isclose(flops_per_token(config), measured, rel_tol=0.005)


@pytest.mark.parametrize("name, key", [
    ("Tesla T4", "T4"), ("NVIDIA A100-SXM4-40GB", "A100"), ("NVIDIA A100 80GB PCIe", "A100"),
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("Tesla P100-PCIE-16GB", "P100 PCIe"), ("Tesla P100-SXM2-16GB", "P100 SXM2"),
    ("Tesla V100-SXM2-32GB", "V100 SXM2"), ("Tesla V100-PCIE-16GB", "V100 PCIe"), ("Tesla V100S-PCIE-32GB", "V100S PCIe"),
    ("NVIDIA L4", "L4"), ("Apple M1", "Apple M1"), ("Apple M1 Max", "Apple M1 Max"), ("Apple M2", "Apple M2"),
])
def test_gpu_names_match_the_table(name, key):
    assert gpu_model(name) == key
    assert peak_flops(name, "fp32") == GPU_PEAK_FLOPS[key]["fp32"]


def test_gpu_peaks_file_is_the_table_with_a_source_per_row():
    rows = list(csv.DictReader(io.StringIO(files("helpers").joinpath("gpu_peaks.csv").read_text(encoding="utf-8"))))
    assert [row["gpu"] for row in rows] == list(GPU_PEAK_FLOPS)
    assert all(row["source"].strip() for row in rows)
    assert {key for _, key in _GPU_NAME_PATTERNS} == set(GPU_PEAK_FLOPS)  # every row is reachable by name
    assert read_gpu_peaks("gpu,fp32,tf32,bf16,fp16,source\nX,1.5,,,3,a test\n") == {"X": {"fp32": 1.5e12, "fp16": 3e12}}


def test_peak_flops_values_and_unknowns():
    assert peak_flops("NVIDIA A100-SXM4-40GB", torch.bfloat16) == 312e12
    assert peak_flops("NVIDIA A100-SXM4-40GB", torch.float32) == 19.5e12
    assert peak_flops("NVIDIA A100-SXM4-40GB", "tf32") == 156e12
    assert peak_flops("NVIDIA H100 80GB HBM3", torch.bfloat16) == pytest.approx(1979e12 / 2)  # datasheet: 1979 sparse
    assert peak_flops("Tesla T4", torch.float16) == 65e12
    assert peak_flops("Tesla T4", torch.bfloat16) is None  # no bf16 on a T4
    for unknown in ("NVIDIA GeForce GTX 1080", "NVIDIA RTX A1000", "Apple M2 Max", "cpu", ""):
        assert gpu_model(unknown) is None
        assert peak_flops(unknown, "fp32") is None
    for key, rates in GPU_PEAK_FLOPS.items():  # every figure is a dense peak, ordered as the hardware is
        assert set(rates) <= {"fp32", "tf32", "bf16", "fp16"} and "fp32" in rates, key
        assert all(rate >= rates["fp32"] for rate in rates.values()), key


def test_mfu_and_training_time():
    config = preset("gpt2")
    peak = peak_flops("NVIDIA A100-SXM4-40GB", "bf16")
    tokens_per_second = 0.5 * peak / flops_per_token(config)
    assert mfu(tokens_per_second, config, "NVIDIA A100-SXM4-40GB", torch.bfloat16) == pytest.approx(0.5)
    assert mfu(1000, config, "unknown GPU", "bf16") is None
    seconds = training_time(config, 10**9, "A100", mfu=0.4)
    assert seconds == pytest.approx(10**9 * flops_per_token(config) / (0.4 * 312e12))
    # dtype None picks the fastest 16-bit precision the GPU has: fp16 on a T4, fp32 on an Apple GPU
    assert training_time(config, 10**6, "Tesla T4", 0.5) == pytest.approx(10**6 * flops_per_token(config) / (0.5 * 65e12))
    assert training_time(config, 10**6, "Apple M1", 1.0) == pytest.approx(10**6 * flops_per_token(config) / 2.6e12)
    assert training_time(config, 10**6, "A100", 1.0, dtype=torch.float32) == pytest.approx(
        10**6 * flops_per_token(config) / 19.5e12)


def test_bad_inputs_raise_value_error():
    config = preset("gpt2")
    with pytest.raises(ValueError, match="tokens"):
        training_flops(config, -1)
    with pytest.raises(ValueError, match="tokens"):
        training_time(config, -5, "A100", 0.4)
    for bad in (0, 0.0, -0.1, 1.5, True):
        with pytest.raises(ValueError, match="0 < mfu <= 1"):
            training_time(config, 1000, "A100", bad)
    with pytest.raises(ValueError, match="unknown GPU"):
        training_time(config, 1000, "Some GPU", 0.4)
    with pytest.raises(ValueError, match="no bf16"):
        training_time(config, 1000, "Tesla T4", 0.4, dtype=torch.bfloat16)
    for dtype in (torch.float64, "fp8", "double", torch.int32):
        with pytest.raises(ValueError, match="unknown precision"):
            peak_flops("Tesla T4", dtype)
        with pytest.raises(ValueError, match="unknown precision"):
            weight_bytes(10, dtype)
    with pytest.raises(ValueError, match="floating-point"):
        peak_flops("Tesla T4", torch.int8)
    with pytest.raises(ValueError, match="tokens_per_second"):
        mfu(-1.0, config, "Tesla T4", "fp16")
    with pytest.raises(ValueError, match="n_params"):
        weight_bytes(-1, "fp32")
    with pytest.raises(ValueError, match="batch_size"):
        activation_bytes(config, batch_size=-2)
    assert precision_name("bfloat16") == "bf16" and precision_name(torch.float16) == "fp16"
