"""Lesson 06's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import math

import torch

from helpers.exercises import lesson06 as ex

# ---- Exercise 1: weight tying


def test_is_tied_solution_passes():
    assert ex.check_is_tied(lambda model: model.lm_head.weight is model.transformer.wte.weight)


def test_is_tied_comparing_values_fails_with_hint():
    result = ex.check_is_tied(lambda model: torch.equal(model.lm_head.weight, model.transformer.wte.weight))
    assert not result
    assert "identity" in result.message and "`is`" in result.message


def test_is_tied_always_true_fails():
    result = ex.check_is_tied(lambda model: True)
    assert not result and "not tied" in result.message


def test_is_tied_not_attempted():
    def stub(model):
        raise NotImplementedError

    result = ex.check_is_tied(stub)
    assert not result and "not attempted" in result.message


# ---- Exercise 2: HF key names

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def solution_hf_to_ours(key):
    if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
        return None
    name = key if key.startswith("transformer.") else "transformer." + key
    return name, key.endswith(CONV1D)


def test_hf_to_ours_solution_passes():
    assert ex.check_hf_to_ours(solution_hf_to_ours)


def test_hf_to_ours_without_prefix_fails_with_hint():
    result = ex.check_hf_to_ours(lambda key: None if solution_hf_to_ours(key) is None else (key, key.endswith(CONV1D)))
    assert not result and "'transformer.' prefix" in result.message


def test_hf_to_ours_transposing_everything_fails_with_hint():
    def wrong(key):
        answer = solution_hf_to_ours(key)
        return None if answer is None else (answer[0], key.endswith("weight"))

    result = ex.check_hf_to_ours(wrong)
    assert not result and "must not be transposed" in result.message


def test_hf_to_ours_never_transposing_fails_with_hint():
    result = ex.check_hf_to_ours(lambda key: None if solution_hf_to_ours(key) is None else (solution_hf_to_ours(key)[0], False))
    assert not result and "Conv1D" in result.message


def test_hf_to_ours_catching_c_attn_bias_as_buffer_fails_with_hint():
    """A sloppy endswith('attn.bias') also drops every attn.c_attn.bias."""
    def wrong(key):
        if key.endswith("attn.bias"):
            return None
        return solution_hf_to_ours(key)

    result = ex.check_hf_to_ours(wrong)
    assert not result and "with the dot" in result.message


def test_hf_to_ours_keeping_lm_head_fails_with_hint():
    result = ex.check_hf_to_ours(lambda key: ("lm_head.weight", False) if key == "lm_head.weight" else solution_hf_to_ours(key))
    assert not result and "tied" in result.message


# ---- Exercise 3: the loss at init


def test_initial_loss_solution_passes():
    result = ex.check_initial_loss(lambda v: math.log(v))
    assert result and "ln 50" in result.message


def test_initial_loss_log2_fails_with_hint():
    result = ex.check_initial_loss(lambda v: math.log2(v))
    assert not result and "natural log" in result.message


def test_initial_loss_probability_fails_with_hint():
    result = ex.check_initial_loss(lambda v: 1 / v)
    assert not result and "probability" in result.message


def test_initial_loss_wrong_sign_fails_with_hint():
    result = ex.check_initial_loss(lambda v: math.log(1 / v))
    assert not result and "sign" in result.message


# ---- Exercise 4: positions with a cache


def test_new_positions_solution_passes():
    assert ex.check_new_positions(lambda T, past: torch.arange(past, past + T, dtype=torch.long))


def test_new_positions_ignoring_the_cache_fails_with_hint():
    result = ex.check_new_positions(lambda T, past: torch.arange(T))
    assert not result and "past, past + 1" in result.message


def test_new_positions_float_fails_with_hint():
    result = ex.check_new_positions(lambda T, past: torch.arange(past, past + T, dtype=torch.float32))
    assert not result and "torch.long" in result.message


def test_new_positions_off_by_one_fails_with_hint():
    result = ex.check_new_positions(lambda T, past: torch.arange(past + 1, past + T + 1))
    assert not result and "position 0" in result.message


def test_new_positions_checker_restores_the_model_module():
    import helpers.model

    original = helpers.model.positions
    ex.check_new_positions(lambda T, past: torch.arange(T))
    assert helpers.model.positions is original
