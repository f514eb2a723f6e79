"""Checkers for lesson 05 (the transformer block). Solutions: notebooks/solutions/05_transformer_block.ipynb."""

from __future__ import annotations

import torch

from helpers.attention import GPTConfig
from helpers.block import Block
from helpers.exercises import exercise, expect, expect_close, expect_shape


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
