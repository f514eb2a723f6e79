"""Exercise checkers for lesson 09 (generation: sampling rules and the KV cache).

    from helpers.exercises import lesson09 as ex
    ex.check_min_p_filter(min_p_filter)

Solutions: notebooks/solutions/09_generation.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helpers.attention import GPTConfig
from helpers.exercises import Hint, exercise, expect, expect_shape
from helpers.generation import KVCache
from helpers.model import GPT, preset


def _logits(rows: int = 4, vocab: int = 50, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 3


def min_p_reference(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep the tokens whose probability is at least min_p times the most likely token's; -inf elsewhere."""
    probs = logits.softmax(dim=-1)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values
    return logits.masked_fill(probs < threshold, float("-inf"))


def _kept(logits: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(logits)


@exercise("Exercise 1 (min-p sampling)")
def check_min_p_filter(min_p_filter: Callable) -> str:
    """`min_p_filter(logits, min_p)` sets to -inf the logits of tokens less likely than min_p × the top probability."""
    for min_p, seed in ((0.1, 0), (0.05, 1), (0.5, 2), (1.0, 3)):
        logits = _logits(seed=seed)
        original = logits.clone()
        got = min_p_filter(logits, min_p)
        call = f"min_p_filter(logits, {min_p})"
        expect(torch.equal(logits, original), f"{call} changed its input in place; return a new tensor "
                                              "(masked_fill, not masked_fill_)")
        expect_shape(got, tuple(logits.shape), f"the result of {call}")
        want = min_p_reference(logits, min_p)
        if torch.equal(_kept(got), _kept(want)):
            expect(torch.equal(got[_kept(want)], logits[_kept(want)]),
                   f"{call}: the kept logits should be unchanged; only the others become -inf")
            continue
        probs = logits.softmax(dim=-1)
        if got.min() >= 0 and torch.allclose(got.sum(dim=-1), torch.ones(len(got)), atol=1e-4):
            raise Hint(f"{call} returned probabilities; return the logits, with -inf for the tokens cut away")
        if torch.equal(_kept(got), probs >= min_p):
            raise Hint(f"{call}: the threshold is relative: min_p times the probability of the most likely token, "
                       "not min_p itself")
        if torch.equal(_kept(got), logits >= min_p * logits.max(dim=-1, keepdim=True).values):
            raise Hint(f"{call}: compare probabilities (softmax of the logits), not the logits themselves")
        if torch.equal(_kept(got), _kept(min_p_reference(logits.t(), min_p).t())):
            raise Hint(f"{call}: take the softmax and the maximum over the last dimension (each row is one "
                       "distribution): dim=-1, keepdim=True")
        raise Hint(f"{call} keeps {int(_kept(got).sum())} tokens, expected {int(_kept(want).sum())}: keep a token when "
                   "its probability is >= min_p × the row's largest probability")
    return "min-p adapts the cut to the model's confidence: a sure model keeps few tokens, an unsure one many"


def repetition_penalty_reference(logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: each token already in the row's previous_ids becomes less likely, once."""
    seen = logits.gather(-1, previous_ids)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, previous_ids, seen)


@exercise("Exercise 2 (repetition penalty)")
def check_repetition_penalty(apply_repetition_penalty: Callable) -> str:
    """`apply_repetition_penalty(logits, previous_ids, penalty)` follows CTRL (Keskar et al., 2019):
    a positive logit of a token seen before is divided by penalty, a negative one multiplied by it."""
    generator = torch.Generator().manual_seed(0)
    for penalty in (1.3, 2.0, 1.0):
        logits = _logits(rows=3, vocab=20, seed=int(penalty * 10))
        previous_ids = torch.randint(0, 20, (3, 12), generator=generator)  # with repeats
        original = logits.clone()
        got = apply_repetition_penalty(logits, previous_ids, penalty)
        call = f"apply_repetition_penalty(logits, previous_ids, {penalty})"
        expect(torch.equal(logits, original), f"{call} changed its input in place; work on a copy (logits.clone())")
        expect_shape(got, tuple(logits.shape), f"the result of {call}")
        want = repetition_penalty_reference(logits, previous_ids, penalty)
        if torch.allclose(got, want, atol=1e-6):
            continue
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous_ids, True)
        if torch.allclose(got, torch.where(seen, logits / penalty, logits), atol=1e-6):
            raise Hint(f"{call}: dividing a negative logit by the penalty brings it closer to 0, which makes the "
                       "token MORE likely; multiply negative logits by the penalty instead")
        counts = torch.zeros_like(logits).scatter_add(-1, previous_ids, torch.ones_like(previous_ids, dtype=logits.dtype))
        factor = penalty ** counts
        if torch.allclose(got, torch.where(logits > 0, logits / factor, logits * factor), atol=1e-6):
            raise Hint(f"{call}: you penalised a token once per occurrence; penalise each token seen before once")
        if torch.allclose(got[~seen], logits[~seen], atol=1e-6):
            raise Hint(f"{call}: the tokens not in previous_ids are right, some seen ones are not: for each row, "
                       "penalise the tokens of that row's previous_ids")
        raise Hint(f"{call}: tokens that never appeared in previous_ids must keep their logits")
    return "a penalty around 1.2 curbs the loops of greedy decoding"


def _cache_bytes(config: GPTConfig, batch_size: int, seq_len: int, dtype: torch.dtype) -> int:
    """The bytes of the real caches that KVCache.for_model allocates (on the meta device: no memory)."""
    with torch.device("meta"):
        model = GPT(config).to(dtype)
    caches = KVCache.for_model(model, batch_size, seq_len)
    return sum(cache.k.nbytes + cache.v.nbytes for cache in caches)


@exercise("Exercise 3 (the memory of a KV cache)")
def check_kv_cache_bytes(kv_cache_bytes: Callable) -> str:
    """`kv_cache_bytes(config, batch_size, seq_len, bytes_per_value)` is the size of the keys and values of
    every layer for batch_size sequences of seq_len positions."""
    gpt2 = preset("gpt2")
    distinct = GPTConfig(vocab_size=65, block_size=64, n_layer=6, n_head=8, n_embd=64)  # 2, 6, 8, 4 bytes: no mix-ups
    cases = [(distinct, 3, 50, 4, torch.float32), (preset("gpt2-medium"), 2, 1000, 2, torch.float16),
             (gpt2, 1, 1024, 4, torch.float32), (gpt2, 8, 256, 2, torch.bfloat16),
             (GPTConfig(vocab_size=65, block_size=64, n_layer=3, n_head=2, n_embd=8), 5, 7, 4, torch.float32)]
    for config, batch, seq_len, size, dtype in cases:
        call = f"kv_cache_bytes(<n_layer={config.n_layer}, n_embd={config.n_embd}>, {batch}, {seq_len}, {size})"
        got = kv_cache_bytes(config, batch, seq_len, size)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), f"{call} should return a number, got {got!r}")
        want = _cache_bytes(config, batch, seq_len, dtype)
        if got == want:
            continue
        if got * 2 == want:
            raise Hint(f"{call}: a cache stores keys AND values: count both")
        if got * config.n_layer == want:
            raise Hint(f"{call}: every one of the n_layer blocks has its own cache")
        if got * size == want:
            raise Hint(f"{call}: that is the number of values; multiply by bytes_per_value")
        if got == want // config.n_embd * config.head_size:
            raise Hint(f"{call}: each layer caches all n_head heads, n_head × head_size = n_embd values per position")
        raise Hint(f"{call} returned {got:,}, expected {want:,}: 2 (k and v) × n_layer × batch_size × seq_len × "
                   "n_embd × bytes_per_value")
    full = _cache_bytes(gpt2, 1, 1024, torch.float32)
    return f"GPT-2 small's cache for one full 1024-token context takes {full / 1e6:.1f} MB in fp32"


def _argmax_fraction_reference(model: torch.nn.Module, idx: torch.Tensor, steps: int, top_p: float) -> float:
    from helpers.generation import sample_next

    generator, hits = torch.Generator().manual_seed(0), 0
    with torch.no_grad():
        for _ in range(steps):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1]
            token = sample_next(logits, 1.0, top_p=top_p, generator=generator)
            hits += int(token.item() == logits.argmax(dim=-1).item())
            idx = torch.cat([idx, token[:, None]], dim=1)
    return hits / steps


@exercise("Exercise 4 (predict, then experiment: how greedy is top-p?)")
def check_top_p_argmax(argmax_fraction: Callable, predicted_fraction, model: torch.nn.Module) -> str:
    """`argmax_fraction(model, idx, steps, top_p, generator)`: sample `steps` tokens one at a time with
    sample_next(logits, 1.0, top_p=top_p, generator=generator) and return the fraction of steps whose token
    was the most likely one."""
    expect(isinstance(predicted_fraction, (int, float)) and not isinstance(predicted_fraction, bool)
           and 0 <= predicted_fraction <= 1, "write your prediction first: set predicted_fraction to a number from 0 to 1")
    model = model.eval()
    idx = torch.zeros(1, 1, dtype=torch.long)
    results = {}
    for top_p in (0.5, 0.95):
        got = argmax_fraction(model, idx.clone(), 100, top_p, torch.Generator().manual_seed(0))
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) and 0 <= got <= 1,
               f"return a fraction from 0 to 1, got {got!r}")
        want = _argmax_fraction_reference(model, idx.clone(), 100, top_p)
        if abs(got - want) > 1e-9 and abs(got * 100 - want * 100) > 1e-6:
            raise Hint(f"with top_p={top_p} the same experiment gives {want:.2f}, you measured {got:.2f}: at each step "
                       "take the logits of the last position (of at most block_size tokens), compare the sampled token "
                       "with their argmax, and append the sampled token before the next step")
        results[top_p] = got
    verdict = ("your prediction was close" if abs(predicted_fraction - results[0.5]) < 0.1
               else f"you predicted {predicted_fraction:.2f}")
    return (f"with top_p=0.5 the most likely token was drawn in {results[0.5]:.0%} of the steps (top_p=0.95: "
            f"{results[0.95]:.0%}): {verdict}. Where the model is confident, one token already holds half the mass, "
            "so top-p 0.5 is greedy there and samples only where the model hesitates")
