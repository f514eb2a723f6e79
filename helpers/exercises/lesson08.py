"""Exercise checkers for lesson 08 (training).

    from helpers.exercises import lesson08 as ex
    ex.check_bits_per_char(bits_per_char)

Solutions: notebooks/solutions/08_training.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from helpers.exercises import Hint, exercise, expect


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@exercise("Exercise 1 (bits per character)")
def check_bits_per_char(bits_per_char: Callable) -> str:
    """`bits_per_char(loss_per_token, n_tokens, n_chars)`: a loss in nats per token as bits per character."""
    cases = ((math.log(65), 1000, 1000), (3.5, 300, 1000), (1.47, 10, 10), (2.0, 36_000, 111_000))
    for loss, n_tokens, n_chars in cases:
        got = bits_per_char(loss, n_tokens, n_chars)
        call = f"bits_per_char({loss:.4g}, {n_tokens}, {n_chars})"
        expect(_is_number(got), f"{call} should return a float, got {got!r}")
        want = loss / math.log(2) * n_tokens / n_chars
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        if math.isclose(got, loss * n_tokens / n_chars, rel_tol=1e-6):
            raise Hint(f"{call}: the loss is in nats (natural log); divide by ln 2 to get bits")
        if math.isclose(got, loss / math.log(2) * n_chars / n_tokens, rel_tol=1e-6):
            raise Hint(f"{call}: the ratio is upside down: total bits = loss per token · n_tokens, shared by n_chars")
        if math.isclose(got, loss / math.log(2), rel_tol=1e-6):
            raise Hint(f"{call}: a token can hold several characters: multiply by n_tokens / n_chars")
        if math.isclose(got, loss * math.log(2) * n_tokens / n_chars, rel_tol=1e-6):
            raise Hint(f"{call}: to turn nats into bits divide by ln 2 (multiplying goes the other way)")
        raise Hint(f"{call} returned {got:.6g}, expected {want:.6g}")
    return "a uniform guess over 65 characters costs log2(65) ≈ 6.02 bits per character"


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


@exercise("Exercise 4 (gradient accumulation)")
def check_accumulate(accumulate: Callable) -> str:
    """`accumulate(model, x, y, k)`: the gradients of the mean loss over (x, y) computed in k micro-batches."""
    from helpers.attention import GPTConfig
    from helpers.model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    x, y = torch.randint(11, (8, 8)), torch.randint(11, (8, 8))
    model.zero_grad()
    model(x, y)[1].backward()
    want = [p.grad.clone() for p in model.parameters()]
    for k in (2, 4):
        model.zero_grad()
        accumulate(model, x, y, k)
        got = [p.grad for p in model.parameters()]
        expect(all(g is not None for g in got), f"with k={k} some parameters have no gradient: call backward()")
        if all(torch.allclose(g, w * k, atol=1e-5) for g, w in zip(got, want)):
            raise Hint(f"with k={k} the gradients are k times too large: divide each micro-batch's loss by k "
                       "(backward() adds gradients up, and you want their mean)")
        got = [g.clone() for g in got]
        model.zero_grad()
        (model(x.chunk(k)[-1], y.chunk(k)[-1])[1] / k).backward()
        last_only = [p.grad.clone() for p in model.parameters()]
        if all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, last_only)):
            raise Hint(f"with k={k} only one micro-batch's gradient is left: do not zero the gradients between "
                       "micro-batches, backward() is meant to add them up")
        expect(all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want)),
               f"with k={k} the gradients differ from one batch of {len(x)}: split x and y into k equal parts, "
               "and backward() each part's loss / k")
    return "k micro-batches of loss / k give the gradient of one big batch"
