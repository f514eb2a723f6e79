"""Lesson 06's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import torch
from torch import nn

from helpers.exercises import lesson06 as ex

# ---- Exercise 1: count only the answer


def answer_targets(tokens, prompt_len):
    idx, targets = tokens[:, :-1], tokens[:, 1:].clone()
    targets[:, :prompt_len - 1] = -1
    return idx, targets


def test_answer_targets_solution_passes():
    result = ex.check_answer_targets(answer_targets)
    assert result and "answer tokens only" in result.message


def test_answer_targets_off_by_one_gets_hint():
    def one_too_many(tokens, prompt_len):
        idx, targets = tokens[:, :-1], tokens[:, 1:].clone()
        targets[:, :prompt_len] = -1
        return idx, targets

    result = ex.check_answer_targets(one_too_many)
    assert not result and "you mask 4 targets, the right number is 3" in result.message


def test_answer_targets_unmasked_zero_or_unshifted_get_hints():
    result = ex.check_answer_targets(lambda tokens, prompt_len: (tokens[:, :-1], tokens[:, 1:]))
    assert not result and "nothing is masked" in result.message

    def with_zero(tokens, prompt_len):
        idx, targets = answer_targets(tokens, prompt_len)
        return idx, targets.masked_fill(targets == -1, 0)

    result = ex.check_answer_targets(with_zero)
    assert not result and "0 is a real token id" in result.message

    def unshifted(tokens, prompt_len):
        targets = tokens[:, :-1].clone()
        targets[:, :prompt_len - 1] = -1
        return tokens[:, :-1], targets

    result = ex.check_answer_targets(unshifted)
    assert not result and "not shifted" in result.message


def test_answer_targets_wrong_idx_and_not_attempted():
    result = ex.check_answer_targets(lambda tokens, prompt_len: (tokens, answer_targets(tokens, prompt_len)[1]))
    assert not result and "shape" in result.message

    def stub(tokens, prompt_len):
        raise NotImplementedError

    assert "not attempted" in ex.check_answer_targets(stub).message


# ---- Exercise 2: predict, then measure: untie the head


def untie_(model):
    model.lm_head.weight = nn.Parameter(torch.empty_like(model.transformer.wte.weight).normal_(0.0, 0.02))


def self_prediction_rate(model, idx):
    logits, _ = model(idx)
    return (logits.argmax(dim=-1) == idx).float().mean()


def test_untie_solution_passes_whatever_the_prediction():
    right = ex.check_untie(0.95, untie_, self_prediction_rate)
    assert right and "Your prediction was right" in right.message and "untied, at 0%" in right.message
    wrong = ex.check_untie(0.1, untie_, self_prediction_rate)
    assert wrong and "Your prediction was too low" in wrong.message


def test_untie_with_a_copy_or_in_name_only_gets_hints():
    copy = ex.check_untie(0.5, lambda m: setattr(m.lm_head, "weight", nn.Parameter(m.transformer.wte.weight.detach().clone())),
                          self_prediction_rate)
    assert not copy and "copy of wte's values" in copy.message
    still_tied = ex.check_untie(0.5, lambda m: m, self_prediction_rate)
    assert not still_tied and "still wte.weight" in still_tied.message
    frozen = ex.check_untie(0.5, lambda m: setattr(m.lm_head, "weight", nn.Parameter(
        torch.randn_like(m.transformer.wte.weight) * 0.02, requires_grad=False)), self_prediction_rate)
    assert not frozen and "nn.Parameter" in frozen.message
    too_large = ex.check_untie(0.5, lambda m: setattr(m.lm_head, "weight", nn.Parameter(
        torch.randn_like(m.transformer.wte.weight))), self_prediction_rate)
    assert not too_large and "N(0, 0.02²)" in too_large.message


def test_self_prediction_rate_against_the_next_token_or_as_a_count_gets_hints():
    def against_next(model, idx):
        logits, _ = model(idx)
        return (logits.argmax(dim=-1)[:, :-1] == idx[:, 1:]).float().mean()

    result = ex.check_untie(0.5, untie_, against_next)
    assert not result and "not with the next token" in result.message

    def count(model, idx):
        logits, _ = model(idx)
        return int((logits.argmax(dim=-1) == idx).sum())

    result = ex.check_untie(0.5, untie_, count)
    assert not result and "fraction" in result.message


def test_untie_needs_a_prediction_between_0_and_1():
    assert "not attempted yet" in ex.check_untie(None, untie_, self_prediction_rate).message
    result = ex.check_untie(97, untie_, self_prediction_rate)
    assert not result and "between 0 and 1" in result.message
