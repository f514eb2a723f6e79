"""Checkers for lesson 05 (the transformer block). Solutions: notebooks/solutions/05_transformer_block.ipynb."""

from __future__ import annotations

import math

import torch

from helpers.attention import GPTConfig
from helpers.block import Block
from helpers.exercises import Hint, exercise, expect, expect_close, expect_shape
from helpers.layers import LayerNorm


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@exercise("Exercise 1 (count a block's parameters)")
def check_count_block_parameters(count_block_parameters) -> str:
    """Compare the learner's formula with the parameter count of real Blocks."""
    for n_embd, n_head in ((8, 2), (48, 3), (64, 4), (768, 12)):
        for bias in (True, False):
            config = GPTConfig(block_size=8, n_layer=1, n_head=n_head, n_embd=n_embd, bias=bias)
            want = _numel(Block(config))
            got = count_block_parameters(n_embd, bias)
            expect(isinstance(got, int) and not isinstance(got, bool),
                   f"return a whole number (int), got {type(got).__name__}")
            if got == want:
                continue
            where = f"with n_embd={n_embd}, bias={bias}: you count {got:,}, a Block has {want:,}"
            diff = want - got
            expect(diff != 4 * n_embd or not bias,
                   f"{where}. Missing 4·n_embd: the two LayerNorms have a weight and a bias of n_embd each")
            expect(diff != 2 * n_embd, f"{where}. Missing 2·n_embd: did you count both LayerNorms' weights?")
            expect(diff != 9 * n_embd or not bias,
                   f"{where}. Missing 9·n_embd: the biases of the Linear layers (3·n_embd + n_embd + 4·n_embd + n_embd)")
            expect(diff % (n_embd * n_embd) != 0 or diff == 0,
                   f"{where}. Off by a multiple of n_embd²: c_attn is n_embd × 3·n_embd, c_proj n_embd × n_embd, "
                   "c_fc n_embd × 4·n_embd and the MLP's c_proj 4·n_embd × n_embd")
            expect(False, f"{where}. Count each part on its own: 2 LayerNorms, c_attn, attn.c_proj, c_fc, mlp.c_proj")
    return "A block has 12·n_embd² + 13·n_embd parameters with biases, 12·n_embd² + 2·n_embd without"


def _random_block(seed: int = 0) -> Block:
    """A small block whose every parameter is random (so zeros cannot come from the initialisation)."""
    torch.manual_seed(seed)
    block = Block(GPTConfig(block_size=8, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.5)
    return block


@exercise("Exercise 2 (a block that starts as the identity)")
def check_zero_residual_branches(zero_residual_branches_) -> str:
    """The block must compute the identity afterwards, with only the two c_proj layers zeroed."""
    block = _random_block()
    before = {name: p.detach().clone() for name, p in block.named_parameters()}
    returned = zero_residual_branches_(block)
    expect(returned is None or returned is block, "change the block in place and return it (or nothing)")
    projections = ("attn.c_proj.", "mlp.c_proj.")
    for name, p in block.named_parameters():
        if name.startswith(projections):
            expect(torch.count_nonzero(p).item() == 0,
                   f"{name} is not all zero: set both the weight and the bias of attn.c_proj and mlp.c_proj to 0")
        else:
            expect(torch.equal(p.detach(), before[name]),
                   f"{name} changed: zero only the output projections (attn.c_proj, mlp.c_proj) and leave the rest alone")
    x = torch.randn(3, 8, 16, requires_grad=True)
    out = block(x)
    expect_close(out, x, "the block's output (it should equal its input)")
    out.pow(2).sum().backward()
    expect(block.attn.c_proj.weight.grad is not None and block.attn.c_proj.weight.grad.abs().sum() > 0,
           "no gradient reaches attn.c_proj.weight: keep it a trainable parameter (modify .data or use torch.no_grad())")
    return ("The block is the identity, yet its c_proj weights get a gradient, so training moves them away from zero. "
            "A zeroed c_attn would still leave the biases of c_proj and the whole MLP branch adding to x")


@exercise("Exercise 3 (the parallel block)")
def check_parallel_forward(parallel_forward) -> str:
    """Compare with x + attn(ln_1(x)) + mlp(ln_2(x)), and recognise typical mix-ups."""
    block = _random_block(seed=1).eval()
    x = torch.randn(2, 8, 16)
    with torch.no_grad():
        got = parallel_forward(block, x)
        want = x + block.attn(block.ln_1(x)) + block.mlp(block.ln_2(x))
        sequential = block(x)
        no_shortcut = block.attn(block.ln_1(x)) + block.mlp(block.ln_2(x))
        shared_ln = x + block.attn(block.ln_1(x)) + block.mlp(block.ln_1(x))
    expect_shape(got, tuple(want.shape), "parallel_forward(block, x)")
    close = lambda a, b: torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    expect(not close(got, sequential),
           "that is the sequential block, block(x): in the parallel form the MLP reads ln_2(x) of the block's "
           "input x, not of x + attn(...)")
    expect(not close(got, no_shortcut), "the shortcut is missing: add the input x to the two updates")
    expect(not close(got, shared_ln), "the MLP should read ln_2(x), not ln_1(x): keep both of the block's LayerNorms")
    expect_close(got, want, "parallel_forward(block, x)")
    return "Both branches read the same input, so on a GPU their matrix multiplies can run at once"


# ---- Exercise 4: predict, then measure: where the gradient trend comes from

DEPTH_CASES = ((6, True), (48, True), (48, False))  # (n_layer, read out through a final LayerNorm?)


def reference_gradient_norms(n_layer: int, final_ln: bool) -> list[float]:
    """The gradient norm of each block's parameters, first block first, in a residual stack of n_layer Blocks
    (width 64, 4 heads) at initialisation, read out through a LayerNorm or directly."""
    config = GPTConfig(block_size=32, n_layer=n_layer, n_head=4, n_embd=64)
    blocks = torch.nn.ModuleList([Block(config) for _ in range(n_layer)])
    readout = LayerNorm(config.n_embd) if final_ln else torch.nn.Identity()
    x = torch.randn(8, config.block_size, config.n_embd)
    probe = torch.randn_like(x)
    h = x
    for block in blocks:
        h = block(h)
    (readout(h) * probe).sum().backward()
    return [sum(p.grad.pow(2).sum() for p in block.parameters()).sqrt().item() for block in blocks]


def _norms(gradient_norms, n_layer: int, final_ln: bool) -> list[float]:
    call = f"gradient_norms({n_layer}, final_ln={final_ln})"
    got = gradient_norms(n_layer, final_ln)
    if isinstance(got, torch.Tensor):
        got = got.detach().flatten().tolist()
    expect(isinstance(got, (list, tuple)) and len(got) == n_layer,
           f"{call} should return a list of {n_layer} numbers, one per block, got {type(got).__name__}"
           + (f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""))
    got = [float(value) for value in got]
    expect(all(math.isfinite(value) and value > 0 for value in got), f"{call} holds a zero or non-finite norm: did "
           "the gradient reach every block? (backpropagate once, then read p.grad of each block's parameters)")
    return got


@exercise("Exercise 4 (predict, then measure: depth, ln_f and the gradients)")
def check_gradient_norms(prediction, gradient_norms) -> str:
    """`gradient_norms(n_layer, final_ln)` measures each block's gradient norm in a residual stack; the learner
    predicts the ratio of the first block's to the last block's for 48 blocks without a final LayerNorm."""
    expect(prediction is not None and prediction is not Ellipsis,
           "not attempted yet: first write your prediction (a number: the ratio for 48 blocks without ln_f) in "
           "`prediction`, then write the experiment")
    expect(isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and math.isfinite(prediction),
           f"`prediction` should be a number (a ratio of two gradient norms), got {prediction!r}")
    ratios = {}
    for n_layer, final_ln in DEPTH_CASES:
        torch.manual_seed(0)
        got = _norms(gradient_norms, n_layer, final_ln)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            want = reference_gradient_norms(n_layer, final_ln)
        case = f"gradient_norms({n_layer}, final_ln={final_ln})"
        if abs(got[0] / want[-1] - 1) < 0.3 and abs(got[-1] / want[0] - 1) < 0.3 and n_layer > 6:
            raise Hint(f"{case} runs from the last block to the first: put the first block's norm first")
        expect(abs(got[-1] / want[-1] - 1) < 0.3,
               f"{case}: the last block's gradient norm is {got[-1]:.3g}, the reference's {want[-1]:.3g} (random "
               "weights move it by about 10%): run x through the blocks with their residual connections "
               "(block(h)), read out through a LayerNorm only when final_ln, and backpropagate (readout * probe).sum()")
        expect(abs((got[0] / got[-1]) / (want[0] / want[-1]) - 1) < 0.3,
               f"{case}: the first block's norm over the last's is {got[0] / got[-1]:.3g}, the reference's "
               f"{want[0] / want[-1]:.3g}; measure the norm of all of a block's parameter gradients together")
        ratios[n_layer, final_ln] = want[0] / want[-1]
    without_ln = ratios[48, False]
    verdict = ("Your prediction was right (within 20%)." if abs(prediction - without_ln) <= 0.2 * without_ln
               else f"Your prediction was too {'high' if prediction > without_ln else 'low'}.")
    return (f"the first block's gradient is {ratios[6, True]:.2f} times the last one's with 6 blocks and "
            f"{ratios[48, True]:.2f} times with 48; without ln_f it is {without_ln:.2f} times (you predicted "
            f"{prediction:.3g}). {verdict} Without ln_f every norm changes, but all by about the same factor, so the "
            "ratio stays: ln_f does not tilt the profile. The tilt grows with depth, as the gradient flowing down "
            "the residual stream collects one more block's contribution at every layer")
