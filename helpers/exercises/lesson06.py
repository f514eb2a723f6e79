"""Exercise checkers for lesson 06 (the full GPT). Solutions: notebooks/solutions/06_gpt_model.ipynb.

    from helpers.exercises import lesson06 as ex
    ex.check_answer_targets(answer_targets)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercises import Hint, exercise, expect, expect_shape


def _tiny_gpt(**overrides):
    from helpers.model import GPT, GPTConfig

    torch.manual_seed(6)
    config = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**config, **overrides})).eval()


# ---- Exercise 1: count only the answer


def reference_answer_targets(tokens: torch.Tensor, prompt_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx, targets = tokens[:, :-1], tokens[:, 1:].clone()
    targets[:, :prompt_len - 1] = -1  # position t predicts token t + 1: the predictions of prompt tokens do not count
    return idx, targets


@exercise("Exercise 1 (count only the answer)")
def check_answer_targets(answer_targets: Callable) -> str:
    """`answer_targets(tokens, prompt_len)` returns (idx, targets) for GPT.forward such that the loss counts only
    the predictions of the answer's tokens, tokens[:, prompt_len:]."""
    generator = torch.Generator().manual_seed(0)
    for length, prompt_len in ((9, 4), (6, 1), (12, 11), (7, 3)):
        tokens = torch.randint(1, 50, (2, length), generator=generator)
        call = f"answer_targets(tokens of shape {tuple(tokens.shape)}, prompt_len={prompt_len})"
        got = answer_targets(tokens.clone(), prompt_len)
        expect(isinstance(got, tuple) and len(got) == 2, f"{call} should return a pair (idx, targets)")
        idx, targets = got
        want_idx, want_targets = reference_answer_targets(tokens, prompt_len)
        expect_shape(idx, tuple(want_idx.shape), f"idx from {call}")
        expect_shape(targets, tuple(want_targets.shape), f"targets from {call}")
        expect(torch.equal(idx, want_idx), f"idx from {call}: the model reads every token but the last, tokens[:, :-1]")
        if torch.equal(targets, want_targets):
            continue
        if torch.equal(targets, tokens[:, 1:]):
            raise Hint(f"{call}: nothing is masked, so the prompt's predictions count too; set the targets that are "
                       "prompt tokens to -1, the value GPT.loss ignores")
        if torch.equal(targets.masked_fill(targets == 0, -1), want_targets):
            raise Hint(f"{call}: 0 is a real token id, so it still counts; mark the ignored targets with -1")
        masked = int((targets == -1).sum(dim=1)[0])
        if torch.equal(targets[:, masked:], tokens[:, 1 + masked:]) and masked in (prompt_len, prompt_len - 2):
            raise Hint(f"{call}: you mask {masked} targets, the right number is {prompt_len - 1}. The target at "
                       "position t is token t + 1, so position prompt_len - 1 predicts the answer's first token and "
                       "must count, while positions 0 .. prompt_len - 2 predict prompt tokens")
        if torch.equal(targets.masked_fill(targets == -1, 0), tokens[:, :-1].masked_fill(targets == -1, 0)):
            raise Hint(f"{call}: the targets are not shifted; the target of position t is the *next* token, t + 1")
        raise Hint(f"{call}: the targets should be tokens[:, 1:] with the first prompt_len - 1 of them set to -1")
    model = _tiny_gpt()
    tokens = torch.randint(1, 50, (3, 12), generator=generator)
    idx, targets = answer_targets(tokens.clone(), 5)
    with torch.no_grad():
        logits, loss = model(idx, targets)
        answer_only = F.cross_entropy(logits[:, 4:].flatten(0, 1), tokens[:, 5:].flatten())
    expect(math.isclose(loss.item(), answer_only.item(), rel_tol=1e-5), "the loss should average over the answer's "
           "predictions only")
    return (f"GPT's loss now averages over the {int((targets != -1).sum())} predictions of answer tokens only "
            f"({answer_only.item():.3f} here): the prompt still feeds every prediction, it is just not graded. This "
            "is how a model is fine-tuned on prompt-and-answer pairs")


# ---- Exercise 2: predict, then measure: untie the head

def reference_self_prediction_rate(model: nn.Module, idx: torch.Tensor) -> float:
    with torch.no_grad():
        logits, _ = model(idx)
    return (logits.argmax(dim=-1) == idx).float().mean().item()


def reference_untie_(model: nn.Module) -> nn.Module:
    model.lm_head.weight = nn.Parameter(torch.randn_like(model.transformer.wte.weight) * 0.02)
    return model


class _FixedLogits(nn.Module):
    """A stand-in model whose top guess is the input token at exactly the positions where `hits` is True."""

    def __init__(self, hits: torch.Tensor, vocab_size: int = 7):
        super().__init__()
        self.hits, self.vocab_size = hits, vocab_size

    def forward(self, idx, targets=None):
        guess = torch.where(self.hits, idx, (idx + 1) % self.vocab_size)
        return F.one_hot(guess, self.vocab_size).float(), None


def _check_rate(self_prediction_rate: Callable) -> None:
    idx = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 0]])
    hits = torch.tensor([[True, False, False, True], [False, False, True, False]])
    got = self_prediction_rate(_FixedLogits(hits), idx.clone())
    expect(isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1),
           f"self_prediction_rate should return a number, got {type(got).__name__}")
    got = float(got)
    guess = torch.where(hits, idx, (idx + 1) % 7)
    against_next = (guess[:, :-1] == idx[:, 1:]).float().mean().item()
    if math.isclose(got, 3.0):
        raise Hint("self_prediction_rate returned a count (3 of 8 positions); return the fraction, a number in [0, 1]")
    if math.isclose(got, against_next, rel_tol=1e-4):
        raise Hint("compare the top guess at position t with the token read at position t, idx[:, t] (the "
                   "question is whether the model predicts the token it just read), not with the next token")
    expect(math.isclose(got, 3 / 8, rel_tol=1e-4), f"on a stand-in model whose top guess is the token just read at 3 of "
           f"8 positions, self_prediction_rate gave {got:.3g} instead of 0.375: take logits.argmax(dim=-1), compare "
           "with idx position by position, and average over every position of every sequence")


def _check_untie(untie_: Callable) -> None:
    from helpers.model import GPT, preset

    torch.manual_seed(1)
    model = GPT(preset("cpu"))
    wte = model.transformer.wte.weight
    before = wte.detach().clone()
    count = sum(p.numel() for p in model.parameters())
    returned = untie_(model)
    expect(returned is None or returned is model, "untie_ changes the model in place; return it (or nothing)")
    head = model.lm_head.weight
    expect(head is not model.transformer.wte.weight, "lm_head.weight is still wte.weight: give lm_head a weight of its "
           "own, a new nn.Parameter")
    expect(model.transformer.wte.weight is wte and torch.equal(wte.detach(), before),
           "leave wte alone: only lm_head gets a new weight")
    expect(isinstance(head, nn.Parameter) and head.requires_grad, "make the new weight an nn.Parameter, so that it is "
           "trained (and listed by model.parameters())")
    expect_shape(head, tuple(wte.shape), "the new lm_head.weight")
    V, d = wte.shape
    expect(sum(p.numel() for p in model.parameters()) == count + V * d,
           f"the untied model should have vocab_size × n_embd = {V * d:,} more parameters than the tied one")
    expect(not torch.allclose(head.detach(), before), "the new weight is a copy of wte's values: a copy computes exactly "
           "what the tied model computes, so the head start stays. Draw it fresh from N(0, 0.02²), as init_weights does")
    std = head.detach().std().item()
    expect(0.015 < std < 0.025, f"the new weight has standard deviation {std:.3g}; draw it from N(0, 0.02²), as "
           "init_weights draws every Linear weight")


@exercise("Exercise 2 (predict, then measure: untie the head)")
def check_untie(prediction, untie_: Callable, self_prediction_rate: Callable) -> str:
    """`untie_(model)` gives lm_head a fresh weight of its own; `self_prediction_rate(model, idx)` is the fraction of
    positions whose top guess is the token just read. The learner predicts that fraction for the tied `cpu` model."""
    from helpers.model import GPT, preset

    expect(prediction is not None and prediction is not Ellipsis,
           "not attempted yet: first write your prediction (a fraction between 0 and 1) in `prediction`, then the code")
    expect(isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and 0 <= prediction <= 1,
           f"`prediction` should be a fraction between 0 and 1, got {prediction!r}")
    _check_rate(self_prediction_rate)
    _check_untie(untie_)
    idx = torch.randint(0, 65, (4, 64), generator=torch.Generator().manual_seed(0))
    rates = {}  # (untied?, the learner's code?) -> the measured fraction
    for untied, learners in ((False, True), (True, True), (False, False), (True, False)):
        torch.manual_seed(0)
        model = GPT(preset("cpu")).eval()
        if untied:
            (untie_ if learners else reference_untie_)(model)
        rate = self_prediction_rate if learners else reference_self_prediction_rate
        rates[untied, learners] = float(rate(model, idx.clone()))
    for untied in (False, True):
        expect(abs(rates[untied, True] - rates[untied, False]) < 0.05,
               f"on the {'untied' if untied else 'tied'} cpu model your measurement gives {rates[untied, True]:.3f}, "
               f"the reference {rates[untied, False]:.3f}")
    tied, untied = rates[False, False], rates[True, False]
    verdict = ("Your prediction was right (within 0.1)." if abs(prediction - tied) <= 0.1
               else f"Your prediction was too {'high' if prediction > tied else 'low'}.")
    return (f"untrained and tied, the cpu model's top guess is the token it just read at {tied:.0%} of the positions; "
            f"untied, at {untied:.0%} (a uniform guess would hit 1/65 = 1.5%). You predicted {prediction:.0%}. "
            f"{verdict} The token's vector reaches lm_head through the residual stream, and a tied lm_head scores the "
            "stream against that same vector: a vector's dot product with itself is large. The effect is strong "
            "when the embedding is still most of the stream, as in this narrow model at init")
