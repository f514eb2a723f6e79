"""Lesson 03: the exported attention code against PyTorch's references, plus its bad-input errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import (
    CausalSelfAttention,
    GPTConfig,
    MultiHeadAttention,
    attention_weights,
    causal_mask,
    heads_from_fused,
    merge_heads,
    split_heads,
)

SMALL = dict(vocab_size=65, block_size=16, n_layer=1, n_head=4, n_embd=32)


def small(**changes) -> GPTConfig:
    return GPTConfig(**{**SMALL, **changes})


def seeded_module(config: GPTConfig, seed: int = 0) -> CausalSelfAttention:
    torch.manual_seed(seed)
    module = CausalSelfAttention(config).eval()
    if config.bias:  # nn.Linear starts some biases near zero; make them matter
        with torch.no_grad():
            module.c_attn.bias.normal_()
            module.c_proj.bias.normal_()
    return module


def explicit_attention(module: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Causal self-attention written out independently of the module's helpers (loops over heads)."""
    n_embd, n_head = module.n_embd, module.n_head
    size = n_embd // n_head
    q, k, v = module.c_attn(x).split(n_embd, dim=2)
    T = x.size(1)
    allowed = torch.tensor([[j <= i for j in range(T)] for i in range(T)])
    outputs = []
    for h in range(n_head):
        cols = slice(h * size, (h + 1) * size)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(1, 2) / math.sqrt(size)
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        outputs.append(weights @ v[:, :, cols])
    return module.c_proj(torch.cat(outputs, dim=-1))


class ListCache:
    """A minimal KV cache: appends along the time dimension."""

    def __init__(self):
        self.k = self.v = None

    def update(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


# --- GPTConfig -----------------------------------------------------------------------------------


def test_config_defaults_are_gpt2_small():
    config = GPTConfig()
    assert (config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd) == (50304, 1024, 12, 12, 768)
    assert (config.dropout, config.bias, config.gelu_approximate) == (0.0, True, "none")
    assert config.head_size == 64


@pytest.mark.parametrize("field", ["vocab_size", "block_size", "n_layer", "n_head", "n_embd"])
@pytest.mark.parametrize("value", [0, -3, 2.0, True])
def test_config_rejects_non_positive_or_non_integer_sizes(field, value):
    with pytest.raises(ValueError, match=rf"{field}={value!r}.*positive integer"):
        GPTConfig(**{field: value})


def test_config_rejects_n_embd_not_divisible_by_n_head():
    with pytest.raises(ValueError, match=r"n_embd=100 is not divisible by n_head=12"):
        GPTConfig(n_embd=100, n_head=12)


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5, "0.1"])
def test_config_rejects_bad_dropout(dropout):
    with pytest.raises(ValueError, match=r"dropout=.*0 <= dropout < 1"):
        GPTConfig(dropout=dropout)


def test_config_rejects_unknown_gelu_form():
    with pytest.raises(ValueError, match=r"gelu_approximate='fast'.*'none', 'tanh'"):
        GPTConfig(gelu_approximate="fast")


def test_config_accepts_edge_values():
    assert GPTConfig(dropout=0.99, gelu_approximate="tanh", n_embd=1, n_head=1).head_size == 1


# --- structure -----------------------------------------------------------------------------------


def test_submodules_and_state_dict_names_match_gpt2():
    module = CausalSelfAttention(small())
    assert set(module.state_dict()) == {"c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"}
    assert module.c_attn.weight.shape == (96, 32) and module.c_proj.weight.shape == (32, 32)
    assert isinstance(module.attn_dropout, nn.Dropout) and isinstance(module.resid_dropout, nn.Dropout)
    no_bias = CausalSelfAttention(small(bias=False))
    assert set(no_bias.state_dict()) == {"c_attn.weight", "c_proj.weight"}


# --- reference checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_stack_explicit_and_sdpa_agree(bias, monkeypatch):
    module = seeded_module(small(bias=bias))
    x = torch.randn(3, 11, 32)
    stack = heads_from_fused(module).eval()
    with torch.no_grad():
        sdpa = module(x)
        monkeypatch.setattr(CausalSelfAttention, "use_fused", False)
        manual = module(x)
        looped = explicit_attention(module, x)
        stacked = stack(x)
    torch.testing.assert_close(manual, sdpa, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stacked, sdpa, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(looped, sdpa, atol=1e-5, rtol=1e-4)
    assert isinstance(stack, MultiHeadAttention) and len(stack.heads) == 4


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_multihead_attention(bias, monkeypatch):
    module = seeded_module(small(bias=bias), seed=1)
    reference = nn.MultiheadAttention(32, 4, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(module.c_attn.weight)
        reference.out_proj.weight.copy_(module.c_proj.weight)
        if bias:
            reference.in_proj_bias.copy_(module.c_attn.bias)
            reference.out_proj.bias.copy_(module.c_proj.bias)
        x = torch.randn(2, 16, 32)
        future = torch.triu(torch.ones(16, 16, dtype=torch.bool), diagonal=1)
        want, _ = reference(x, x, x, attn_mask=future, need_weights=False)
        for use_fused in (True, False):
            monkeypatch.setattr(CausalSelfAttention, "use_fused", use_fused)
            torch.testing.assert_close(module(x), want, atol=1e-5, rtol=1e-4)


def test_attention_weights_match_sdpa_and_rows_sum_to_one():
    q, k = torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    weights = attention_weights(q, k)
    eye = torch.eye(7).expand(2, 3, 7, 7)
    torch.testing.assert_close(weights, F.scaled_dot_product_attention(q, k, eye, is_causal=True))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))


@pytest.mark.parametrize("t_q,t_k", [(1, 1), (4, 4), (3, 7), (1, 5)])
def test_causal_mask_offsets_queries_to_the_last_positions(t_q, t_k):
    want = torch.tensor([[j <= t_k - t_q + i for j in range(t_k)] for i in range(t_q)])
    assert torch.equal(causal_mask(t_q, t_k), want)


def test_split_and_merge_heads_are_inverse_and_slice_channels():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[:, :, 4:8])
    assert torch.equal(merge_heads(heads), x)


@pytest.mark.parametrize("use_fused", [True, False])
def test_causality_changing_token_t_never_changes_earlier_outputs(use_fused, monkeypatch):
    module = seeded_module(small())
    monkeypatch.setattr(CausalSelfAttention, "use_fused", use_fused)
    x = torch.randn(2, 12, 32)
    with torch.no_grad():
        base = module(x)
        for t in range(12):
            changed = x.clone()
            changed[:, t] += torch.randn(32) * 3
            out = module(changed)
            assert torch.equal(out[:, :t], base[:, :t]), f"changing token {t} moved an earlier output"
            assert not torch.allclose(out[:, t], base[:, t]), f"changing token {t} did not change output {t}"


@pytest.mark.parametrize("use_fused", [True, False])
@pytest.mark.parametrize("sizes", [[1] * 10, [3, 1, 4, 2], [6, 4], [10]])
def test_kv_cache_gives_the_same_outputs_as_a_full_forward(use_fused, sizes, monkeypatch):
    module = seeded_module(small(dropout=0.3))  # dropout set, but eval mode: must not matter
    monkeypatch.setattr(CausalSelfAttention, "use_fused", use_fused)
    x = torch.randn(2, 10, 32)
    cache, outputs, start = ListCache(), [], 0
    with torch.no_grad():
        full = module(x)
        for size in sizes:
            outputs.append(module(x[:, start:start + size], kv_cache=cache))
            start += size
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, atol=1e-5, rtol=1e-4)
    assert cache.k.shape == (2, 4, 10, 8)


def test_dropout_is_active_in_training_and_off_in_eval(monkeypatch):
    module = seeded_module(small(dropout=0.5))
    x = torch.randn(2, 8, 32)
    module.train()
    for use_fused in (True, False):
        monkeypatch.setattr(CausalSelfAttention, "use_fused", use_fused)
        assert not torch.allclose(module(x), module(x))
    module.eval()
    assert torch.equal(module(x), module(x))


def test_use_fused_is_one_class_switch_between_sdpa_and_the_explicit_softmax(monkeypatch):
    assert CausalSelfAttention.use_fused is True  # PyTorch's kernel by default, like LayerNorm and GELU
    assert "use_fused" not in vars(CausalSelfAttention(small()))  # a class attribute, not set per instance
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *args, **kwargs: calls.append(1) or sdpa(*args, **kwargs))
    first, second, x = seeded_module(small()), seeded_module(small(), seed=1), torch.randn(2, 8, 32)
    with torch.no_grad():
        first(x), second(x)
        assert len(calls) == 2
        monkeypatch.setattr(CausalSelfAttention, "use_fused", False)  # switches every instance at once
        first(x), second(x)
    assert len(calls) == 2


def test_gradients_reach_every_parameter():
    module = seeded_module(small())
    module(torch.randn(2, 8, 32)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 32), (32,), (1, 2, 8, 32)])
def test_wrong_rank_raises(shape):
    with pytest.raises(ValueError, match=r"\(batch, time, n_embd\) tensor, got .*add a batch dimension with x\[None\]"):
        CausalSelfAttention(small())(torch.randn(shape))


def test_wrong_width_raises():
    with pytest.raises(ValueError, match=r"last dimension of the input is 30, but n_embd=32; embed tokens to n_embd first"):
        CausalSelfAttention(small())(torch.randn(2, 8, 30))


def test_sequence_longer_than_block_size_raises_naming_both_numbers():
    with pytest.raises(ValueError, match=r"sequence length 17 .* block_size=16; crop the input to the last 16 tokens"):
        CausalSelfAttention(small())(torch.randn(1, 17, 32))
    with pytest.raises(ValueError, match=r"sequence length 17 .* block_size=16"):
        MultiHeadAttention(small())(torch.randn(1, 17, 32))


def test_empty_sequence_raises():
    with pytest.raises(ValueError, match=r"T=0"):
        CausalSelfAttention(small())(torch.randn(1, 0, 32))


def test_non_tensor_input_raises():
    with pytest.raises(ValueError, match=r"got list"):
        CausalSelfAttention(small())([[0.0] * 32])
