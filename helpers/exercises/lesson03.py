"""Exercise checkers for Lesson 03: attention.

    from helpers.exercises import lesson03 as ex
    ex.check_causal_weights(causal_weights)

Solutions: notebooks/solutions/03_attention.ipynb.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers.attention import CausalSelfAttention, GPTConfig
from helpers.exercises import Hint, exercise, expect, expect_close, expect_shape


def _reference_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Causal attention weights from PyTorch's SDPA: with v = identity, the output is the weight matrix."""
    eye = torch.eye(k.size(0), dtype=q.dtype)
    return F.scaled_dot_product_attention(q[None], k[None], eye[None], is_causal=True)[0]


def _example(T: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(T, d, generator=generator) * 2, torch.randn(T, d, generator=generator) * 2


@exercise("Exercise 1 (causal attention weights by hand)")
def check_causal_weights(causal_weights) -> str:
    """`causal_weights(q, k)` returns the (T, T) weights softmax(mask(q k^T / sqrt(d)))."""
    for T, d, seed in [(4, 3, 0), (6, 16, 1)]:
        q, k = _example(T, d, seed)
        got = causal_weights(q.clone(), k.clone())
        want = _reference_weights(q, k)
        case = f"for q and k of shape ({T}, {d})"
        expect_shape(got, (T, T), f"{case}, the weights")
        got = got.detach().float()
        expect(torch.allclose(got.sum(dim=-1), torch.ones(T), atol=1e-4),
               f"{case}: each row should sum to 1; apply the softmax over the keys (dim=-1)")
        expect(torch.all(got.triu(diagonal=1).abs() < 1e-6),
               f"{case}: query i gives weight to keys after i; mask the future (j > i) with -inf before the softmax")
        unscaled = torch.softmax((q @ k.T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")), -1)
        if torch.allclose(got, unscaled, atol=1e-4) and not torch.allclose(unscaled, want, atol=1e-4):
            raise Hint(f"{case}: the scores are not scaled; divide q @ k.T by sqrt(d) = {math.sqrt(d):.3g}")
        expect_close(got, want, f"{case}, the weights", atol=1e-5)
    return "your weights match F.scaled_dot_product_attention(..., is_causal=True)"


@exercise("Exercise 2 (the causal mask)")
def check_causal_mask(build_causal_mask) -> str:
    """`build_causal_mask(T)` returns a bool (T, T) tensor, True where query i may see key j (j <= i)."""
    for T in (1, 4, 7):
        got = build_causal_mask(T)
        expect_shape(got, (T, T), f"build_causal_mask({T})")
        expect(got.dtype == torch.bool, f"build_causal_mask({T}) has dtype {got.dtype}; return booleans, e.g. with .bool()")
        want = torch.ones(T, T, dtype=torch.bool).tril()
        if T > 1:
            expect(not torch.equal(got, want.T), f"build_causal_mask({T}) is upper-triangular: that lets queries see "
                   "the future. Query i (row i) may see keys j <= i: use torch.tril")
        expect(not torch.equal(got, want.tril(diagonal=-1)), f"build_causal_mask({T}) leaves out the diagonal: "
               "each token may attend to itself (j == i)")
        expect(torch.equal(got, want), f"build_causal_mask({T}) should be True exactly where key j <= query i")
    return "True on and below the diagonal, as torch.tril gives"


@exercise("Exercise 3 (splitting heads)")
def check_split_heads(split_heads) -> str:
    """`split_heads(x, n_head)`: (B, T, n_embd) -> (B, n_head, T, head_size), head h owning channels of slice h."""
    B, T, n_embd, n_head = 2, 5, 12, 3
    x = torch.arange(B * T * n_embd, dtype=torch.float32).view(B, T, n_embd)
    got = split_heads(x.clone(), n_head)
    size = n_embd // n_head
    expect_shape(got, (B, n_head, T, size), f"split_heads(x of shape {(B, T, n_embd)}, n_head={n_head})")
    want = torch.stack([x[:, :, h * size:(h + 1) * size] for h in range(n_head)], dim=1)
    if torch.equal(got, x.view(B, n_head, T, size)):
        raise Hint("the shape is right but the numbers are not: a single view to (B, n_head, T, head_size) mixes "
                   "positions. view as (B, T, n_head, head_size) first, then swap dims 1 and 2 with transpose")
    expect(torch.equal(got, want), "head h should hold channels h*head_size .. (h+1)*head_size of every position; "
           "view as (B, T, n_head, head_size), then transpose(1, 2)")
    return "head h holds its own slice of the channels"


@exercise("Exercise 4 (counting attention parameters)")
def check_attention_parameters(attention_parameters) -> str:
    """`attention_parameters(n_embd, bias)` returns the parameter count of CausalSelfAttention."""
    for n_embd, n_head in [(768, 12), (64, 4), (6, 2)]:
        for bias in (True, False):
            module = CausalSelfAttention(GPTConfig(n_embd=n_embd, n_head=n_head, bias=bias))
            want = sum(p.numel() for p in module.parameters())
            got = attention_parameters(n_embd, bias)
            case = f"attention_parameters({n_embd}, bias={bias})"
            expect(isinstance(got, int) or (isinstance(got, float) and got.is_integer()),
                   f"{case} returned {got!r}; return a whole number (an int)")
            got = int(got)
            if bias and got == 4 * n_embd * n_embd:
                raise Hint(f"{case} = {got} counts only the weight matrices; with bias=True add c_attn's "
                           f"3*n_embd and c_proj's n_embd biases")
            if got in (3 * n_embd * n_embd, 3 * n_embd * n_embd + 3 * n_embd):
                raise Hint(f"{case} = {got} counts only c_attn; add the output projection c_proj (n_embd x n_embd"
                           f"{' + n_embd biases' if bias else ''})")
            expect(got == want, f"{case} = {got}, expected {want}: c_attn is n_embd -> 3*n_embd, "
                   "c_proj is n_embd -> n_embd, each Linear has in*out weights (+ out biases if bias)")
    return "4*n_embd^2 weights, plus 4*n_embd biases when bias=True"
