"""Lesson 03's exercise checkers: each passes a correct solution and fails typical mistakes with a useful hint."""

import torch
import torch.nn.functional as F

from helpers.exercises import lesson03 as ex

# --- Exercise 1: a previous-token head, by hand -------------------------------------------------


def previous_token_head(T, strength=20.0):
    W_q = torch.zeros(T, T)
    W_q[torch.arange(1, T), torch.arange(T - 1)] = strength  # query t looks like key t - 1
    return W_q, torch.eye(T)


def test_previous_token_head_passes_solution():
    assert ex.check_previous_token_head(previous_token_head)


def test_previous_token_head_looking_at_itself_gets_diagonal_hint():
    result = ex.check_previous_token_head(lambda T: (20 * torch.eye(T), torch.eye(T)))
    assert not result and "itself (the diagonal)" in result.message


def test_previous_token_head_too_weak_gets_scale_hint():
    result = ex.check_previous_token_head(lambda T: previous_token_head(T, strength=2.0))
    assert not result and "only by a little" in result.message and "larger number" in result.message


def test_previous_token_head_looking_forward_gets_mask_hint():
    def forward(T):
        W_q = torch.zeros(T, T)
        W_q[torch.arange(T - 1), torch.arange(1, T)] = 20.0
        return W_q, torch.eye(T)

    result = ex.check_previous_token_head(forward)
    assert not result and "causal mask hides key t+1" in result.message


def test_previous_token_head_strength_that_fits_only_short_sequences_fails():
    result = ex.check_previous_token_head(lambda T: previous_token_head(T, strength=8.0))  # enough for T=4, not 8
    assert not result and "T=8" in result.message


def test_previous_token_head_wrong_shape_and_not_attempted():
    result = ex.check_previous_token_head(lambda T: (torch.eye(T + 1), torch.eye(T)))
    assert not result and "W_q for T=4 has shape (5, 5)" in result.message

    def stub(T):
        raise NotImplementedError

    assert "not attempted yet" in ex.check_previous_token_head(stub).message


# --- Exercise 2: counting parameters -------------------------------------------------------------


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


# --- Exercise 3: predict, then measure: attention without 1/sqrt(d) -----------------------------


def unscaled(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)


def unscaled_by_hand(q, k, v):
    T = q.size(-2)
    scores = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def test_without_scale_passes_solution_whatever_the_prediction(offline_dir):
    right = ex.check_without_scale("A", unscaled)
    assert right and "Your prediction was right" in right.message and "higher than with the scale" in right.message
    wrong = ex.check_without_scale(" c ", unscaled_by_hand)  # a wrong prediction still passes: the experiment is right
    assert wrong and "Your prediction was C, the answer A" in wrong.message


def test_without_scale_still_scaled_gets_hint():
    result = ex.check_without_scale("A", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert not result and "*with* the scale" in result.message


def test_without_scale_unmasked_gets_hint():
    result = ex.check_without_scale("A", lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v)
    assert not result and "not masked" in result.message


def test_without_scale_needs_a_prediction_first():
    assert "not attempted yet" in ex.check_without_scale(None, unscaled).message
    result = ex.check_without_scale("higher", unscaled)
    assert not result and '"A", "B" or "C"' in result.message
