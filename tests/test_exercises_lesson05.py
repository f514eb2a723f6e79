"""Lesson 05's checkers pass the solutions and fail typical wrong answers with a useful hint."""

import torch

from helpers.attention import GPTConfig
from helpers.block import Block
from helpers.exercises import lesson05 as ex

# --- exercise 1 ---


def count_block_parameters(n_embd, bias=True):
    return 12 * n_embd**2 + (13 * n_embd if bias else 2 * n_embd)


def test_count_passes_solution():
    assert ex.check_count_block_parameters(count_block_parameters)


def test_count_hints():
    no_layernorms = lambda n, bias=True: count_block_parameters(n, bias) - (4 * n if bias else 2 * n)
    result = ex.check_count_block_parameters(no_layernorms)
    assert not result and "LayerNorm" in result.message
    no_linear_biases = lambda n, bias=True: count_block_parameters(n, bias) - (9 * n if bias else 0)
    result = ex.check_count_block_parameters(no_linear_biases)
    assert not result and "biases of the Linear layers" in result.message
    mlp_too_narrow = lambda n, bias=True: count_block_parameters(n, bias) - 4 * n * n
    result = ex.check_count_block_parameters(mlp_too_narrow)
    assert not result and "n_embd²" in result.message
    assert "not attempted" in ex.check_count_block_parameters(lambda n, bias=True: (_ for _ in ()).throw(NotImplementedError)).message
    assert "int" in ex.check_count_block_parameters(lambda n, bias=True: float(count_block_parameters(n, bias))).message


# --- exercise 2 ---


def zero_residual_branches_(block):
    with torch.no_grad():
        for layer in (block.attn.c_proj, block.mlp.c_proj):
            layer.weight.zero_()
            layer.bias.zero_()
    return block


def test_zero_passes_solution():
    assert ex.check_zero_residual_branches(zero_residual_branches_)


def test_zero_hints():
    def weights_only(block):
        with torch.no_grad():
            block.attn.c_proj.weight.zero_()
            block.mlp.c_proj.weight.zero_()

    result = ex.check_zero_residual_branches(weights_only)
    assert not result and "bias" in result.message

    def everything(block):
        with torch.no_grad():
            for p in block.parameters():
                p.zero_()

    result = ex.check_zero_residual_branches(everything)
    assert not result and "leave the rest alone" in result.message

    def input_side(block):
        with torch.no_grad():
            for layer in (block.attn.c_attn, block.mlp.c_fc):
                layer.weight.zero_()
                layer.bias.zero_()

    result = ex.check_zero_residual_branches(input_side)
    assert not result and "c_proj" in result.message

    def frozen(block):
        zero_residual_branches_(block)
        block.attn.c_proj.weight.requires_grad_(False)

    result = ex.check_zero_residual_branches(frozen)
    assert not result and "gradient" in result.message


# --- exercise 3 ---


def parallel_forward(block, x):
    return x + block.attn(block.ln_1(x)) + block.mlp(block.ln_2(x))


def test_parallel_passes_solution():
    assert ex.check_parallel_forward(parallel_forward)


def test_parallel_hints():
    result = ex.check_parallel_forward(lambda block, x: block(x))
    assert not result and "sequential" in result.message
    result = ex.check_parallel_forward(lambda block, x: block.attn(block.ln_1(x)) + block.mlp(block.ln_2(x)))
    assert not result and "shortcut" in result.message
    result = ex.check_parallel_forward(lambda block, x: x + block.attn(block.ln_1(x)) + block.mlp(block.ln_1(x)))
    assert not result and "ln_2" in result.message
    result = ex.check_parallel_forward(lambda block, x: x + block.attn(x) + block.mlp(x))
    assert not result and "off by" in result.message
    result = ex.check_parallel_forward(lambda block, x: x[:, -1])
    assert not result and "shape" in result.message


# ---- Exercise 4: predict, then measure: depth, ln_f and the gradients


def gradient_norms_like_the_lesson(n_layer, final_ln, residual=True):
    """A learner's likely solution: the stack built in another order than the reference (other random numbers)."""
    config = GPTConfig(block_size=32, n_layer=n_layer, n_head=4, n_embd=64)
    x = torch.randn(8, 32, 64)
    probe = torch.randn_like(x)
    blocks = torch.nn.ModuleList([Block(config) for _ in range(n_layer)])
    h = x
    for block in blocks:
        h = block(h) if residual else block.mlp(block.ln_2(block.attn(block.ln_1(h))))
    out = torch.nn.functional.layer_norm(h, (64,)) if final_ln else h
    (out * probe).sum().backward()
    return [torch.cat([p.grad.flatten() for p in block.parameters()]).norm().item() for block in blocks]


def test_gradient_norms_passes_a_solution_with_other_random_numbers_whatever_the_prediction():
    right = ex.check_gradient_norms(2.0, gradient_norms_like_the_lesson)
    assert right and "Your prediction was right" in right.message and "does not tilt" in right.message
    wrong = ex.check_gradient_norms(0.5, lambda n, f: torch.tensor(gradient_norms_like_the_lesson(n, f)))
    assert wrong and "Your prediction was too low" in wrong.message


def test_gradient_norms_upside_down_gets_hint():
    result = ex.check_gradient_norms(2.0, lambda n_layer, final_ln: gradient_norms_like_the_lesson(n_layer, final_ln)[::-1])
    assert not result and "from the last block to the first" in result.message


def test_gradient_norms_without_residual_connections_fails():
    result = ex.check_gradient_norms(2.0, lambda n, f: gradient_norms_like_the_lesson(n, f, residual=False))
    assert not result and "residual connections" in result.message


def test_gradient_norms_ignoring_final_ln_fails():
    result = ex.check_gradient_norms(2.0, lambda n, f: gradient_norms_like_the_lesson(n, True))
    assert not result and "LayerNorm only when final_ln" in result.message


def test_gradient_norms_needs_a_numeric_prediction_and_one_norm_per_block():
    assert "not attempted yet" in ex.check_gradient_norms(None, ex.reference_gradient_norms).message
    result = ex.check_gradient_norms("about 2", ex.reference_gradient_norms)
    assert not result and "should be a number" in result.message
    result = ex.check_gradient_norms(2.0, lambda n, f: ex.reference_gradient_norms(n, f)[:-1])
    assert not result and "one per block" in result.message
