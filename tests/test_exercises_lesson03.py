"""Lesson 03's exercise checkers: each passes a correct solution and fails typical mistakes with a useful hint."""

import math

import torch

from helpers.exercises import lesson03 as ex

# --- Exercise 1: causal attention weights --------------------------------------------------------


def weights_solution(q, k):
    T = q.size(0)
    scores = q @ k.T / math.sqrt(q.size(-1))
    return torch.softmax(scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")), dim=-1)


def test_causal_weights_passes_solution():
    assert ex.check_causal_weights(weights_solution)


def test_causal_weights_unscaled_gets_sqrt_hint():
    def unscaled(q, k):
        T = q.size(0)
        return torch.softmax((q @ k.T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")), dim=-1)

    result = ex.check_causal_weights(unscaled)
    assert not result and "sqrt(d)" in result.message


def test_causal_weights_without_mask_gets_future_hint():
    result = ex.check_causal_weights(lambda q, k: torch.softmax(q @ k.T / math.sqrt(q.size(-1)), dim=-1))
    assert not result and "mask the future" in result.message


def test_causal_weights_softmax_over_wrong_dim_gets_row_hint():
    def wrong_dim(q, k):
        T = q.size(0)
        scores = (q @ k.T / math.sqrt(q.size(-1))).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return torch.softmax(scores, dim=0).nan_to_num()

    result = ex.check_causal_weights(wrong_dim)
    assert not result and "sum to 1" in result.message


def test_causal_weights_not_attempted():
    def stub(q, k):
        raise NotImplementedError

    result = ex.check_causal_weights(stub)
    assert not result and "not attempted yet" in result.message


# --- Exercise 2: the causal mask -----------------------------------------------------------------


def test_causal_mask_passes_solution():
    assert ex.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril())


def test_causal_mask_upper_triangle_gets_tril_hint():
    result = ex.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).triu())
    assert not result and "torch.tril" in result.message


def test_causal_mask_without_diagonal_gets_itself_hint():
    result = ex.check_causal_mask(lambda T: torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1))
    assert not result and "attend to itself" in result.message


def test_causal_mask_float_gets_dtype_hint():
    result = ex.check_causal_mask(lambda T: torch.ones(T, T).tril())
    assert not result and "booleans" in result.message


# --- Exercise 3: splitting heads -----------------------------------------------------------------


def test_split_heads_passes_solution():
    def solution(x, n_head):
        B, T, C = x.shape
        return x.view(B, T, n_head, C // n_head).transpose(1, 2)

    assert ex.check_split_heads(solution)


def test_split_heads_single_view_gets_transpose_hint():
    def single_view(x, n_head):
        B, T, C = x.shape
        return x.view(B, n_head, T, C // n_head)

    result = ex.check_split_heads(single_view)
    assert not result and "transpose" in result.message


def test_split_heads_wrong_shape_gets_shape_hint():
    result = ex.check_split_heads(lambda x, n_head: x.view(x.size(0), x.size(1), n_head, -1))
    assert not result and "expected (2, 3, 5, 4)" in result.message


# --- Exercise 4: counting parameters -------------------------------------------------------------


def test_attention_parameters_passes_solution():
    assert ex.check_attention_parameters(lambda n, bias: 4 * n * n + (4 * n if bias else 0))


def test_attention_parameters_forgetting_biases_gets_bias_hint():
    result = ex.check_attention_parameters(lambda n, bias: 4 * n * n)
    assert not result and "biases" in result.message


def test_attention_parameters_forgetting_c_proj_gets_hint():
    result = ex.check_attention_parameters(lambda n, bias: 3 * n * n + (3 * n if bias else 0))
    assert not result and "c_proj" in result.message


def test_attention_parameters_rejects_non_integer():
    result = ex.check_attention_parameters(lambda n, bias: 4 * n * n + (4 * n if bias else 0) + 0.5)
    assert not result and "whole number" in result.message
