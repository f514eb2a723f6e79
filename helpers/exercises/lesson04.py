"""Exercise checkers for lesson 04 (LayerNorm and GELU). Solutions: notebooks/solutions/04_layernorm_gelu.ipynb."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from helpers.exercises import Hint, exercise, expect, expect_close, expect_shape


def _close(got, want, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    got_t, want_t = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    return got_t.shape == want_t.shape and torch.allclose(got_t, want_t, atol=atol, rtol=rtol)


@exercise("Exercise 1 (normalise by hand, over the right axis)")
def check_layer_norm_by_hand(layer_norm_by_hand: Callable) -> str:
    """`layer_norm_by_hand(x, eps)` normalises every vector along the last axis of x to mean 0, variance 1."""
    eps = 1e-5
    vector = torch.tensor([2.0, 4.0, 6.0, 8.0])
    got = layer_norm_by_hand(vector.clone(), eps)
    expect_shape(got, tuple(vector.shape), "layer_norm_by_hand([2., 4., 6., 8.])")
    unbiased = (vector - vector.mean()) / torch.sqrt(vector.var(correction=1) + eps)
    expect(not _close(got, unbiased),
           "you used the unbiased variance (dividing by n - 1); LayerNorm divides by n: "
           "use x.var(dim=-1, keepdim=True, correction=0), or ((x - mean) ** 2).mean(dim=-1, keepdim=True)")
    expect_close(got, F.layer_norm(vector, (4,), eps=eps), "layer_norm_by_hand([2., 4., 6., 8.])")

    constant = torch.full((3,), 7.0)
    got = layer_norm_by_hand(constant.clone(), eps)
    expect_shape(got, (3,), "layer_norm_by_hand of a constant vector")
    expect(bool(torch.isfinite(got).all()),
           "a constant vector has variance 0, so you divided by 0: add eps inside the square root, sqrt(var + eps)")
    expect_close(got, torch.zeros(3), "layer_norm_by_hand of a constant vector")

    generator = torch.Generator().manual_seed(4)
    batch = 3.0 + 2.0 * torch.randn(2, 3, 5, generator=generator)
    got = layer_norm_by_hand(batch.clone(), eps)
    expect_shape(got, (2, 3, 5), "layer_norm_by_hand of a (B, T, C) = (2, 3, 5) batch")
    for dim, name in ((0, "the batch axis (dim 0)"), (1, "the time axis (dim 1)")):
        wrong = (batch - batch.mean(dim, keepdim=True)) / torch.sqrt(batch.var(dim, keepdim=True, correction=0) + eps)
        expect(not _close(got, wrong),
               f"you normalised over {name}: LayerNorm normalises each position's own C features, "
               "so take mean and variance over dim=-1 (with keepdim=True so they broadcast)")
    whole = (batch - batch.mean()) / torch.sqrt(batch.var(correction=0) + eps)
    expect(not _close(got, whole),
           "you normalised the whole tensor at once: take mean and variance over dim=-1 only, with keepdim=True")
    expect_close(got, F.layer_norm(batch, (5,), eps=eps), "layer_norm_by_hand of a (2, 3, 5) batch")
    return "matches F.layer_norm on a vector, a constant vector and a (B, T, C) batch"


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


@exercise("Exercise 2 (the derivative of GELU)")
def check_gelu_derivative(gelu_derivative: Callable) -> str:
    """`gelu_derivative(x)` is d/dx [x·Φ(x)] for the exact GELU, elementwise."""
    x = torch.linspace(-5.0, 5.0, 101, dtype=torch.float64, requires_grad=True)
    F.gelu(x).sum().backward()
    want = x.grad
    x = x.detach()
    got = gelu_derivative(x.clone())
    expect_shape(got, tuple(x.shape), "gelu_derivative(x)")
    expect(not _close(got, _standard_normal_cdf(x), atol=1e-4),
           "that is Φ(x) alone, the derivative of x·Φ(x) with Φ held fixed: GELU is a product, "
           "so the product rule adds a second term, x·φ(x), where φ(x) = exp(-x²/2) / sqrt(2π)")
    expect(not _close(got, (x > 0).double(), atol=1e-4),
           "that is ReLU's derivative (a step); GELU's derivative is smooth: Φ(x) + x·φ(x)")
    expect_close(got, want, "gelu_derivative(x) on [-5, 5]", atol=1e-4, rtol=1e-3)
    dip = x[int(got.argmin())].item()
    return f"matches autograd; the slope dips below 0 (to {got.min().item():.3f} at x ≈ {dip:.1f}), unlike ReLU's"


def _mlp_param_count(n_embd: int, bias: bool) -> int:
    from helpers.attention import GPTConfig
    from helpers.layers import MLP

    mlp = MLP(GPTConfig(n_embd=n_embd, n_head=1, bias=bias))
    return sum(p.numel() for p in mlp.parameters())


@exercise("Exercise 3 (count the MLP's parameters)")
def check_mlp_param_count(mlp_param_count: Callable) -> str:
    """`mlp_param_count(n_embd, bias)` is the number of parameters of MLP(GPTConfig(n_embd=..., bias=...))."""
    for n_embd, bias in ((768, True), (768, False), (64, True), (5, False)):
        got = mlp_param_count(n_embd, bias)
        want = _mlp_param_count(n_embd, bias)
        weights, biases = 8 * n_embd * n_embd, 5 * n_embd
        call = f"mlp_param_count({n_embd}, bias={bias})"
        expect(isinstance(got, int) and not isinstance(got, bool), f"{call} should return an int, got {got!r}")
        if got == want:
            continue
        if bias and got == weights:
            raise Hint(f"{call}: with bias=True each Linear also has one bias per output: "
                       "4·n_embd for c_fc and n_embd for c_proj")
        if not bias and got == weights + biases:
            raise Hint(f"{call}: with bias=False the Linear layers have no biases, only weights")
        if bias and got == weights + 8 * n_embd:
            raise Hint(f"{call}: c_proj maps 4·n_embd -> n_embd, so its bias has n_embd entries, not 4·n_embd")
        if got in (weights // 2, weights // 2 + 4 * n_embd, weights // 2 + n_embd):
            raise Hint(f"{call}: there are two Linear layers, c_fc (n_embd -> 4·n_embd) and c_proj (4·n_embd -> n_embd)")
        raise Hint(f"{call} returned {got}, which is not the MLP's count: add up the sizes of c_fc.weight, "
                   "c_fc.bias, c_proj.weight and c_proj.bias (GELU and dropout have no parameters)")
    small = _mlp_param_count(768, True)
    return f"each GPT-2 small MLP holds {small:,} parameters; the MLPs of its 12 blocks hold {12 * small / 1e6:.1f}M of its 124M"
