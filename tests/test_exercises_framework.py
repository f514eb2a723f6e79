"""The exercise framework turns checks into pass/hint results, never tracebacks."""

import pytest
import torch

from helpers.exercises import Hint, exercise, expect, expect_close, expect_sequence, expect_shape, first_difference


@exercise("Exercise 0 (double)")
def check_double(fn):
    for x in [0, 1, 5]:
        expect(fn(x) == 2 * x, f"double({x}) returned {fn(x)!r}, expected {2 * x}")


def test_pass_fail_not_attempted_and_crash():
    assert check_double(lambda x: 2 * x).passed
    wrong = check_double(lambda x: x + 1)
    assert not wrong and "double(0) returned 1, expected 0" in str(wrong) and str(wrong).startswith("❌")

    def stub(x):
        raise NotImplementedError

    assert "not attempted yet" in str(check_double(stub))
    crash = check_double(lambda x: x / "a")
    assert "your code raised TypeError" in str(crash)


def test_expectations_raise_hints():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 5, 3], [1, 2, 3]) == "position 1 is 5, expected 2"
    assert first_difference([1, 2], [1, 2, 3]) == "length is 2, expected 3"
    for call, text in [
        (lambda: expect_sequence([1, 5], [1, 2], "ids"), "ids: position 1"),
        (lambda: expect_shape(torch.zeros(2, 3), (3, 2), "x"), "x has shape (2, 3), expected (3, 2)"),
        (lambda: expect_shape([1], (1,), "x"), "should be a torch.Tensor"),
        (lambda: expect_close(torch.ones(3), torch.zeros(3), "y"), "y is off by up to 1"),
    ]:
        try:
            call()
        except Hint as hint:
            assert text in str(hint)
        else:
            raise AssertionError(f"no hint for {text}")
    expect_close(torch.ones(3), torch.ones(3) + 1e-7, "y")



def test_solutions_must_pass_turns_a_failed_check_into_an_error():
    from helpers.exercises import ExerciseFailed, solutions_must_pass

    @exercise("Exercise 0 (returns 1)")
    def check_returns_one(function):
        expect(function() == 1, "the answer is 1")

    def stub():
        raise NotImplementedError

    assert not check_returns_one(lambda: 2)  # a learner sees ❌ and the notebook goes on
    solutions_must_pass()
    try:
        with pytest.raises(ExerciseFailed, match="the answer is 1"):
            check_returns_one(lambda: 2)
        with pytest.raises(ExerciseFailed, match="not attempted yet"):
            check_returns_one(stub)
        assert check_returns_one(lambda: 1)
    finally:
        solutions_must_pass(False)
