"""Exercise checkers for lesson 07 (counting parameters, memory and FLOPs).

    from helpers.exercises import lesson07 as ex
    ex.check_flops_growth(prediction, flops_per_token_at)

Solutions: notebooks/solutions/07_parameter_counting.ipynb.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from helpers.attention import GPTConfig
from helpers.exercises import Hint, exercise, expect
from helpers.model import preset


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- Exercise 1: predict, then measure: FLOPs per token as the context grows

FLOP_LENGTHS = (64, 256, 1024)


def flop_config(seq_len: int) -> GPTConfig:
    """The small model of exercise 1 at a context of seq_len."""
    return GPTConfig(vocab_size=65, block_size=seq_len, n_layer=2, n_head=4, n_embd=64)


@functools.lru_cache(maxsize=4)
def reference_flops_per_token(seq_len: int, batch_size: int = 2) -> float:
    """FLOPs of one forward + backward pass of GPT(flop_config(seq_len)), counted by PyTorch, per token."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from helpers.model import GPT

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = flop_config(seq_len)
        model = GPT(config)
        idx = torch.randint(0, config.vocab_size, (batch_size, seq_len))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, targets=idx)
        loss.backward()
    return counter.get_total_flops() / idx.numel()


@exercise("Exercise 1 (predict, then measure: FLOPs per token as the context grows)")
def check_flops_growth(prediction, flops_per_token_at: Callable) -> str:
    """`flops_per_token_at(seq_len)` measures the training FLOPs per token of flop_config(seq_len); the learner
    predicts how many times more a token costs at a context of 1024 than at 64."""
    from helpers.counting import flops_per_token

    expect(prediction is not None and prediction is not Ellipsis,
           "not attempted yet: first write your prediction (a number: how many times more FLOPs per token at "
           "T=1024 than at T=64) in `prediction`, then the measurement")
    expect(isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and math.isfinite(prediction)
           and prediction > 0, f"`prediction` should be a positive number (a ratio), got {prediction!r}")
    measured = {}
    for seq_len in FLOP_LENGTHS:
        got = flops_per_token_at(seq_len)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool),
               f"flops_per_token_at({seq_len}) should return a number, got {type(got).__name__}")
        want = reference_flops_per_token(seq_len)
        if math.isclose(got, want * seq_len * 2, rel_tol=1e-3):
            raise Hint(f"flops_per_token_at({seq_len}) is the FLOPs of the whole batch; divide by the number of "
                       "tokens in it (batch size × seq_len)")
        measured[seq_len] = float(got)
    if measured[1024] < 1.05 * measured[64]:
        raise Hint("your measurement hardly grows with the context: the counter did not see attention. On the CPU "
                   "SDPA runs a fused kernel the counter does not know; measure under sdpa_kernel(SDPBackend.MATH), as "
                   "section 8 does")
    for seq_len, got in measured.items():
        want = reference_flops_per_token(seq_len)
        expect(math.isclose(got, want, rel_tol=0.01),
               f"flops_per_token_at({seq_len}) = {got:,.0f}, but PyTorch counts {want:,.0f} FLOPs per token for one "
               f"forward and backward pass of GPT(GPTConfig(vocab_size=65, block_size={seq_len}, n_layer=2, n_head=4, "
               "n_embd=64)); measure both passes, per token")
    ratio = reference_flops_per_token(1024) / reference_flops_per_token(64)
    formula = flops_per_token(flop_config(1024)) / flops_per_token(flop_config(64))
    attention = 12 * 2 * 64 * 1024 / flops_per_token(flop_config(1024))
    verdict = ("Your prediction was right (within 20%)." if abs(prediction - ratio) <= 0.2 * ratio
               else f"Your prediction was too {'high' if prediction > ratio else 'low'}.")
    return (f"a token costs {reference_flops_per_token(64):,.0f} FLOPs at T=64 and {reference_flops_per_token(1024):,.0f}"
            f" at T=1024: {ratio:.2f} times more (the formula 6N + 12·L·d·T says {formula:.2f}). You predicted "
            f"{prediction:.3g}. {verdict} Per token the cost grows linearly with T, not with T²: a token's query meets "
            f"T keys. 6N does not change, so at T=1024 attention's share of this small model's FLOPs is {attention:.0%}")


# ---- Exercise 2: the vocabulary, from a reported size


@exercise("Exercise 2 (the vocabulary, from a reported size)")
def check_vocab_size_from_count(vocab_size_from_count: Callable) -> str:
    """`vocab_size_from_count(total, config, tied)` is the vocab_size that makes GPT(config) hold `total`
    parameters (config.vocab_size is a placeholder)."""
    from helpers.counting import count_params

    cases = [("gpt2", preset("gpt2"), True), ("shakespeare-char", preset("shakespeare-char"), True),
             ("an untied model without biases", GPTConfig(vocab_size=32000, block_size=512, n_layer=8, n_head=8,
                                                          n_embd=512, bias=False), False),
             ("a tiny model", GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=2, n_embd=4), True)]
    for label, config, tied in cases:
        total = count_params(config, tied=tied)
        placeholder = GPTConfig(**{**config.__dict__, "vocab_size": 1})
        got = vocab_size_from_count(total, placeholder, tied)
        call = f"for {label} ({total:,} parameters, {'tied' if tied else 'untied'})"
        expect(_is_int(got) or (isinstance(got, float) and got.is_integer()),
               f"{call}: return a whole number of tokens, got {got!r}")
        got, want = int(got), config.vocab_size
        if got == want:
            continue
        d = config.n_embd
        if not tied and got == 2 * want:
            raise Hint(f"{call}: an untied model holds two vocab_size × n_embd matrices (wte and lm_head): divide by "
                       "2·n_embd, not n_embd")
        if got == want + config.block_size:
            raise Hint(f"{call}: you left the position embeddings (block_size × n_embd) in the vocabulary's share")
        raise Hint(f"{call} you found {got:,}, expected {want:,}: subtract everything that does not depend on the "
                   f"vocabulary (wpe, the blocks, ln_f), then divide by n_embd = {d} (by 2·n_embd when untied)")
    return ("the vocabulary is the one part whose size you can read off a total: everything else is fixed by the "
            "widths and the depth. (count_params with vocab_size=1 gives the rest, plus one row)")


# ---- Exercise 3: will it fit?


@exercise("Exercise 3 (will it fit? the largest batch)")
def check_largest_batch(largest_batch: Callable) -> str:
    """`largest_batch(config, memory_bytes, flash)` is the largest batch of full-length sequences whose training
    state (AdamW in fp32) plus activations fit in memory_bytes; 0 when not even one does."""
    from helpers.counting import activation_bytes, training_memory

    def reference(config: GPTConfig, memory: float, flash: bool) -> int:
        free = memory - sum(training_memory(config).values())
        return max(0, int(free // activation_bytes(config, 1, flash=flash))) if free > 0 else 0

    cases = [(preset("gpt2"), 16e9, False), (preset("gpt2"), 16e9, True), (preset("gpt2-medium"), 16e9, False),
             (preset("gpt2-medium"), 40e9, True), (preset("gpt2-xl"), 16e9, True), (preset("shakespeare-char"), 15e9, True)]
    failures = []  # (call, got, want) of every case that is wrong; a hint comes from the first that tells why
    for config, memory, flash in cases:
        name = next(n for n in ("gpt2", "gpt2-medium", "gpt2-xl", "shakespeare-char") if preset(n) == config)
        call = f"largest_batch({name}, {memory / 1e9:.0f} GB, flash={flash})"
        got, want = largest_batch(config, memory, flash), reference(config, memory, flash)
        expect(_is_int(got), f"{call} should return a whole number of sequences, got {got!r}")
        if got == want:
            continue
        state = sum(training_memory(config).values())
        causes = {  # a typical mistake -> what it would have returned here
            f"the weights, gradients and AdamW's moments ({state / 1e9:.1f} GB) need their place first; only what "
            "is left holds activations": int(memory // activation_bytes(config, 1, flash=flash)),
            f"that is the answer with flash={not flash}; pass flash on to activation_bytes":
                reference(config, memory, not flash),
            f"with {got} sequences the total is more than {memory / 1e9:.0f} GB; round down": want + 1,
            "when not even the training state fits, the answer is 0 sequences": min(-1, got),
        }
        matching = [hint for hint, value in causes.items() if value == got]
        if len(matching) == 1:
            raise Hint(f"{call} = {got}: {matching[0]}")
        failures.append((call, got, want))
    if failures:
        call, got, want = failures[0]
        raise Hint(f"{call} = {got}, expected {want}: subtract the training state (sum of training_memory) from the "
                   "memory, then divide by the activations of one sequence (activation_bytes with batch_size=1)")
    gpt2 = preset("gpt2")
    return (f"by this count GPT-2 small trains on a 16 GB GPU with {reference(gpt2, 16e9, False)} sequences of 1024 "
            f"tokens per step, or {reference(gpt2, 16e9, True)} with flash attention (a little less in practice: the "
            "count leaves out the logits, section 7); a larger batch needs gradient accumulation (lesson 08). GPT-2 "
            "XL's training state alone (25 GB) does not fit")
