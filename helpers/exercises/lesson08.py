"""Exercise checkers for lesson 08 (training).

    from helpers.exercises import lesson08 as ex
    ex.check_overfit_one_batch(overfit_one_batch, predicted_loss)

Solutions: notebooks/solutions/08_training.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from helpers.exercises import Hint, exercise, expect


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


SMALL = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=64)  # trains in milliseconds a step


def fresh_setup(seed: int = 0):
    """A fresh small GPT, its AdamW (lr 3e-3, no weight decay) and one fixed batch of 4 × 32 token ids."""
    from helpers.attention import GPTConfig
    from helpers.model import GPT
    from helpers.training import configure_optimizer

    torch.manual_seed(seed)
    model = GPT(GPTConfig(**SMALL))
    optimizer = configure_optimizer(model, 0.0, 3e-3, (0.9, 0.99), "cpu")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(65, (4, 32), generator=gen)
    return model, optimizer, (x, torch.roll(x, -1, dims=1))


def _prediction(value, what: str) -> float:
    expect(_is_number(value) and math.isfinite(value),
           f"write your prediction first: set {what} to a number (a guess is fine; the experiment tells you)")
    return float(value)


def _reference_losses(steps: int) -> list[float]:
    from helpers.training import train_step

    model, optimizer, batch = fresh_setup()
    return [train_step(model, optimizer, [batch], grad_clip=1.0)[0].item() for _ in range(steps)]


@exercise("Exercise 1 (predict, then overfit one batch)")
def check_overfit_one_batch(overfit_one_batch: Callable, predicted_loss) -> str:
    """`overfit_one_batch(model, optimizer, batch, steps)`: train on the same batch `steps` times with
    train_step; return the list of its losses. The check compares the measured last loss with the prediction."""
    steps = 100
    predicted = _prediction(predicted_loss, "predicted_loss")
    model, optimizer, batch = fresh_setup()
    losses = overfit_one_batch(model, optimizer, batch, steps)
    expect(isinstance(losses, (list, tuple)) and len(losses) == steps,
           f"return the list of the {steps} losses, one per step (got {type(losses).__name__}"
           f"{f' of length {len(losses)}' if isinstance(losses, (list, tuple)) else ''})")
    losses = [float(v) for v in losses]
    want = _reference_losses(steps)
    if abs(losses[-1] - losses[0]) < 0.5:
        raise Hint(f"the loss hardly moves ({losses[0]:.2f} -> {losses[-1]:.2f}): call train_step(model, optimizer, "
                   "[batch]) at every step, on the batch you were given every time, so there is something to memorise")
    differ = next((i for i, (a, b) in enumerate(zip(losses, want)) if not math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4)), None)
    expect(differ is None,
           f"at step {differ} the loss is {losses[differ]:.4f}, but the same experiment gives {want[differ]:.4f}: train "
           "on the batch you were given every time (no new batches), with the optimizer you were given, grad_clip=1.0"
           if differ is not None else "")
    start, end = want[0], want[-1]
    verdict = ("your prediction was close" if abs(predicted - end) < max(0.15, 0.3 * end)
               else f"you predicted {predicted:.2f}")
    params = sum(p.numel() for p in model.parameters())
    return (f"from {start:.2f} (about ln 65 = {math.log(65):.2f}) to {end:.3f} in {steps} steps: {verdict}. "
            f"{params:,} parameters learn 128 characters by heart. A model that cannot drive one batch "
            "towards zero has a bug (misaligned targets, a missing optimizer step): try this first on new code")


@exercise("Exercise 2 (warm-up, then linear decay)")
def check_linear_schedule(lr_linear: Callable) -> str:
    """`lr_linear(step, learning_rate, min_lr, warmup_iters, decay_iters)`: linear warm-up, then a straight
    line down to min_lr at decay_iters, then min_lr."""
    lr, floor, warmup, decay = 1e-3, 1e-4, 10, 110
    got = [lr_linear(step, lr, floor, warmup, decay) for step in range(0, 130)]
    expect(all(_is_number(v) for v in got), f"lr_linear should return numbers, got {got[0]!r} at step 0")
    expect(got[0] > 0, "at step 0 the learning rate is 0, so the first step learns nothing: "
                       "warm up with learning_rate * (step + 1) / warmup_iters")
    expect(math.isclose(got[0], lr / warmup, rel_tol=1e-6),
           f"at step 0 expected learning_rate * 1 / warmup_iters = {lr / warmup:.3g}, got {got[0]:.3g}")
    expect(math.isclose(got[warmup - 1], lr, rel_tol=1e-6),
           f"the warm-up should reach learning_rate={lr} at step warmup_iters - 1 = {warmup - 1}, got {got[warmup - 1]:.3g}")
    quarter = warmup + (decay - warmup) // 4
    want_quarter = lr - (lr - floor) / 4
    cosine = floor + 0.5 * (1 + math.cos(math.pi / 4)) * (lr - floor)
    if math.isclose(got[quarter], cosine, rel_tol=1e-6):
        raise Hint("that is the cosine decay of the lesson; this exercise asks for a straight line from "
                   "learning_rate at warmup_iters to min_lr at decay_iters")
    expect(math.isclose(got[quarter], want_quarter, rel_tol=1e-6),
           f"a quarter of the way through the decay (step {quarter}) a straight line is at "
           f"learning_rate - (learning_rate - min_lr) / 4 = {want_quarter:.3g}, got {got[quarter]:.3g}")
    expect(all(math.isclose(v, floor, rel_tol=1e-6) for v in got[decay:]),
           f"from decay_iters={decay} on the learning rate should stay at min_lr={floor}, got {got[decay]:.3g} "
           f"at step {decay} and {got[-1]:.3g} at step {len(got) - 1}")
    return "the learning rate climbs for 10 steps, then falls in a straight line to the floor"


@exercise("Exercise 3 (clip by the global norm)")
def check_clip_global_norm(clip_global_norm: Callable) -> str:
    """`clip_global_norm(grads, max_norm)`: scale every gradient in place so that their global L2 norm is at most
    max_norm; return the norm before clipping, as torch.nn.utils.clip_grad_norm_ does."""
    gen = torch.Generator().manual_seed(8)
    for scale, max_norm in ((10.0, 1.0), (0.01, 1.0), (3.0, 0.5)):
        grads = [torch.randn(shape, generator=gen) * scale for shape in ((4, 3), (3,), (2, 2, 2))]
        reference = [g.clone().requires_grad_() for g in grads]
        for r, g in zip(reference, grads):
            r.grad = g.clone()
        want_norm = torch.nn.utils.clip_grad_norm_(reference, max_norm)
        per_tensor = [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]
        got_norm = clip_global_norm(grads, max_norm)
        expect(got_norm is not None, "return the total norm before clipping (it is what you would plot)")
        got_norm = float(got_norm)
        expect(math.isclose(got_norm, want_norm.item(), rel_tol=1e-4),
               f"the norm before clipping should be {want_norm.item():.4g} (the square root of the sum of squares of "
               f"every element of every gradient), got {got_norm:.4g}")
        if all(torch.allclose(g, p, atol=1e-6) for g, p in zip(grads, per_tensor)) and scale > 1:
            raise Hint("each gradient was clipped on its own; clip them together, by one factor "
                       "max_norm / total_norm, so that their direction is kept")
        for g, r in zip(grads, reference):
            if not torch.allclose(g, r.grad, atol=1e-5, rtol=1e-4):
                if scale < 1:
                    raise Hint("gradients whose norm is already below max_norm must stay unchanged")
                raise Hint("after clipping, the gradients should have global norm max_norm: multiply them in place "
                           "by max_norm / total_norm (g.mul_(factor))")
    return "one factor for all the gradients keeps the direction of the update"


def _reference_update(grad_clip: float) -> float:
    from helpers.training import train_step

    model, optimizer, batch = fresh_setup()
    before = [p.detach().clone() for p in model.parameters()]
    train_step(model, optimizer, [batch], grad_clip=grad_clip)
    return torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before))).item()


@exercise("Exercise 4 (predict, then measure: clipping under Adam)")
def check_clipped_update(first_update_size: Callable, predicted_ratio) -> str:
    """`first_update_size(model, optimizer, batch, grad_clip)`: take one train_step with that grad_clip and
    return the norm of the change of all the parameters (the update's length)."""
    predicted = _prediction(predicted_ratio, "predicted_ratio")
    sizes = {}
    for clip in (1.0, 0.01):
        model, optimizer, batch = fresh_setup()
        got = first_update_size(model, optimizer, batch, clip)
        expect(_is_number(got) or (isinstance(got, torch.Tensor) and got.numel() == 1),
               f"return the update's length as a number, got {type(got).__name__}")
        sizes[clip] = float(got)
        want = _reference_update(clip)
        if math.isclose(sizes[clip], 0.0, abs_tol=1e-12):
            raise Hint("the parameters did not change: compare copies taken *before* train_step "
                       "([p.detach().clone() for p in model.parameters()]) with the parameters after it")
        expect(math.isclose(sizes[clip], want, rel_tol=1e-3),
               f"with grad_clip={clip} the update's length is {want:.4g}, you measured {sizes[clip]:.4g}: take the "
               "square root of the sum of squared changes over every parameter, after one train_step")
    ratio = sizes[1.0] / sizes[0.01]
    verdict = ("your prediction was close" if abs(predicted - ratio) < 0.25 * ratio
               else f"you predicted {predicted:.3g}")
    return (f"clipping the gradient 100 times harder shrinks Adam's first step only {ratio:.2f} times: {verdict}. "
            "Adam divides each gradient by the root-mean-square of its own history, so the scale cancels; "
            "with plain SGD the step would have shrunk with the gradient")
