"""Lesson 04's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import math

import torch

from helpers.exercises import lesson04 as ex


def _stats_over(x, dim):
    return x.mean(dim=dim, keepdim=True), x.var(dim=dim, keepdim=True, correction=0)


# --- Exercise 1 --------------------------------------------------------------------------------


def layer_norm_solution(x, eps=1e-5):
    mean, var = _stats_over(x, -1)
    return (x - mean) / torch.sqrt(var + eps)


def test_layer_norm_by_hand_passes_solution():
    assert ex.check_layer_norm_by_hand(layer_norm_solution)


def test_layer_norm_by_hand_unbiased_variance():
    def unbiased(x, eps=1e-5):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps)

    result = ex.check_layer_norm_by_hand(unbiased)
    assert not result and "unbiased variance" in result.message and "correction=0" in result.message


def test_layer_norm_by_hand_missing_eps():
    def no_eps(x, eps=1e-5):
        mean, var = _stats_over(x, -1)
        return (x - mean) / torch.sqrt(var)

    result = ex.check_layer_norm_by_hand(no_eps)
    assert not result and "add eps inside the square root" in result.message


def test_layer_norm_by_hand_wrong_axis():
    def over_time(x, eps=1e-5):
        mean, var = _stats_over(x, 1 if x.dim() == 3 else -1)
        return (x - mean) / torch.sqrt(var + eps)

    def over_everything(x, eps=1e-5):
        return (x - x.mean()) / torch.sqrt(x.var(correction=0) + eps)

    result = ex.check_layer_norm_by_hand(over_time)
    assert not result and "time axis" in result.message and "dim=-1" in result.message
    result = ex.check_layer_norm_by_hand(over_everything)
    assert not result and "whole tensor" in result.message


def test_layer_norm_by_hand_wrong_shape_and_not_attempted():
    result = ex.check_layer_norm_by_hand(lambda x, eps=1e-5: layer_norm_solution(x, eps).sum(-1))
    assert not result and "shape" in result.message

    def stub(x, eps=1e-5):
        raise NotImplementedError

    assert "not attempted" in ex.check_layer_norm_by_hand(stub).message


# --- Exercise 2 --------------------------------------------------------------------------------


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


# --- Exercise 3 --------------------------------------------------------------------------------


def test_mlp_param_count_passes_solution():
    assert ex.check_mlp_param_count(lambda n, bias: 8 * n * n + (5 * n if bias else 0))


def test_mlp_param_count_forgot_biases():
    result = ex.check_mlp_param_count(lambda n, bias: 8 * n * n)
    assert not result and "4·n_embd for c_fc and n_embd for c_proj" in result.message


def test_mlp_param_count_biases_when_there_are_none():
    result = ex.check_mlp_param_count(lambda n, bias: 8 * n * n + 5 * n)
    assert not result and "bias=False" in result.message and "no biases" in result.message


def test_mlp_param_count_wrong_bias_size():
    result = ex.check_mlp_param_count(lambda n, bias: 8 * n * n + (8 * n if bias else 0))
    assert not result and "its bias has n_embd entries" in result.message


def test_mlp_param_count_one_layer_only():
    result = ex.check_mlp_param_count(lambda n, bias: 4 * n * n + (4 * n if bias else 0))
    assert not result and "two Linear layers" in result.message


def test_mlp_param_count_not_an_int():
    result = ex.check_mlp_param_count(lambda n, bias: 8.0 * n * n + (5 * n if bias else 0))
    assert not result and "should return an int" in result.message
