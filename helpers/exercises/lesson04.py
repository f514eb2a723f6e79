"""Exercise checkers for lesson 04 (LayerNorm and GELU). Solutions: notebooks/solutions/04_layernorm_gelu.ipynb."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import GPTConfig
from helpers.exercises import Hint, exercise, expect, expect_close, expect_shape
from helpers.layers import MLP, LayerNorm


def _close(got, want, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    got_t, want_t = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    return got_t.shape == want_t.shape and torch.allclose(got_t, want_t, atol=atol, rtol=rtol)


def _random_pair(n_in: int, n_out: int, ln_bias: bool, linear_bias: bool, seed: int) -> tuple[LayerNorm, nn.Linear]:
    """A LayerNorm with γ and β away from 1 and 0, and the Linear that reads it, in float64."""
    generator = torch.Generator().manual_seed(seed)
    ln, linear = LayerNorm(n_in, bias=ln_bias).double(), nn.Linear(n_in, n_out, bias=linear_bias).double()
    with torch.no_grad():
        for param in [*ln.parameters(), *linear.parameters()]:
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float64))
    return ln, linear


def _wrong_folds(ln: LayerNorm, linear: nn.Linear) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of typical wrong folds, and the hint each one deserves."""
    w, gamma = linear.weight.detach(), ln.weight.detach()
    beta = ln.bias.detach() if ln.bias is not None else torch.zeros_like(gamma)
    b = linear.bias.detach() if linear.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    folds = {
        "γ scales the Linear's *input* features, so it multiplies the columns of W (W * γ), not its rows":
            ((w * gamma[:, None]) if w.shape[0] == w.shape[1] else None, w @ beta + b),
        "β is added before the Linear, so it goes through W too: the new bias is W @ β + b, not β + b":
            (w * gamma, (beta + b) if w.shape[0] == w.shape[1] else None),
        "you left β out: the Linear sees γ·x̂ + β, and W @ β is part of the new bias": (w * gamma, b),
        "you left out the Linear's own bias b: the new bias is W @ β + b": (w * gamma, w @ beta),
    }
    return {hint: fold for hint, fold in folds.items() if fold[0] is not None and fold[1] is not None}


@exercise("Exercise 1 (fold γ and β into the next Linear)")
def check_fold_into_linear(fold_into_linear: Callable) -> str:
    """`fold_into_linear(ln, linear)` returns an nn.Linear `folded` with folded(x̂) == linear(ln(x)), where
    x̂ = F.layer_norm(x, (C,)) is x normalised without γ and β."""
    cases = [(6, 6, True, True), (6, 10, True, True), (6, 10, True, False), (6, 4, False, True), (5, 5, False, False)]
    for seed, (n_in, n_out, ln_bias, linear_bias) in enumerate(cases):
        ln, linear = _random_pair(n_in, n_out, ln_bias, linear_bias, seed)
        x = torch.randn(4, 3, n_in, generator=torch.Generator().manual_seed(10 + seed), dtype=torch.float64)
        x_hat = F.layer_norm(x, (n_in,))
        with torch.no_grad():
            want = linear(ln(x))
            wrong = {hint: F.linear(x_hat, weight, bias) for hint, (weight, bias) in _wrong_folds(ln, linear).items()}
            wrong = {hint: output for hint, output in wrong.items() if not _close(output, want)}  # not wrong here
            folded = fold_into_linear(ln, linear)
            case = (f"LayerNorm({n_in}, bias={ln_bias}) then nn.Linear({n_in}, {n_out}, bias={linear_bias})")
            expect(isinstance(folded, nn.Linear), f"return an nn.Linear, got {type(folded).__name__}")
            expect((folded.in_features, folded.out_features) == (n_in, n_out),
                   f"for {case} the folded Linear maps {folded.in_features} -> {folded.out_features} features, "
                   f"expected {n_in} -> {n_out}: the same shape as `linear`")
            got = folded.double()(x_hat)
        for hint, output in wrong.items():
            expect(not _close(got, output), f"for {case}: {hint}")
        expect_close(got, want, f"for {case}, folded(x̂), which should equal linear(ln(x)),", atol=1e-8, rtol=1e-6)
    return ("a LayerNorm's γ and β are a scale and a shift of each feature, and the Linear that reads them can absorb "
            "both: W·diag(γ) and W·β + b. They add nothing a Linear after them could not do; they matter while "
            "training, where each feature's scale is learned on its own")


def _standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


@exercise("Exercise 2 (the derivative of GELU)")
def check_gelu_derivative(gelu_derivative: Callable) -> str:
    """`gelu_derivative(x)` is d/dx [x·Φ(x)] for the exact GELU, elementwise."""
    x = torch.linspace(-5.0, 5.0, 101, dtype=torch.float64, requires_grad=True)
    F.gelu(x).sum().backward()
    want = x.grad
    x = x.detach()
    got = gelu_derivative(x.clone())
    expect_shape(got, tuple(x.shape), "gelu_derivative(x)")
    expect(not _close(got, _standard_normal_cdf(x), atol=1e-4),
           "that is Φ(x) alone, the derivative of x·Φ(x) with Φ held fixed: GELU is a product, "
           "so the product rule adds a second term, x·φ(x), where φ(x) = exp(-x²/2) / sqrt(2π)")
    expect(not _close(got, (x > 0).double(), atol=1e-4),
           "that is ReLU's derivative (a step); GELU's derivative is smooth: Φ(x) + x·φ(x)")
    expect_close(got, want, "gelu_derivative(x) on [-5, 5]", atol=1e-4, rtol=1e-3)
    dip = x[int(got.argmin())].item()
    return f"matches autograd; the slope dips below 0 (to {got.min().item():.3f} at x ≈ {dip:.1f}), unlike ReLU's"


STACK_DEPTH, STACK_WIDTH, STACK_INPUTS = 8, 64, 256  # the deep stack of exercise 3
STACK_CHOICES = {
    "A": "about as large as after the first MLP (within 10 times)",
    "B": "more than 1,000 times smaller",
    "C": "more than 1,000 times larger",
}


def reference_stack(n_layer: int, n_embd: int, layernorm: bool) -> nn.Sequential:
    """n_layer of lesson 04's MLPs in a row, each reading a LayerNorm of its input when layernorm is True."""
    config = GPTConfig(n_embd=n_embd, n_head=1)
    return nn.Sequential(*[nn.Sequential(LayerNorm(n_embd), MLP(config)) if layernorm else MLP(config)
                           for _ in range(n_layer)])


def signal(x: torch.Tensor) -> float:
    """How much the vectors of a batch differ from one input to the next: the std over the batch, averaged."""
    return x.std(dim=0).mean().item()


def _signals(stack: nn.Module, x: torch.Tensor) -> list[float]:
    """The signal after each MLP of the stack, in order (read with forward hooks)."""
    found: list[float] = []
    hooks = [m.register_forward_hook(lambda m, i, out: found.append(signal(out))) for m in stack.modules()
             if isinstance(m, MLP)]
    try:
        with torch.no_grad():
            stack(x)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def _input_gradient(stack: nn.Module, x: torch.Tensor) -> float:
    """The mean size of the gradient that reaches the input when the output is summed."""
    x = x.clone().requires_grad_()
    stack(x).sum().backward()
    return x.grad.abs().mean().item()


def _built(deep_stack: Callable, layernorm: bool) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # the same weights as the reference's, the learner's RNG untouched
        torch.manual_seed(0)
        stack = deep_stack(STACK_DEPTH, STACK_WIDTH, layernorm)
    call = f"deep_stack({STACK_DEPTH}, {STACK_WIDTH}, layernorm={layernorm})"
    expect(isinstance(stack, nn.Module), f"{call} should return an nn.Module (nn.Sequential works), "
           f"got {type(stack).__name__}")
    n_mlps = sum(isinstance(m, MLP) for m in stack.modules())
    expect(n_mlps == STACK_DEPTH, f"{call} holds {n_mlps} MLPs, expected {STACK_DEPTH} (this lesson's MLP)")
    n_norms = sum(isinstance(m, (LayerNorm, nn.LayerNorm)) for m in stack.modules())
    expect(n_norms == (STACK_DEPTH if layernorm else 0),
           f"{call} holds {n_norms} LayerNorms, expected {STACK_DEPTH if layernorm else 0}: "
           + ("one before each MLP" if layernorm else "none without layernorm"))
    return stack


@exercise("Exercise 3 (predict, then measure: a deep stack)")
def check_deep_stack(prediction, deep_stack: Callable) -> str:
    """`deep_stack(n_layer, n_embd, layernorm)` chains n_layer MLPs (no residual connections), each reading a
    LayerNorm of its input when layernorm is True. The learner predicts what happens to the signal without one."""
    expect(prediction is not None and prediction is not Ellipsis,
           'not attempted yet: first write your prediction ("A", "B" or "C") in `prediction`, then build the stack')
    choice = str(prediction).strip().upper()
    expect(choice in STACK_CHOICES, f'`prediction` should be "A", "B" or "C", got {prediction!r}')
    x = torch.randn(STACK_INPUTS, STACK_WIDTH, generator=torch.Generator().manual_seed(1))
    reference, gradients = {}, {}
    for layernorm in (False, True):
        stack = _built(deep_stack, layernorm)
        with torch.no_grad():
            out = stack(x.clone())
        expect_shape(out, (STACK_INPUTS, STACK_WIDTH), f"the output of deep_stack(..., layernorm={layernorm})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            ideal = reference_stack(STACK_DEPTH, STACK_WIDTH, layernorm)
        reference[layernorm] = _signals(ideal, x.clone())
        gradients[layernorm] = _input_gradient(ideal, x)
        got, want = signal(out), reference[layernorm][-1]
        if not got > 0 or abs(math.log10(got / want)) > 0.5:  # the same stack, up to its random weights
            if layernorm and torch.allclose(out.std(dim=-1, correction=0), torch.ones(len(out)), atol=1e-2):
                raise Hint("the output is normalised: the LayerNorm goes *before* each MLP, where it normalises "
                           "the MLP's input (GPT-2's ln_1 and ln_2 sit at the input of their sub-blocks)")
            if not layernorm and got > 0.01:
                raise Hint("without LayerNorm your stack keeps its signal: chain the MLPs one after the other, "
                           "h = mlp(h), with no residual connection (h + mlp(h) comes in lesson 05)")
            raise Hint(f"with layernorm={layernorm} the signal after the last MLP is {got:.3g}, but {want:.3g} in the "
                       "reference stack: chain the MLPs, each reading a LayerNorm of its input when layernorm is True")
    first, last = reference[False][0], reference[False][-1]
    actual = "B" if last < first / 1000 else "C" if last > first * 1000 else "A"
    per_layer = (last / first) ** (1 / (STACK_DEPTH - 1))
    verdict = "Your prediction was right." if choice == actual else f"Your prediction was {choice}, the answer {actual}."
    return (f"without LayerNorm the signal went from {first:.2g} after the first MLP to {last:.2g} after the "
            f"{STACK_DEPTH}th: {STACK_CHOICES[actual]}. {verdict} With PyTorch's default initialisation each MLP "
            f"multiplies the size of what varies in its input by about {per_layer:.2f}, so depth multiplies that "
            f"factor again and again. The gradient that reaches the input shrinks the same way ({gradients[False]:.1e}"
            f" against {gradients[True]:.2g} with LayerNorm), so the first layers would hardly learn. With a "
            f"LayerNorm before each MLP the signal ends at {reference[True][-1]:.2f}: each one sets the scale back to "
            "1, whatever came before")
