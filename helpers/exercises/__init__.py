"""Self-checking exercises: the learner writes code in a cell, one call checks it.

Each lesson's checkers live in `helpers/exercises/lessonNN.py`. A checker is a
function decorated with `@exercise(...)` that takes the learner's answer and
raises `Hint` (through `expect`, `expect_shape`, ...) when something is wrong.
The decorator turns that into a `Result` that prints as a pass, or as a hint
that says what is wrong, and never as a traceback:

    from helpers.exercises import lesson01 as ex
    ex.check_char_counts(my_function)   # ✅ Exercise 1 (...): passed   or   ❌ ...: hint

Solutions live in `notebooks/solutions/NN_*.ipynb`. Each calls `solutions_must_pass()` first: from then on a
failed check raises `ExerciseFailed`, so a broken solution or checker fails the notebook (and CI).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


class Hint(AssertionError):
    """Raised by a checker when the answer is wrong; its message is the hint shown to the learner."""


class ExerciseFailed(AssertionError):
    """A check failed where every check must pass (a solution notebook, after solutions_must_pass())."""


_must_pass = False


def solutions_must_pass(on: bool = True) -> None:
    """Make every failed check raise ExerciseFailed instead of printing ❌ (for the solution notebooks)."""
    global _must_pass
    _must_pass = on


@dataclass
class Result:
    """The outcome of one check. Truthy when the answer passed."""

    title: str
    passed: bool
    message: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"✅ {self.title}: passed" + (f". {self.message}" if self.message else "")
        return f"❌ {self.title}: {self.message}"

    __repr__ = __str__


def exercise(title: str) -> Callable:
    """Make `check(answer)` return a `Result` instead of raising."""

    def decorate(check: Callable) -> Callable[..., Result]:
        @functools.wraps(check)
        def run(*answer, **kwargs) -> Result:
            result = _checked(check, title, answer, kwargs)
            if _must_pass and not result.passed:
                raise ExerciseFailed(str(result))
            return result

        return run

    return decorate


def _checked(check: Callable, title: str, answer: tuple, kwargs: dict) -> Result:
    try:
        note = check(*answer, **kwargs)
    except Hint as hint:
        return Result(title, False, str(hint))
    except NotImplementedError:
        return Result(title, False, "not attempted yet: replace `raise NotImplementedError` with your code")
    except Exception as error:  # the learner's code crashed: say how, without a traceback
        return Result(title, False, f"your code raised {type(error).__name__}: {error}")
    return Result(title, True, note or "")


def expect(condition: bool, hint: str) -> None:
    """Raise `Hint(hint)` unless `condition` holds."""
    if not condition:
        raise Hint(hint)


def first_difference(got: Sequence, want: Sequence) -> str | None:
    """Describe the first position where two sequences differ, or None if they are equal."""
    got, want = list(got), list(want)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"position {i} is {g!r}, expected {w!r}"
    if len(got) != len(want):
        return f"length is {len(got)}, expected {len(want)}"
    return None


def expect_sequence(got: Sequence, want: Sequence, what: str) -> None:
    """Hint at the first element where `got` differs from `want`."""
    difference = first_difference(got, want)
    if difference:
        raise Hint(f"{what}: {difference}")


def expect_shape(tensor, shape: tuple, what: str) -> None:
    """Hint when `tensor` is not a tensor of the expected shape."""
    if not isinstance(tensor, torch.Tensor):
        raise Hint(f"{what} should be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != tuple(shape):
        raise Hint(f"{what} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")


def expect_close(got, want, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Hint when two tensors (or numbers) differ by more than the tolerance."""
    got_t, want_t = torch.as_tensor(got).float(), torch.as_tensor(want).float()
    expect_shape(got_t, tuple(want_t.shape), what)
    if not torch.allclose(got_t, want_t, atol=atol, rtol=rtol):
        worst = (got_t - want_t).abs().max().item()
        raise Hint(f"{what} is off by up to {worst:.3g} from the reference")
