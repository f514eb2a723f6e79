"""Lesson 08's exercise checkers pass the solutions and fail typical wrong answers with a useful hint."""

import torch

from helpers.exercises import lesson08 as ex
from helpers.training import get_lr, train_step


def not_attempted(*args):
    raise NotImplementedError


def overfit_one_batch(model, optimizer, batch, steps):  # the solution
    return [train_step(model, optimizer, [batch], grad_clip=1.0)[0].item() for _ in range(steps)]


def test_overfit_one_batch():
    result = ex.check_overfit_one_batch(overfit_one_batch, 0.5)
    assert result and "you predicted 0.50" in str(result)
    assert "was close" in str(ex.check_overfit_one_batch(overfit_one_batch, 0.0))
    assert "write your prediction first" in str(ex.check_overfit_one_batch(overfit_one_batch, None))
    assert "not attempted" in str(ex.check_overfit_one_batch(not_attempted, 0.5))
    assert "hardly moves" in str(ex.check_overfit_one_batch(lambda m, o, b, s: [4.2] * s, 0.5))

    def new_batches(model, optimizer, batch, steps):  # a new random batch each step: nothing to memorise
        def random_batch():
            x = torch.randint(65, (4, 32))
            return x, torch.roll(x, -1, dims=1)
        return [train_step(model, optimizer, [random_batch()])[0].item() for _ in range(steps)]

    assert "the batch you were given every time" in str(ex.check_overfit_one_batch(new_batches, 0.5))


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


def first_update_size(model, optimizer, batch, grad_clip):  # the solution
    before = [p.detach().clone() for p in model.parameters()]
    train_step(model, optimizer, [batch], grad_clip=grad_clip)
    return torch.sqrt(sum((p.detach() - b).pow(2).sum() for p, b in zip(model.parameters(), before))).item()


def test_clipped_update():
    result = ex.check_clipped_update(first_update_size, 1.0)
    assert result and "was close" in str(result)
    assert "you predicted 100" in str(ex.check_clipped_update(first_update_size, 100))
    assert "write your prediction first" in str(ex.check_clipped_update(first_update_size, "about 1"))

    def after_only(model, optimizer, batch, grad_clip):  # compares the parameters with themselves
        train_step(model, optimizer, [batch], grad_clip=grad_clip)
        return sum((p.detach() - p.detach()).pow(2).sum() for p in model.parameters()).item()

    assert "did not change" in str(ex.check_clipped_update(after_only, 1.0))

    def squared(model, optimizer, batch, grad_clip):  # forgot the square root
        return first_update_size(model, optimizer, batch, grad_clip) ** 2

    assert "square root" in str(ex.check_clipped_update(squared, 1.0))
