"""Lesson 02's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import math

import torch
import torch.nn.functional as F

from helpers.exercises import lesson02 as ex


def make_windows(ids, block_size, stride):
    return [(ids[s : s + block_size], ids[s + 1 : s + block_size + 1]) for s in range(0, len(ids) - block_size, stride)]


def one_hot_lookup(idx, weight):
    return F.one_hot(idx, num_classes=weight.shape[0]).to(weight.dtype) @ weight


def count_windows(n_tokens, block_size, stride):
    return (n_tokens - block_size - 1) // stride + 1


def uniform_loss(vocab_size):
    return math.log(vocab_size)


def test_solutions_pass():
    for result in (
        ex.check_make_windows(make_windows),
        ex.check_one_hot_lookup(one_hot_lookup),
        ex.check_count_windows(count_windows),
        ex.check_uniform_loss(uniform_loss),
    ):
        assert result, str(result)


def test_unattempted_exercise_says_so():
    def stub(*args):
        raise NotImplementedError

    result = ex.check_uniform_loss(stub)
    assert not result and "not attempted yet" in str(result)


def test_make_windows_hints():
    no_shift = lambda ids, b, s: [(ids[i : i + b], ids[i : i + b]) for i in range(0, len(ids) - b, s)]
    assert "shifted by one" in str(ex.check_make_windows(no_shift))

    wrong_way = lambda ids, b, s: [(ids[i + 1 : i + b + 1], ids[i : i + b]) for i in range(0, len(ids) - b, s)]
    assert "swapped" in str(ex.check_make_windows(wrong_way))

    starts_at_one = lambda ids, b, s: make_windows(ids[1:], b, s)
    assert "the first x: position 0 is 1, expected 5" in str(ex.check_make_windows(starts_at_one))

    too_few = lambda ids, b, s: [(ids[i : i + b], ids[i + 1 : i + b + 1]) for i in range(0, len(ids) - b - 1, s)]
    assert "stop too early" in str(ex.check_make_windows(too_few))

    too_many = lambda ids, b, s: [(ids[i : i + b], ids[i + 1 : i + b + 1]) for i in range(0, len(ids) - b + 1, s)]
    assert "run past the end" in str(ex.check_make_windows(too_many))

    ignores_stride = lambda ids, b, s: make_windows(ids, b, 1)
    assert "i * stride" in str(ex.check_make_windows(ignores_stride))


def test_one_hot_lookup_hints():
    returns_one_hot = lambda idx, weight: F.one_hot(idx, num_classes=weight.shape[0]).float()
    assert "one-hot matrix itself" in str(ex.check_one_hot_lookup(returns_one_hot))

    transposed = lambda idx, weight: F.one_hot(idx, num_classes=weight.shape[1]).float() @ weight.T
    assert "your code raised RuntimeError" in str(ex.check_one_hot_lookup(transposed))

    off_by_one = lambda idx, weight: one_hot_lookup((idx + 1) % weight.shape[0], weight)
    assert "off by up to" in str(ex.check_one_hot_lookup(off_by_one))

    assert "torch.Tensor" in str(ex.check_one_hot_lookup(lambda idx, weight: weight[idx].tolist()))


def test_count_windows_hints():
    forgot_target = lambda n, b, s: (n - b) // s + 1
    assert "block_size + 1 tokens" in str(ex.check_count_windows(forgot_target))

    forgot_first = lambda n, b, s: (n - b - 1) // s
    assert "starts at token 0" in str(ex.check_count_windows(forgot_first))

    no_stride = lambda n, b, s: n - b
    assert "expected" in str(ex.check_count_windows(no_stride))


def test_uniform_loss_hints():
    assert "probability" in str(ex.check_uniform_loss(lambda v: 1 / v))
    assert "base 2" in str(ex.check_uniform_loss(lambda v: math.log2(v)))
    assert "base 10" in str(ex.check_uniform_loss(lambda v: math.log10(v)))
    assert "expected" in str(ex.check_uniform_loss(lambda v: -math.log(v)))
    assert ex.check_uniform_loss(lambda v: F.cross_entropy(torch.zeros(1, v), torch.tensor([0])).item())
