"""Exercise checkers for lesson 06 (the full GPT). Solutions: notebooks/solutions/06_gpt_model.ipynb."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from helpers.exercises import exercise, expect, expect_close, expect_sequence, expect_shape


def _tiny_gpt(**overrides):
    from helpers.model import GPT, GPTConfig

    torch.manual_seed(6)
    config = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**config, **overrides})).eval()


@exercise("Exercise 1 (weight tying)")
def check_is_tied(is_tied: Callable) -> str:
    """`is_tied(model)` says whether lm_head.weight and transformer.wte.weight are one tensor."""
    tied = _tiny_gpt()
    expect(is_tied(tied) is True, "a freshly built GPT is tied (GPT.__init__ sets lm_head.weight = wte.weight), "
                                  "but is_tied returned something other than True")
    equal_copy = _tiny_gpt()
    equal_copy.lm_head.weight = nn.Parameter(equal_copy.transformer.wte.weight.detach().clone())
    expect(is_tied(equal_copy) is False,
           "a model whose lm_head.weight is a copy of wte.weight (equal values, two tensors) is not tied: "
           "compare identity with `is`, not values with torch.equal or ==")
    untied = _tiny_gpt()
    untied.lm_head.weight = nn.Parameter(torch.randn_like(untied.lm_head.weight))
    expect(is_tied(untied) is False, "a model with a separate, different lm_head.weight is not tied: return False")
    return "tying means one tensor used twice, not two equal tensors"


def _reference_hf_to_ours(key: str):
    from helpers.model import CONV1D_WEIGHTS, hf_key_to_ours

    name = hf_key_to_ours(key)
    return None if name is None else (name, key.endswith(CONV1D_WEIGHTS))


HF_KEYS = [
    "wte.weight", "transformer.wpe.weight", "h.0.ln_1.weight", "h.3.mlp.c_fc.weight", "h.3.mlp.c_fc.bias",
    "transformer.h.11.attn.c_attn.weight", "h.5.attn.c_proj.weight", "transformer.h.2.attn.c_attn.bias",
    "h.7.mlp.c_proj.weight", "transformer.ln_f.bias", "h.0.attn.bias", "transformer.h.4.attn.masked_bias",
    "lm_head.weight",
]


@exercise("Exercise 2 (one name, two checkpoints)")
def check_hf_to_ours(hf_to_ours: Callable) -> str:
    """`hf_to_ours(key)` -> (our name, transpose?) or None for the tensors we skip."""
    for key in HF_KEYS:
        got, want = hf_to_ours(key), _reference_hf_to_ours(key)
        if want is None:
            expect(got is None, f"{key!r} should be skipped (return None): "
                                + ("lm_head.weight is tied to wte.weight, so it is not loaded separately"
                                   if key == "lm_head.weight" else "it is a stored causal-mask buffer, not a weight"))
            continue
        expect(got is not None, f"{key!r} is a weight to load, but hf_to_ours returned None"
                                + (": skip only names ending in '.attn.bias' or '.attn.masked_bias' (with the dot), "
                                   "which 'attn.c_attn.bias' does not" if key.endswith("attn.bias") else ""))
        expect(isinstance(got, tuple) and len(got) == 2, f"hf_to_ours({key!r}) should return a pair (name, transpose), "
                                                          f"got {got!r}")
        name, transpose = got
        expect(name == want[0], f"hf_to_ours({key!r}) gave the name {name!r}, expected {want[0]!r}"
                                + ("; add the 'transformer.' prefix when it is missing"
                                   if not str(name).startswith("transformer.") else ""))
        if want[1]:
            expect(transpose is True, f"{key!r} is a Conv1D weight, stored (in, out): it must be transposed")
        else:
            expect(transpose is False, f"{key!r} must not be transposed: only the weights of attn.c_attn, attn.c_proj, "
                                       "mlp.c_fc and mlp.c_proj are (biases, LayerNorms and embeddings are not)")
    return f"all {len(HF_KEYS)} names mapped"


@exercise("Exercise 3 (the loss at init)")
def check_initial_loss(initial_loss: Callable) -> str:
    """`initial_loss(vocab_size)` is ln(vocab_size), the cross-entropy of uniform predictions."""
    for vocab_size in (2, 65, 50257):
        got = initial_loss(vocab_size)
        expect(isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1),
               f"initial_loss({vocab_size}) should be a number, got {type(got).__name__}")
        got = float(got)
        expect(not math.isclose(got, math.log2(vocab_size), rel_tol=1e-4),
               "that is log base 2; cross-entropy in PyTorch uses the natural log: math.log(vocab_size)")
        expect(not math.isclose(got, 1 / vocab_size, rel_tol=1e-4),
               "1 / vocab_size is the probability of each token; the loss is minus its log")
        expect(not math.isclose(got, -math.log(vocab_size), rel_tol=1e-4), "the loss is -ln(1/V) = +ln(V): check the sign")
        expect_close(got, math.log(vocab_size), f"initial_loss({vocab_size})", atol=1e-4)
    model = _tiny_gpt()
    idx, targets = torch.randint(0, 50, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, loss = model(idx, targets)
    return f"a fresh GPT with vocab_size=50 gives {loss.item():.3f}; ln 50 = {initial_loss(50):.3f}"


@exercise("Exercise 4 (positions with a cache)")
def check_new_positions(new_positions: Callable) -> str:
    """`new_positions(T, past)` is arange(past, past + T), used by GPT.forward for wpe."""
    import helpers.model as model_module

    for T, past in ((5, 0), (1, 7), (3, 4)):
        got = new_positions(T, past)
        expect_shape(got, (T,), f"new_positions({T}, {past})")
        expect(got.dtype == torch.long, f"new_positions({T}, {past}) has dtype {got.dtype}; embedding lookups need "
                                        "integer indices: dtype=torch.long")
        if past and got.tolist() == list(range(T)):
            expect(False, "the new tokens do not start at position 0: with `past` tokens cached, they sit at "
                          "past, past + 1, ...")
        expect_sequence(got.tolist(), list(range(past, past + T)), f"new_positions({T}, {past})")

    class ListCache:
        def __init__(self):
            self.k = self.v = None
            self.length = 0

        def update(self, k, v):
            self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
            self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
            return self.k, self.v

    model = _tiny_gpt()
    idx = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    original = model_module.positions
    model_module.positions = lambda T, past=0, device=None: new_positions(T, past).to(device)
    try:
        with torch.no_grad():
            full, _ = model(idx)
            caches = [ListCache() for _ in range(model.config.n_layer)]
            steps = []
            for t in range(idx.size(1)):
                steps.append(model(idx[:, t:t + 1], kv_cache=caches)[0])
                for cache in caches:
                    cache.length += 1
    finally:
        model_module.positions = original
    expect_close(torch.cat(steps, dim=1), full, "token-by-token logits with your positions", atol=1e-5)
    return "decoding one token at a time through a cache matches the full forward pass"
