"""Lesson 07's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from helpers.counting import activation_bytes, count_params, training_memory
from helpers.exercises import lesson07 as ex
from helpers.model import GPT

# ---- Exercise 1: predict, then measure: FLOPs per token as the context grows


def measure(seq_len, math_backend=True, per_token=True):
    model = GPT(ex.flop_config(seq_len))
    idx = torch.randint(0, 65, (2, seq_len))
    with FlopCounterMode(display=False) as counter:
        if math_backend:
            with sdpa_kernel(SDPBackend.MATH):
                model(idx, targets=idx)[1].backward()
        else:
            model(idx, targets=idx)[1].backward()
    return counter.get_total_flops() / (idx.numel() if per_token else 1)


def test_flops_growth_solution_passes_whatever_the_prediction():
    right = ex.check_flops_growth(3.0, measure)
    assert right and "Your prediction was right" in right.message and "linearly with T" in right.message
    wrong = ex.check_flops_growth(256, measure)  # the quadratic guess: (1024 / 64)²
    assert wrong and "Your prediction was too high" in wrong.message


def test_flops_growth_without_the_math_backend_gets_hint():
    result = ex.check_flops_growth(3.0, lambda seq_len: measure(seq_len, math_backend=False))
    assert not result and "SDPBackend.MATH" in result.message


def test_flops_growth_per_batch_or_formula_instead_of_measurement_fail():
    result = ex.check_flops_growth(3.0, lambda seq_len: measure(seq_len, per_token=False))
    assert not result and "divide by the number of tokens" in result.message
    result = ex.check_flops_growth(3.0, lambda seq_len: 1.1 * ex.reference_flops_per_token(seq_len))
    assert not result and "PyTorch counts" in result.message


def test_flops_growth_needs_a_positive_prediction():
    assert "not attempted yet" in ex.check_flops_growth(None, measure).message
    result = ex.check_flops_growth("three", measure)
    assert not result and "positive number" in result.message


# ---- Exercise 2: the vocabulary, from a reported size


def vocab_size_from_count(total, config, tied):
    rest = count_params(config) - config.n_embd  # with vocab_size=1: everything else, plus one row of wte
    return (total - rest) // (config.n_embd if tied else 2 * config.n_embd)


def test_vocab_size_solution_passes():
    assert ex.check_vocab_size_from_count(vocab_size_from_count)


def test_vocab_size_untied_as_tied_gets_hint():
    result = ex.check_vocab_size_from_count(lambda total, config, tied: vocab_size_from_count(total, config, True))
    assert not result and "2·n_embd" in result.message


def test_vocab_size_forgetting_wpe_gets_hint():
    def without_wpe(total, config, tied):
        return vocab_size_from_count(total, config, tied) + config.block_size

    result = ex.check_vocab_size_from_count(without_wpe)
    assert not result and "position embeddings" in result.message


def test_vocab_size_fraction_gets_whole_number_hint():
    result = ex.check_vocab_size_from_count(lambda total, config, tied: vocab_size_from_count(total, config, tied) + 0.5)
    assert not result and "whole number" in result.message


# ---- Exercise 3: will it fit?


def largest_batch(config, memory_bytes, flash):
    free = memory_bytes - sum(training_memory(config).values())
    return max(0, int(free // activation_bytes(config, 1, flash=flash)))


def test_largest_batch_solution_passes():
    result = ex.check_largest_batch(largest_batch)
    assert result and "13 sequences" in result.message and "43 with flash" in result.message


def test_largest_batch_without_the_training_state_gets_hint():
    result = ex.check_largest_batch(lambda c, m, flash: int(m // activation_bytes(c, 1, flash=flash)))
    assert not result and "AdamW's moments" in result.message


def test_largest_batch_ignoring_flash_gets_hint():
    result = ex.check_largest_batch(lambda c, m, flash: largest_batch(c, m, False))
    assert not result and "flash=" in result.message and "pass flash on" in result.message


def test_largest_batch_rounding_up_or_negative_get_hints():
    result = ex.check_largest_batch(lambda c, m, flash: largest_batch(c, m, flash) + 1)
    assert not result and "round down" in result.message

    def negative(c, m, flash):
        free = m - sum(training_memory(c).values())
        return int(free // activation_bytes(c, 1, flash=flash))

    result = ex.check_largest_batch(negative)
    assert not result and "0 sequences" in result.message
