"""Lesson 04's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import math

import torch
from torch import nn

from helpers.attention import GPTConfig
from helpers.exercises import lesson04 as ex
from helpers.layers import MLP, LayerNorm


def stub(*args):
    raise NotImplementedError


def test_unattempted_exercises_say_so():
    for result in (ex.check_fold_into_linear(stub), ex.check_gelu_derivative(stub), ex.check_deep_stack("A", stub)):
        assert not result and "not attempted" in result.message
    assert "write your prediction" in ex.check_deep_stack(None, stub).message


# --- Exercise 1: fold γ and β into the next Linear -----------------------------------------------


def folded_linear(weight, bias):
    folded = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded


def parts(ln, linear):
    """W, γ, β and b, with a missing β or b as zeros."""
    beta = ln.bias if ln.bias is not None else torch.zeros_like(ln.weight)
    b = linear.bias if linear.bias is not None else torch.zeros(linear.out_features, dtype=linear.weight.dtype)
    return linear.weight, ln.weight, beta, b


def fold_into_linear(ln, linear):
    w, gamma, beta, b = parts(ln, linear)
    return folded_linear(w * gamma, w @ beta + b)


def test_fold_solution_passes():
    assert ex.check_fold_into_linear(fold_into_linear)


def test_fold_in_place_passes_too():
    def in_place(ln, linear):  # changing `linear` itself and returning it is fine
        w, gamma, beta, b = parts(ln, linear)
        with torch.no_grad():
            new_bias = w @ beta + b
            linear.weight.mul_(gamma)
        if linear.bias is None:
            linear.bias = nn.Parameter(new_bias)
        else:
            with torch.no_grad():
                linear.bias.copy_(new_bias)
        return linear

    assert ex.check_fold_into_linear(in_place)


def test_fold_hints():
    def rows(ln, linear):
        w, gamma, beta, b = parts(ln, linear)
        return folded_linear(w * gamma[:, None] if w.shape[0] == w.shape[1] else w * gamma, w @ beta + b)

    result = ex.check_fold_into_linear(rows)
    assert not result and "multiplies the columns of W" in result.message

    def beta_plus_b(ln, linear):
        w, gamma, beta, b = parts(ln, linear)
        return folded_linear(w * gamma, beta + b if w.shape[0] == w.shape[1] else w @ beta + b)

    result = ex.check_fold_into_linear(beta_plus_b)
    assert not result and "goes through W too" in result.message

    def no_beta(ln, linear):
        w, gamma, _, b = parts(ln, linear)
        return folded_linear(w * gamma, b)

    result = ex.check_fold_into_linear(no_beta)
    assert not result and "you left β out" in result.message

    def no_b(ln, linear):
        w, gamma, beta, _ = parts(ln, linear)
        return folded_linear(w * gamma, w @ beta)

    result = ex.check_fold_into_linear(no_b)
    assert not result and "the Linear's own bias b" in result.message


def test_fold_must_return_a_linear_of_the_same_shape():
    result = ex.check_fold_into_linear(lambda ln, linear: (linear.weight * ln.weight, linear.bias))
    assert not result and "return an nn.Linear" in result.message
    result = ex.check_fold_into_linear(lambda ln, linear: nn.Linear(linear.in_features, linear.out_features + 1))
    assert not result and "the same shape as `linear`" in result.message
    result = ex.check_fold_into_linear(lambda ln, linear: nn.Linear(linear.in_features, linear.out_features))
    assert not result and "should equal linear(ln(x))" in result.message and "off by up to" in result.message


# --- Exercise 2: the derivative of GELU ----------------------------------------------------------


def cdf(x):
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def density(x):
    return torch.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


def test_gelu_derivative_passes_solution():
    assert ex.check_gelu_derivative(lambda x: cdf(x) + x * density(x))


def test_gelu_derivative_forgot_product_rule():
    result = ex.check_gelu_derivative(cdf)
    assert not result and "product rule" in result.message


def test_gelu_derivative_relu_step():
    result = ex.check_gelu_derivative(lambda x: (x > 0).to(x.dtype))
    assert not result and "ReLU" in result.message


def test_gelu_derivative_wrong_density_constant():
    result = ex.check_gelu_derivative(lambda x: cdf(x) + x * torch.exp(-0.5 * x**2))
    assert not result and "off by" in result.message


# --- Exercise 3: predict, then measure: a deep stack ---------------------------------------------


def deep_stack(n_layer, n_embd, layernorm):
    config = GPTConfig(n_embd=n_embd, n_head=1)
    if layernorm:
        return nn.Sequential(*[nn.Sequential(LayerNorm(n_embd), MLP(config)) for _ in range(n_layer)])
    return nn.Sequential(*[MLP(config) for _ in range(n_layer)])


def test_any_prediction_passes_a_right_stack_and_hears_how_it_fared():
    right = ex.check_deep_stack("B", deep_stack)
    assert right and "Your prediction was right" in right.message and "more than 1,000 times smaller" in right.message
    for wrong in ("A", "c"):
        result = ex.check_deep_stack(wrong, deep_stack)
        assert result and f"Your prediction was {wrong.upper()}, the answer B" in result.message


def test_deep_stack_with_torch_layernorm_passes():
    def with_torch_norm(n_layer, n_embd, layernorm):
        config = GPTConfig(n_embd=n_embd, n_head=1)
        return nn.Sequential(*[nn.Sequential(*([nn.LayerNorm(n_embd)] if layernorm else []), MLP(config))
                               for _ in range(n_layer)])

    assert ex.check_deep_stack("B", with_torch_norm)


def test_deep_stack_prediction_must_be_a_choice():
    result = ex.check_deep_stack("D", deep_stack)
    assert not result and '"A", "B" or "C"' in result.message


def test_deep_stack_layernorm_after_the_mlp_fails():
    def norm_after(n_layer, n_embd, layernorm):
        config = GPTConfig(n_embd=n_embd, n_head=1)
        return nn.Sequential(*[nn.Sequential(MLP(config), *([LayerNorm(n_embd)] if layernorm else []))
                               for _ in range(n_layer)])

    result = ex.check_deep_stack("B", norm_after)
    assert not result and "goes *before* each MLP" in result.message


def test_deep_stack_with_residual_connections_fails():
    class Residual(nn.Module):
        def __init__(self, n_embd, layernorm):
            super().__init__()
            self.ln = LayerNorm(n_embd) if layernorm else nn.Identity()
            self.mlp = MLP(GPTConfig(n_embd=n_embd, n_head=1))

        def forward(self, x):
            return x + self.mlp(self.ln(x))

    result = ex.check_deep_stack("B", lambda n, c, ln: nn.Sequential(*[Residual(c, ln) for _ in range(n)]))
    assert not result and "no residual connection" in result.message


def test_deep_stack_counts_its_parts():
    result = ex.check_deep_stack("B", lambda n, c, ln: deep_stack(n - 1, c, ln))
    assert not result and "holds 7 MLPs, expected 8" in result.message
    one_mlp_eight_times = lambda n, c, ln: nn.Sequential(*[MLP(GPTConfig(n_embd=c, n_head=1))] * n)
    assert "holds 1 MLPs" in ex.check_deep_stack("B", one_mlp_eight_times).message
    result = ex.check_deep_stack("B", lambda n, c, ln: deep_stack(n, c, True))
    assert not result and "none without layernorm" in result.message
    assert "should return an nn.Module" in ex.check_deep_stack("B", lambda n, c, ln: [MLP(GPTConfig(n_embd=c, n_head=1))]).message


def test_deep_stack_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    ex.check_deep_stack("B", deep_stack)
    assert torch.equal(torch.random.get_rng_state(), before)
