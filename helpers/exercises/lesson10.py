"""Exercise checkers for lesson 10 (a modern LLM: RoPE, counting a Llama, grouped-query attention).

    from helpers.exercises import lesson10 as ex
    ex.check_rope_scores(prediction, rope_scores)

Solutions: notebooks/solutions/10_modern_llm.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from helpers.exercises import Hint, exercise, expect, expect_shape
from helpers.modern import GroupedQueryAttention, Llama, LlamaConfig, RoPE

# --- Exercise 1: predict, then measure RoPE's scores over a growing offset ------------------------------

BEHAVIOURS = ("constant", "oscillates", "decays", "grows")
OFFSETS = list(range(0, 1001))
HEAD_SIZE = 64


def rope_scores_reference(offsets: list[int]) -> list[float]:
    """q · k for q = k = ones(64), the key turned by RoPE at position 0 and the query at each offset."""
    rope = RoPE(HEAD_SIZE, max(offsets) + 1)
    ones = torch.ones(1, 1, 1, HEAD_SIZE)
    key = rope(ones, past=0)
    return [(rope(ones, past=offset) * key).sum().item() for offset in offsets]


def _window_mean(scores: list[float], start: int, stop: int) -> float:
    return sum(scores[start:stop]) / (stop - start)


def behaviour(scores: list[float]) -> str:
    """Which of BEHAVIOURS a curve of scores shows: its spread, and its mean at the end against near the start."""
    early, late = _window_mean(scores, 1, 11), _window_mean(scores, len(scores) // 2, len(scores))
    if max(scores) - min(scores) < 1e-3 * max(abs(s) for s in scores):
        return "constant"
    if late < 0.7 * early:
        return "decays"
    return "grows" if late > 1.3 * early else "oscillates"


def _check_scores(rope_scores: Callable) -> list[float]:
    got = rope_scores(OFFSETS)
    expect(isinstance(got, (list, tuple)) and len(got) == len(OFFSETS),
           f"rope_scores(range(0, 1001)) should return a list of {len(OFFSETS)} numbers, one per offset, got "
           f"{type(got).__name__}" + (f" of length {len(got)}" if hasattr(got, "__len__") else ""))
    got = [float(s) for s in got]
    want = rope_scores_reference(OFFSETS)
    if all(abs(g - w) < 1e-3 for g, w in zip(got, want)):
        return want
    if all(abs(g - HEAD_SIZE) < 1e-3 for g in got):
        raise Hint("every score is 64: were the query and the key at the same position? Put the key at position 0 "
                   "and the query at the offset (RoPE's forward takes the position as past=...)")
    if all(abs(g * 8 - w) < 1e-2 for g, w in zip(got, want)):
        raise Hint("your scores are divided by sqrt(64) = 8: the exercise asks for the plain dot product q · k")
    if abs(got[0] - want[0]) < 1e-3:
        worst = max(range(len(got)), key=lambda i: abs(got[i] - want[i]))
        raise Hint(f"the score at offset 0 is right, but at offset {worst} you have {got[worst]:.4f}, expected "
                   f"{want[worst]:.4f}: turn the query by RoPE at position `offset` (past=offset) and the key at 0")
    raise Hint(f"at offset 0 the score should be q · k = {want[0]:.1f} (nothing is turned), got {got[0]:.4f}")


@exercise("Exercise 1 (RoPE's scores as the offset grows: predict, then measure)")
def check_rope_scores(prediction: str, rope_scores: Callable) -> str:
    """The learner's measurement of q · k against the offset must match the reference; any prediction passes."""
    guess = prediction.strip().lower() if isinstance(prediction, str) else prediction
    if guess not in BEHAVIOURS:
        rope_scores([0, 1])  # an exercise not attempted at all says so (NotImplementedError) first
    expect(guess in BEHAVIOURS, f"first write your prediction: prediction = one of {', '.join(map(repr, BEHAVIOURS))} "
                                f"(got {prediction!r}); then run the experiment")
    scores = _check_scores(rope_scores)
    seen = behaviour(scores)
    verdict = "your prediction was right" if guess == seen else f"you predicted {guess!r}: worth a second look"
    return (f"the measurement says {seen!r} ({verdict}). The score starts at {scores[0]:.0f}, averages "
            f"{_window_mean(scores, 1, 11):.1f} over offsets 1-10, {_window_mean(scores, 100, 201):.1f} over "
            f"100-200 and {_window_mean(scores, 500, 1001):.1f} over 500-1000. Turning keeps the lengths, but "
            "the 32 pairs turn at different speeds, so the further apart the two tokens, the less their "
            "contributions agree; only the slow pairs still add up. Su et al. (2021) call it RoPE's long-term decay")


# --- Exercise 2: a Llama's parameters in closed form -------------------------------------------------------

def llama_params_reference(config: LlamaConfig) -> int:
    """The parameters of Llama(config), counted on the meta device (no memory)."""
    with torch.device("meta"):
        return sum(p.numel() for p in Llama(config).parameters())


PARAM_CASES = [
    LlamaConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_kv_head=2, n_embd=128, mlp_hidden=392,
                tie_weights=True),
    LlamaConfig(vocab_size=100, block_size=32, n_layer=3, n_head=6, n_kv_head=3, n_embd=48, mlp_hidden=136),
    LlamaConfig(vocab_size=100, block_size=32, n_layer=2, n_head=4, n_kv_head=1, n_embd=32, mlp_hidden=80, bias=True),
    LlamaConfig(vocab_size=128256, block_size=8192, n_layer=32, n_head=32, n_kv_head=8, n_embd=4096,
                mlp_hidden=14336, rope_base=500000.0),  # Llama 3 8B
]


def _without(config: LlamaConfig, **changes) -> int:
    return llama_params_reference(dataclasses.replace(config, **changes))


@exercise("Exercise 2 (counting a Llama)")
def check_llama_params(llama_params: Callable) -> str:
    """`llama_params(config)` equals sum(p.numel() for p in Llama(config).parameters())."""
    for config in PARAM_CASES:
        got, want = llama_params(config), llama_params_reference(config)
        name = (f"<n_layer={config.n_layer}, n_head={config.n_head}, n_kv_head={config.n_kv_head}, "
                f"n_embd={config.n_embd}, bias={config.bias}, tie_weights={config.tie_weights}>")
        expect(isinstance(got, int) and not isinstance(got, bool), f"llama_params({name}) should return an int, got {got!r}")
        if got == want:
            continue
        d, kv = config.n_embd, config.n_kv_head * config.head_size
        if got == _without(config, n_kv_head=config.n_head):
            raise Hint(f"llama_params({name}): the keys and values have n_kv_head heads, not n_head: "
                       f"k and v project n_embd to n_kv_head × head_size = {kv}")
        if config.tie_weights and got == want + config.vocab_size * d:
            raise Hint(f"llama_params({name}): with tie_weights, lm_head IS the embedding matrix: count it once")
        if not config.tie_weights and got == want - config.vocab_size * d:
            raise Hint(f"llama_params({name}): without tie_weights, lm_head is a vocab_size × n_embd matrix of its own")
        if got == want - (2 * config.n_layer + 1) * d:
            raise Hint(f"llama_params({name}): each RMSNorm has a gain per feature: 2 per block and one at the end")
        if config.bias and got == _without(config, bias=False):
            raise Hint(f"llama_params({name}): with bias=True every Linear but lm_head has a bias, one per output")
        raise Hint(f"llama_params({name}) returned {got:,}, expected {want:,}. Per block: 2 RMSNorm gains, "
                   "c_attn (queries, keys, values), c_proj, and SwiGLU's three matrices; then wte, ln_f, lm_head")
    return f"Llama 3 8B has {llama_params_reference(PARAM_CASES[-1]):,} parameters, as Hugging Face counts them"


# --- Exercise 3: multi-head to grouped-query attention by mean pooling --------------------------------------

def mean_pool_reference(attn: GroupedQueryAttention, n_kv_head: int) -> GroupedQueryAttention:
    """A GroupedQueryAttention with n_kv_head key/value heads, each the mean of its group of attn's heads."""
    config = dataclasses.replace(attn.config, n_kv_head=n_kv_head)
    pooled = GroupedQueryAttention(config, use_rope=attn.rope is not None).to(attn.c_attn.weight.dtype)
    group = attn.n_kv_head // n_kv_head

    def pool(t: torch.Tensor) -> torch.Tensor:  # rows of attn.n_kv_head heads -> rows of n_kv_head heads
        return t.unflatten(0, (n_kv_head, group, -1)).mean(dim=1).flatten(0, 1)

    with torch.no_grad():
        for name in ("weight", "bias"):
            old = getattr(attn.c_attn, name)
            if old is not None:
                q, k, v = old.split(attn.widths)
                getattr(pooled.c_attn, name).copy_(torch.cat([q, pool(k), pool(v)]))
        pooled.c_proj.load_state_dict(attn.c_proj.state_dict())
    return pooled.train(attn.training)


def _strided_pool(attn: GroupedQueryAttention, n_kv_head: int) -> torch.Tensor:
    """The c_attn weight that pooling every n_kv_head-th head (0, n_kv_head, ...) together would give."""
    group = attn.n_kv_head // n_kv_head
    q, k, v = attn.c_attn.weight.split(attn.widths)

    def pool(t):
        return t.unflatten(0, (group, n_kv_head, -1)).mean(dim=0).flatten(0, 1)

    return torch.cat([q, pool(k), pool(v)])


MEAN_POOL_CASES = [  # (n_head, n_embd, bias, use_rope, n_kv_head)
    (4, 32, True, False, 2), (8, 64, False, True, 2), (6, 48, True, True, 3), (4, 32, False, True, 1),
]


@exercise("Exercise 3 (from multi-head to grouped-query attention)")
def check_mean_pool_heads(mean_pool_heads: Callable) -> str:
    """`mean_pool_heads(attn, n_kv_head)` returns grouped-query attention whose key/value heads are the means
    of attn's heads in each group of consecutive heads; queries and c_proj are copies; attn is left alone."""
    torch.manual_seed(0)
    for n_head, n_embd, bias, use_rope, n_kv_head in MEAN_POOL_CASES:
        config = LlamaConfig(vocab_size=50, block_size=16, n_layer=1, n_head=n_head, n_kv_head=n_head,
                             n_embd=n_embd, bias=bias)
        attn = GroupedQueryAttention(config, use_rope=use_rope).eval()
        before = {name: t.clone() for name, t in attn.state_dict().items()}
        call = f"mean_pool_heads(<{n_head} heads, bias={bias}, use_rope={use_rope}>, n_kv_head={n_kv_head})"
        got = mean_pool_heads(attn, n_kv_head)
        expect(all(torch.equal(t, attn.state_dict()[name]) for name, t in before.items()),
               f"{call} changed the weights of its input; build a new GroupedQueryAttention and copy into it")
        expect(got is not attn and hasattr(got, "c_attn") and hasattr(got, "n_kv_head"),
               f"{call} should return a new GroupedQueryAttention, got {type(got).__name__}")
        expect(got.n_kv_head == n_kv_head, f"{call} returned attention with n_kv_head={got.n_kv_head}; build it "
                                          f"from dataclasses.replace(attn.config, n_kv_head={n_kv_head})")
        expect((got.rope is not None) == use_rope, f"{call}: keep attn's choice use_rope={use_rope}")
        want = mean_pool_reference(attn, n_kv_head)
        expect_shape(got.c_attn.weight, tuple(want.c_attn.weight.shape), f"the c_attn weight returned by {call}")
        if not torch.allclose(got.c_attn.weight, want.c_attn.weight, atol=1e-6):
            q_rows = config.n_embd
            if not torch.allclose(got.c_attn.weight[:q_rows], want.c_attn.weight[:q_rows]):
                raise Hint(f"{call}: the queries keep all n_head heads: copy attn's query rows unchanged")
            if torch.allclose(got.c_attn.weight, _strided_pool(attn, n_kv_head), atol=1e-6):
                raise Hint(f"{call}: a group is made of CONSECUTIVE heads (query heads 0 and 1 share key/value head "
                           "0), not every n_kv_head-th head")
            group = n_head // n_kv_head
            if torch.allclose(got.c_attn.weight[q_rows:] / group, want.c_attn.weight[q_rows:], atol=1e-6):
                raise Hint(f"{call}: you summed the heads of each group; take their mean")
            raise Hint(f"{call}: the key and value rows differ from the means of each group's heads")
        if bias:
            expect(torch.allclose(got.c_attn.bias, want.c_attn.bias, atol=1e-6),
                   f"{call}: pool the biases of the keys and values as well, and copy those of the queries")
        expect(torch.equal(got.c_proj.weight, attn.c_proj.weight), f"{call}: copy c_proj from attn")
        x = torch.randn(2, 16, n_embd)
        with torch.no_grad():
            expect(torch.allclose(got.eval()(x), want.eval()(x), atol=1e-5), f"{call}: the outputs differ")
    return ("Ainslie et al. start from such pooled heads and train on for about 5% of the original training "
            "compute, which brings the grouped model close to the multi-head one's quality")
