"""Exercise checkers for lesson 07 (counting parameters, memory and FLOPs).

    from helpers.exercises import lesson07 as ex
    ex.check_block_param_count(block_param_count)

Solutions: notebooks/solutions/07_parameter_counting.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helpers.attention import GPTConfig
from helpers.exercises import Hint, exercise, expect
from helpers.model import preset


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numel(config: GPTConfig, what: str) -> int:
    """Parameters of a real Block or GPT, built on the meta device (no memory)."""
    from helpers.block import Block
    from helpers.model import GPT

    with torch.device("meta"):
        module = Block(config) if what == "block" else GPT(config)
    return sum(p.numel() for p in module.parameters())


@exercise("Exercise 1 (count one block by hand)")
def check_block_param_count(block_param_count: Callable) -> str:
    """`block_param_count(n_embd, bias)` equals the parameter count of Block(GPTConfig(n_embd, n_head=1, bias))."""
    for n_embd, bias in ((768, True), (768, False), (64, True), (5, False)):
        got = block_param_count(n_embd, bias)
        call = f"block_param_count({n_embd}, bias={bias})"
        expect(_is_int(got), f"{call} should return an int, got {got!r}")
        want = _numel(GPTConfig(n_embd=n_embd, n_head=1, bias=bias), "block")
        if got == want:
            continue
        d, b = n_embd, int(bias)
        attn, mlp, ln = 4 * d * d + 4 * d * b, 8 * d * d + 5 * d * b, d + d * b
        if got == attn + mlp:
            raise Hint(f"{call}: you counted attention and MLP but not the two LayerNorms (ln_1, ln_2), "
                       f"each with {ln} parameters here")
        if got in (attn + mlp + 2 * d, attn + mlp + d):
            raise Hint(f"{call}: a LayerNorm has a gain per channel and, with bias=True, a shift per channel: "
                       "2·n_embd each, and there are two of them")
        if bias and got == 12 * d * d + 2 * d:
            raise Hint(f"{call}: with bias=True every Linear has one bias per output: 3d + d in attention, 4d + d in the MLP")
        if not bias and got == 12 * d * d + 13 * d:
            raise Hint(f"{call}: with bias=False the Linears have no bias and the LayerNorms no shift (β)")
        if got == (2 * d * d + 2 * d * b) + mlp + 2 * ln:
            raise Hint(f"{call}: c_attn makes queries, keys and values at once, so it maps n_embd -> 3·n_embd")
        if got == attn + (2 * d * d + 2 * d * b) + 2 * ln:
            raise Hint(f"{call}: the MLP is four times wider inside: c_fc maps n_embd -> 4·n_embd and "
                       "c_proj 4·n_embd -> n_embd")
        raise Hint(f"{call} returned {got:,}, expected {want:,}: add attention (c_attn, c_proj), "
                   "the MLP (c_fc, c_proj) and two LayerNorms, weights and (with bias) biases")
    return f"one GPT-2 small block holds {_numel(GPTConfig(), 'block'):,} parameters, about 12·768²"


def _fp16_bytes(config: GPTConfig) -> int:
    return 2 * _numel(config, "gpt")


@exercise("Exercise 2 (fp16 memory of the weights)")
def check_fp16_weight_bytes(fp16_weight_bytes: Callable) -> str:
    """`fp16_weight_bytes(config)` is the bytes of GPT(config)'s weights (tied head) stored in fp16."""
    medium = preset("gpt2-medium")
    cases = [("gpt2-medium", medium),
             ("shakespeare-char", preset("shakespeare-char")),
             ("gpt2-medium without biases", preset("gpt2-medium", bias=False)),
             ("a 2-layer toy", GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=8))]
    for label, config in cases:
        got = fp16_weight_bytes(config)
        expect(_is_int(got) or isinstance(got, float), f"for {label}: return a number of bytes, got {got!r}")
        want = _fp16_bytes(config)
        if got == want:
            continue
        n = want // 2
        head = config.vocab_size * config.n_embd
        if got == 4 * n:
            raise Hint(f"for {label}: you used 4 bytes per parameter, which is fp32; fp16 takes 2")
        if got == n:
            raise Hint(f"for {label}: that is the number of parameters; multiply by 2 bytes for fp16")
        if got == 2 * (n + head):
            raise Hint(f"for {label}: you counted lm_head separately, but it is tied to wte (the same tensor), "
                       "so it adds nothing")
        if got == 2 * (n - config.block_size * config.n_embd):
            raise Hint(f"for {label}: you left out the position embeddings wpe (block_size·n_embd)")
        if abs(got - 2 * n / 2**30) < 0.01 or abs(got - 2 * n / 1e9) < 0.01:
            raise Hint(f"for {label}: return bytes, not GB")
        raise Hint(f"for {label}: got {got:,} bytes, expected {want:,}: add wte, wpe, n_layer blocks and ln_f, "
                   "then multiply by 2 bytes")
    return f"gpt2-medium's weights take {_fp16_bytes(medium) / 1e9:.2f} GB in fp16 ({_fp16_bytes(medium) / 2**30:.2f} GiB)"


@exercise("Exercise 3 (training FLOPs per token)")
def check_training_flops_per_token(training_flops_per_token: Callable) -> str:
    """`training_flops_per_token(n_params, n_layer, n_embd, seq_len)` is 6·N + 12·n_layer·n_embd·seq_len."""
    from helpers.counting import flops_params, flops_per_token

    gpt2 = preset("gpt2")
    cases = [(gpt2, 1024), (gpt2, 128), (preset("shakespeare-char"), 256), (GPTConfig(n_layer=3), 7)]
    for config, seq_len in cases:
        n, L, d = flops_params(config), config.n_layer, config.n_embd
        call = f"training_flops_per_token({n}, {L}, {d}, {seq_len})"
        got = training_flops_per_token(n, L, d, seq_len)
        expect(_is_int(got) or isinstance(got, float), f"{call} should return a number, got {got!r}")
        want = flops_per_token(config, seq_len)
        if got == want:
            continue
        attention = 12 * L * d * seq_len
        if got == 6 * n:
            raise Hint(f"{call}: 6N counts the weights, but attention also multiplies activations by "
                       "activations (q·kᵀ and weights·v): add 12·n_layer·n_embd·seq_len")
        if got in (2 * n + attention // 3, 2 * n):
            raise Hint(f"{call}: that is the forward pass only; the backward pass costs twice the forward, "
                       "so multiply by 3: 6N + 12·L·d·T")
        if got in (6 * n + attention // 2, 6 * n + attention // 3, 6 * n + 2 * attention):
            raise Hint(f"{call}: the attention term is 12·n_layer·n_embd·seq_len: 2·T·d FLOPs for q·kᵀ plus 2·T·d "
                       "for the weighted values, per layer, times 3 for forward + backward")
        raise Hint(f"{call} returned {got:,}, expected {want:,}: 6·N + 12·n_layer·n_embd·seq_len")
    per_token = flops_per_token(gpt2)
    return f"GPT-2 small costs {per_token / 1e9:.2f} GFLOPs per training token at T = 1024"
