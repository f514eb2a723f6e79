"""Lesson 08's exercise checkers pass the solutions and fail typical wrong answers with a useful hint."""

import math

import torch

from helpers.exercises import lesson08 as ex
from helpers.training import get_lr


def not_attempted(*args):
    raise NotImplementedError


def bits_per_char(loss_per_token, n_tokens, n_chars):  # the solution
    return loss_per_token / math.log(2) * n_tokens / n_chars


def test_bits_per_char():
    assert ex.check_bits_per_char(bits_per_char)
    assert "not attempted" in str(ex.check_bits_per_char(not_attempted))
    assert "ln 2" in str(ex.check_bits_per_char(lambda loss, t, c: loss * t / c))
    assert "upside down" in str(ex.check_bits_per_char(lambda loss, t, c: loss / math.log(2) * c / t))
    assert "n_tokens / n_chars" in str(ex.check_bits_per_char(lambda loss, t, c: loss / math.log(2)))


def lr_linear(step, learning_rate, min_lr, warmup_iters, decay_iters):  # the solution
    if step < warmup_iters:
        return learning_rate * (step + 1) / warmup_iters
    if step >= decay_iters:
        return min_lr
    return learning_rate - (step - warmup_iters) / (decay_iters - warmup_iters) * (learning_rate - min_lr)


def test_linear_schedule():
    assert ex.check_linear_schedule(lr_linear)
    zero_start = lambda step, lr, floor, w, d: lr * step / w if step < w else lr_linear(step, lr, floor, w, d)
    assert "step 0" in str(ex.check_linear_schedule(zero_start))
    assert "cosine" in str(ex.check_linear_schedule(get_lr))
    no_floor = lambda step, lr, floor, w, d: lr_linear(step, lr, floor, w, d) if step < d else 0.0
    assert "min_lr" in str(ex.check_linear_schedule(no_floor))


def clip_global_norm(grads, max_norm):  # the solution
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    factor = min(1.0, max_norm / (total.item() + 1e-6))
    for g in grads:
        g.mul_(factor)
    return total


def test_clip_global_norm():
    assert ex.check_clip_global_norm(clip_global_norm)

    def per_tensor(grads, max_norm):
        total = torch.sqrt(sum((g ** 2).sum() for g in grads))
        for g in grads:
            g.mul_(min(1.0, max_norm / (g.norm().item() + 1e-6)))
        return total

    assert "clipped on its own" in str(ex.check_clip_global_norm(per_tensor))
    assert "return the total norm" in str(ex.check_clip_global_norm(lambda grads, max_norm: None))

    def always_scale(grads, max_norm):
        total = torch.sqrt(sum((g ** 2).sum() for g in grads))
        for g in grads:
            g.mul_(max_norm / total)
        return total

    assert "below max_norm must stay unchanged" in str(ex.check_clip_global_norm(always_scale))


def accumulate(model, x, y, k):  # the solution
    for xs, ys in zip(x.chunk(k), y.chunk(k)):
        (model(xs, ys)[1] / k).backward()


def test_accumulate():
    assert ex.check_accumulate(accumulate)

    def no_division(model, x, y, k):
        for xs, ys in zip(x.chunk(k), y.chunk(k)):
            model(xs, ys)[1].backward()

    assert "k times too large" in str(ex.check_accumulate(no_division))

    def zeroing(model, x, y, k):
        for xs, ys in zip(x.chunk(k), y.chunk(k)):
            model.zero_grad()
            (model(xs, ys)[1] / k).backward()

    assert "do not zero the gradients" in str(ex.check_accumulate(zeroing))
