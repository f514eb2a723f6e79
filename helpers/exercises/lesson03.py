"""Exercise checkers for Lesson 03: attention.

    from helpers.exercises import lesson03 as ex
    ex.check_previous_token_head(previous_token_head)

Solutions: notebooks/solutions/03_attention.ipynb.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import CausalSelfAttention, GPTConfig
from helpers.exercises import Hint, exercise, expect, expect_close, expect_shape


def _causal_weights(q: torch.Tensor, k: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """softmax(mask(q k^T * scale)) over the last two dimensions; scale defaults to 1/sqrt(head size)."""
    scale = 1 / math.sqrt(k.size(-1)) if scale is None else scale
    allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril()
    return torch.softmax((q @ k.transpose(-2, -1) * scale).masked_fill(~allowed, float("-inf")), dim=-1)


@exercise("Exercise 1 (a previous-token head, by hand)")
def check_previous_token_head(previous_token_head) -> str:
    """`previous_token_head(T)` returns (W_q, W_k), each (T, T), such that for one-hot position vectors x = eye(T),
    q = x @ W_q and k = x @ W_k, every query t >= 1 puts at least 0.9 of its weight on key t - 1."""
    for T in (4, 8):
        got = previous_token_head(T)
        expect(isinstance(got, tuple) and len(got) == 2, f"previous_token_head({T}) should return a pair (W_q, W_k), "
                                                         f"got {type(got).__name__}")
        W_q, W_k = got
        expect_shape(W_q, (T, T), f"W_q for T={T}")
        expect_shape(W_k, (T, T), f"W_k for T={T}")
        x = torch.eye(T)
        weights = _causal_weights(x @ W_q.detach().float(), x @ W_k.detach().float())
        on_previous = torch.stack([weights[t, t - 1] for t in range(1, T)])
        if on_previous.min() >= 0.9:
            continue
        case = f"with T={T}"
        if torch.diagonal(weights)[1:].mean() > 0.5:
            raise Hint(f"{case} every token attends mostly to itself (the diagonal): q_t matches k_t. Make query t look "
                       "like key t-1: with W_k the identity (k_t = e_t), row t of W_q should point at e_(t-1)")
        best = weights[1:].argmax(dim=-1)
        if torch.equal(best, torch.arange(T - 1)):
            raise Hint(f"{case} key t-1 wins every row, but only by a little (as little as {on_previous.min():.2f} of "
                       f"the weight): the scores are divided by sqrt(d) = {math.sqrt(T):.2g} before the softmax, so "
                       "the winning score must beat the others by several units. Multiply W_q by a larger number")
        uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
        if torch.allclose(weights, uniform, atol=0.05):
            raise Hint(f"{case} every query spreads its weight evenly over the past: no allowed key scores higher "
                       "than another. (Looking one position *forward* does that: the causal mask hides key t+1.) "
                       "Query t should match key t-1")
        raise Hint(f"{case} query t should put at least 0.9 of its weight on key t-1, but puts as little as "
                   f"{on_previous.min():.2f} there: with k_t = e_t, choose q_t = c * e_(t-1) for a large c")
    return ("every query looks one position back. Trained models learn heads like this one from data "
            "(Olsson et al., 2022, call them previous-token heads); it needs the position in x, which is why GPT adds wpe")


@exercise("Exercise 2 (counting attention parameters)")
def check_attention_parameters(attention_parameters) -> str:
    """`attention_parameters(n_embd, bias)` returns the parameter count of CausalSelfAttention."""
    for n_embd, n_head in [(768, 12), (64, 4), (6, 2)]:
        for bias in (True, False):
            module = CausalSelfAttention(GPTConfig(n_embd=n_embd, n_head=n_head, bias=bias))
            want = sum(p.numel() for p in module.parameters())
            got = attention_parameters(n_embd, bias)
            case = f"attention_parameters({n_embd}, bias={bias})"
            expect(isinstance(got, int) or (isinstance(got, float) and got.is_integer()),
                   f"{case} returned {got!r}; return a whole number (an int)")
            got = int(got)
            if bias and got == 4 * n_embd * n_embd:
                raise Hint(f"{case} = {got} counts only the weight matrices; with bias=True add c_attn's "
                           f"3*n_embd and c_proj's n_embd biases")
            if got in (3 * n_embd * n_embd, 3 * n_embd * n_embd + 3 * n_embd):
                raise Hint(f"{case} = {got} counts only c_attn; add the output projection c_proj (n_embd x n_embd"
                           f"{' + n_embd biases' if bias else ''})")
            expect(got == want, f"{case} = {got}, expected {want}: c_attn is n_embd -> 3*n_embd, "
                   "c_proj is n_embd -> n_embd, each Linear has in*out weights (+ out biases if bias)")
    return "4*n_embd^2 weights, plus 4*n_embd biases when bias=True"


# ---- Exercise 3: predict, then measure: attention without the 1/sqrt(d) scale

SCALE_CHOICES = {"A": "higher than with the scale", "B": "about the same (within 0.02)", "C": "lower than with the scale"}
TOY = dict(n_embd=64, block_size=16, batch_size=16, steps=60, lr=3e-3)  # one head of 64 dimensions


def _scaled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _unscaled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)


@functools.lru_cache(maxsize=1)
def _shakespeare_ids() -> torch.Tensor:
    from helpers.downloads import fetch
    from helpers.tokenization import CharTokenizer

    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    return torch.tensor(CharTokenizer.from_text(text).encode(text), dtype=torch.long)


def train_toy(attention, seed: int = 0, read_weights: bool = False) -> dict[str, float]:
    """Train the smallest attention model (embeddings, one head of 64 dimensions with a residual, a read-out) on
    Tiny Shakespeare for 60 steps, with `attention(q, k, v)` as its attention. Returns the mean loss of the last
    20 steps and, with read_weights, the mean largest attention weight of a row at step 0."""
    data, d, T = _shakespeare_ids(), TOY["n_embd"], TOY["block_size"]
    torch.manual_seed(seed)
    wte, wpe, c_attn, head = nn.Embedding(65, d), nn.Embedding(T, d), nn.Linear(d, 3 * d), nn.Linear(d, 65)
    modules = nn.ModuleList([wte, wpe, c_attn, head])
    optimizer = torch.optim.AdamW(modules.parameters(), lr=TOY["lr"])
    generator, losses, first_top = torch.Generator().manual_seed(seed), [], None
    for _ in range(TOY["steps"]):
        starts = torch.randint(len(data) - T - 1, (TOY["batch_size"],), generator=generator)
        xs = torch.stack([data[s:s + T] for s in starts])
        ys = torch.stack([data[s + 1:s + T + 1] for s in starts])
        h = wte(xs) + wpe(torch.arange(T))
        q, k, v = (part[:, None] for part in c_attn(h).split(d, dim=2))  # (B, 1 head, T, 64)
        if read_weights and first_top is None:
            with torch.no_grad():  # what the learner's attention does to the weights, read off through v = identity
                eye = torch.eye(T).expand(q.size(0), 1, T, T)
                first_top = attention(q, k, eye).max(dim=-1).values.mean().item()
        out = attention(q, k, v)
        loss = F.cross_entropy(head(h + out[:, 0]).flatten(0, 1), ys.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"first_top_weight": first_top, "loss": sum(losses[-20:]) / 20}


@functools.lru_cache(maxsize=2)
def _reference_run(scaled: bool) -> tuple[float, float]:
    run = train_toy(_scaled_attention if scaled else _unscaled_attention, read_weights=True)
    return run["first_top_weight"], run["loss"]


@exercise("Exercise 3 (predict, then measure: attention without 1/sqrt(d))")
def check_without_scale(prediction, unscaled_attention) -> str:
    """`unscaled_attention(q, k, v)` is causal attention with scores q.k, not divided by sqrt(head_size); the check
    trains a small model with it and with the scale, and compares with the learner's prediction."""
    expect(prediction is not None and prediction is not Ellipsis,
           'not attempted yet: first write your prediction ("A", "B" or "C") in `prediction`, then the attention')
    choice = str(prediction).strip().upper()
    expect(choice in SCALE_CHOICES, f'`prediction` should be "A", "B" or "C", got {prediction!r}')
    generator = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 6, 16, generator=generator) for _ in range(3))
    got = unscaled_attention(q.clone(), k.clone(), v.clone())
    expect_shape(got, (2, 3, 6, 16), "unscaled_attention(q, k, v) for q, k, v of shape (2, 3, 6, 16)")
    got = got.detach().float()
    if torch.allclose(got, _scaled_attention(q, k, v), atol=1e-4):
        raise Hint("that is attention *with* the scale: the scores are still divided by sqrt(head_size). Leave the "
                   "division out (F.scaled_dot_product_attention takes scale=1.0)")
    if torch.allclose(got, torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v, atol=1e-4):
        raise Hint("the future is not masked: query i may only see keys 0..i (is_causal=True, or a torch.tril mask)")
    expect_close(got, _unscaled_attention(q, k, v), "unscaled_attention(q, k, v)", atol=1e-4)
    mine = train_toy(unscaled_attention)
    top_scaled, loss_scaled = _reference_run(True)
    top_unscaled, loss_unscaled = _reference_run(False)
    expect(abs(mine["loss"] - loss_unscaled) < 0.02,
           f"trained with your attention the toy model ends at a loss of {mine['loss']:.3f}, the reference at "
           f"{loss_unscaled:.3f}: does your function handle a batch of several heads, (B, n_head, T, head_size)?")
    gap = loss_unscaled - loss_scaled
    actual = "A" if gap > 0.02 else "C" if gap < -0.02 else "B"
    verdict = "Your prediction was right." if choice == actual else f"Your prediction was {choice}, the answer {actual}."
    return (f"at step 0 the largest weight of a row averaged {top_unscaled:.2f} without the scale, against "
            f"{top_scaled:.2f} with it: without the scale, most of each row's weight sits on one key from the start. After {TOY['steps']} steps the loss is "
            f"{loss_unscaled:.3f} without the scale and {loss_scaled:.3f} with it: {SCALE_CHOICES[actual]}. {verdict} "
            "A saturated softmax passes back little gradient to the scores, so the queries and keys learn slowly; "
            "dividing by sqrt(head_size) gives every head size the same well-spread start")
