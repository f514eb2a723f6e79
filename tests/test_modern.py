"""Lesson 10: RMSNorm, RoPE, SwiGLU, grouped-query attention and the Llama-style model, checked against PyTorch
and Hugging Face's LlamaForCausalLM; the bad inputs and their messages."""

import dataclasses
import math

import pytest
import torch
import transformers  # a required test dependency (the [test] extra): the reference model

from helpers.attention import CausalSelfAttention, GPTConfig
from helpers.checkpoint import load_trained
from helpers.engine import TrainConfig, train
from helpers.generation import KVCache, generate
from helpers.layers import MLP, LayerNorm
from helpers.model import GPT, WeightLoadError
from helpers.modern import (
    GroupedQueryAttention,
    Llama,
    LlamaConfig,
    RMSNorm,
    RoPE,
    SwiGLU,
    hf_llama_key_to_ours,
    llama_config_from_hf,
    llama_config_like,
    load_hf_llama_state_dict,
    rope_frequencies,
    swiglu_hidden,
)

transformers.logging.set_verbosity_error()

SMALL = dict(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, mlp_hidden=88)


def hf_llama(seed: int = 0, vocab_size=61, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32, tie=False, bias=False,
             rope_theta=10000.0):
    """A Hugging Face LlamaForCausalLM with random weights, larger than its own initialisation (std 0.02, which
    makes every logit nearly 0), so that logits differ and greedy decoding is a real test."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads, max_position_embeddings=max_position_embeddings,
        rms_norm_eps=1e-5, rope_theta=rope_theta, tie_word_embeddings=tie, attention_bias=bias, mlp_bias=bias,
        bos_token_id=None, eos_token_id=None)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(1 + 0.1 * torch.randn_like(param) if name.endswith("norm.weight") else 0.15 * torch.randn_like(param))
    return model


def ours_from(hf) -> Llama:
    model = Llama(llama_config_from_hf(hf.config.to_dict())).eval()
    load_hf_llama_state_dict(model, hf.state_dict())
    return model


REFERENCES = {  # name -> the Hugging Face model's settings
    "GQA, untied": dict(),
    "MQA, tied": dict(num_key_value_heads=1, tie=True),
    "MHA, biases, rope_theta 500000": dict(num_key_value_heads=4, bias=True, rope_theta=500000.0),
    "GQA, 8 heads in 2 groups, 3 layers": dict(num_attention_heads=8, num_key_value_heads=2, num_hidden_layers=3,
                                              hidden_size=64, intermediate_size=176),
}


@pytest.fixture(scope="module", params=list(REFERENCES))
def reference(request):
    hf = hf_llama(**REFERENCES[request.param])
    return hf, ours_from(hf)


# --- the reference: Hugging Face's LlamaForCausalLM ---------------------------------------------------------

def test_parameter_counts_equal_hugging_face(reference):
    hf, ours = reference
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())


def test_parameter_counts_at_llama_3_8b_shape():
    config = transformers.LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                      max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5)
    with torch.device("meta"):
        hf = transformers.LlamaForCausalLM(config)
        ours = Llama(llama_config_from_hf(config.to_dict()))
    assert ours.config.n_kv_head == 8 and ours.config.rope_base == 500000.0 and not ours.config.tie_weights
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters()) == 8_030_261_248


def test_logits_match_hugging_face(reference):
    hf, ours = reference
    idx = torch.randint(0, hf.config.vocab_size, (3, hf.config.max_position_embeddings),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = hf(idx).logits
        got, loss = ours(idx, idx)
    assert want.std() > 0.5  # logits that differ: the comparison means something
    assert (got - want).abs().max().item() < 1e-4
    with torch.no_grad():
        hf_loss = hf(idx, labels=idx).loss  # HF shifts the labels inside
        ours_shifted = GPT.loss(got[:, :-1], idx[:, 1:])
    assert abs(ours_shifted.item() - hf_loss.item()) < 1e-4
    assert loss.item() == pytest.approx(GPT.loss(got, idx).item())


def test_greedy_continuations_match_hugging_face_generate(reference):
    """With the KV cache and without: every new token sits at a position past the prompt, where RoPE turns it."""
    hf, ours = reference
    prompt = torch.randint(0, hf.config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(2))
    new = hf.config.max_position_embeddings - 6
    want = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new, do_sample=False)
    assert want.shape == (2, hf.config.max_position_embeddings)
    assert len(set(want[:, 6:].flatten().tolist())) > 3  # not one token repeated
    assert torch.equal(generate(ours, prompt, new, temperature=0), want)
    assert torch.equal(generate(ours, prompt, new, temperature=0, use_cache=False), want)


def test_cached_steps_equal_the_full_forward():
    hf = hf_llama()
    ours = ours_from(hf)
    idx = torch.randint(0, 61, (2, 20), generator=torch.Generator().manual_seed(3))
    caches = KVCache.for_model(ours, batch_size=2)
    assert caches[0].k.shape == (2, 2, 32, 8)  # n_kv_head heads, not n_head
    with torch.no_grad():
        full = ours(idx)[0]
        prefill = ours(idx[:, :7], kv_cache=caches)[0]
        steps = [ours(idx[:, t:t + 1], kv_cache=caches)[0] for t in range(7, 20)]
    torch.testing.assert_close(torch.cat([prefill, *steps], dim=1), full, atol=1e-5, rtol=1e-5)
    assert caches[0].length == 20


def test_tied_checkpoint_without_lm_head_loads():
    """A weight-tied checkpoint saved to safetensors holds the matrix once, as embed_tokens.weight."""
    hf = hf_llama(tie=True, num_key_value_heads=1)
    state = {k: v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    ours = Llama(llama_config_from_hf(hf.config.to_dict())).eval()
    load_hf_llama_state_dict(ours, state)
    assert ours.lm_head.weight is ours.transformer.wte.weight
    idx = torch.randint(0, 61, (1, 16))
    with torch.no_grad():
        assert (ours(idx)[0] - hf(idx).logits).abs().max().item() < 1e-4


def test_key_map():
    assert hf_llama_key_to_ours("model.embed_tokens.weight") == "transformer.wte.weight"
    assert hf_llama_key_to_ours("model.layers.3.self_attn.k_proj.weight") == "transformer.h.3.attn.c_attn.weight"
    assert hf_llama_key_to_ours("model.layers.3.self_attn.v_proj.bias") == "transformer.h.3.attn.c_attn.bias"
    assert hf_llama_key_to_ours("model.layers.0.mlp.gate_proj.weight") == "transformer.h.0.mlp.c_gate.weight"
    assert hf_llama_key_to_ours("model.layers.0.mlp.up_proj.weight") == "transformer.h.0.mlp.c_fc.weight"
    assert hf_llama_key_to_ours("model.layers.0.post_attention_layernorm.weight") == "transformer.h.0.ln_2.weight"
    assert hf_llama_key_to_ours("model.norm.weight") == "transformer.ln_f.weight"
    assert hf_llama_key_to_ours("model.layers.0.self_attn.rotary_emb.inv_freq") is None
    assert hf_llama_key_to_ours("model.layers.0.mystery.weight") == "model.layers.0.mystery.weight"


# --- loading errors: clear, and the model is left as it was -------------------------------------------------

def _unchanged_after(model: Llama, state: dict, match: str) -> None:
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(WeightLoadError, match=match):
        load_hf_llama_state_dict(model, state)
    assert all(torch.equal(t, model.state_dict()[name]) for name, t in before.items())


def test_load_errors():
    hf = hf_llama()
    state = hf.state_dict()
    model = Llama(LlamaConfig(**SMALL))
    _unchanged_after(model, {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"},
                     r"no tensor for transformer\.h\.1\.mlp\.c_fc\.weight \(1 missing\); does the config")
    _unchanged_after(model, {k: v for k, v in state.items() if k != "lm_head.weight"},
                     "no tensor for lm_head.weight .*set tie_weights=True: it was saved weight-tied")
    _unchanged_after(model, {**state, "model.layers.2.input_layernorm.weight": torch.ones(32)},
                     r"unexpected tensor model\.layers\.2\.input_layernorm\.weight")
    _unchanged_after(model, {k: v for k, v in state.items() if k != "model.layers.0.self_attn.v_proj.weight"},
                     r"needs q_proj, k_proj and v_proj")
    gqa4 = Llama(LlamaConfig(**{**SMALL, "n_kv_head": 4}))
    _unchanged_after(gqa4, state, r"shape mismatch for model\.layers\.0\.self_attn\.\{q,k,v\}_proj\.weight: the "
                                  r"checkpoint has \(64, 32\), the model's transformer\.h\.0\.attn\.c_attn\.weight has "
                                  r"\(96, 32\); do n_kv_head and mlp_hidden match\?")
    tied = Llama(LlamaConfig(**{**SMALL, "tie_weights": True}))
    _unchanged_after(tied, state, "lm_head.weight differs from embed_tokens.weight: the checkpoint is not "
                                  "weight-tied; load it with tie_weights=False")


def test_config_from_hf_refuses_what_we_do_not_build():
    base = hf_llama().config.to_dict()
    config = llama_config_from_hf(base)
    assert (config.n_kv_head, config.mlp_hidden, config.block_size, config.norm_eps) == (2, 88, 32, 1e-5)
    with pytest.raises(ValueError, match="hidden_act='gelu': our SwiGLU gates with silu"):
        llama_config_from_hf({**base, "hidden_act": "gelu"})
    with pytest.raises(ValueError, match="attention_bias and mlp_bias differ"):
        llama_config_from_hf({**base, "attention_bias": True, "mlp_bias": False})
    with pytest.raises(ValueError, match="head_dim=16: our heads are hidden_size // num_attention_heads = 8 wide"):
        llama_config_from_hf({**base, "head_dim": 16})
    scaled = {"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0}
    for field in ("rope_parameters", "rope_scaling"):  # transformers 5 and 4 name it differently
        with pytest.raises(ValueError, match="RoPE scaling .* is not built here"):
            llama_config_from_hf({**{k: v for k, v in base.items() if k != "rope_parameters"}, field: scaled})
    old_style = {k: v for k, v in base.items() if k != "rope_parameters"}
    assert llama_config_from_hf({**old_style, "rope_theta": 5e5, "rope_scaling": None}).rope_base == 5e5


# --- RMSNorm --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eps", [1e-5, 1e-6, 0.1])
def test_rmsnorm_matches_torch(eps):
    torch.manual_seed(0)
    x = (torch.randn(3, 7, 48) * 4 + 2).requires_grad_()
    ours, reference = RMSNorm(48, eps=eps), torch.nn.RMSNorm(48, eps=eps)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(48))
        reference.weight.copy_(ours.weight)
    out, out_ref = ours(x), reference(x)
    torch.testing.assert_close(out, out_ref, atol=1e-6, rtol=1e-5)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, ours.weight), grad)
    want = torch.autograd.grad(out_ref, (x, reference.weight), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    assert set(dict(ours.named_parameters())) == set(dict(reference.named_parameters())) == {"weight"}


def test_rmsnorm_half_precision_and_centred_inputs():
    x = torch.randn(2, 5, 16) * 3
    half = RMSNorm(16)(x.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), RMSNorm(16)(x), atol=2e-2, rtol=2e-2)
    centred = x - x.mean(dim=-1, keepdim=True)
    torch.testing.assert_close(RMSNorm(16)(centred), LayerNorm(16, bias=False)(centred), atol=1e-5, rtol=1e-5)


def test_rmsnorm_bad_inputs():
    with pytest.raises(ValueError, match="ndim=0, but it must be a positive int"):
        RMSNorm(0)
    with pytest.raises(ValueError, match="eps=0, but it must be > 0"):
        RMSNorm(8, eps=0)
    with pytest.raises(ValueError, match=r"RMSNorm\(ndim=8\) got an input of shape \(2, 8, 3\): its last dimension "
                                         r"must be the 8 features of each position"):
        RMSNorm(8)(torch.zeros(2, 8, 3))


# --- RoPE -----------------------------------------------------------------------------------------------------

def test_rope_in_two_dimensions_is_a_turn():
    rope = RoPE(head_size=2, max_len=10)  # one pair, turned by 1 radian per position
    v = torch.tensor([0.6, -1.3])
    for m in range(10):
        c, s = math.cos(m), math.sin(m)
        want = torch.tensor([c * v[0] - s * v[1], s * v[0] + c * v[1]])
        torch.testing.assert_close(rope(v.expand(1, 1, 1, 2), past=m)[0, 0, 0], want, atol=1e-6, rtol=1e-6)


def test_rope_frequencies():
    theta = rope_frequencies(8, base=10000.0)
    torch.testing.assert_close(theta, torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64))
    assert theta.dtype == torch.float64


def test_rope_scores_depend_on_the_offset_only():
    torch.manual_seed(0)
    rope = RoPE(head_size=32, max_len=300)
    q, k = torch.randn(1, 1, 1, 32), torch.randn(1, 1, 1, 32)

    def score(m, n):
        return (rope(q, past=m) * rope(k, past=n)).sum().item()

    for offset in (0, 1, 5, 40):
        scores = [score(n + offset, n) for n in (0, 17, 100, 250)]
        assert max(scores) - min(scores) < 1e-4
    assert abs(score(5, 0) - score(0, 5)) > 1e-3  # the sign of the offset matters


def test_rope_keeps_lengths_and_dtype():
    x = torch.randn(2, 3, 9, 16)
    rope = RoPE(16, 9)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))
    assert rope(x.bfloat16()).dtype == torch.bfloat16
    assert not dict(rope.state_dict())  # a constant: nothing to save or load


def test_rope_bad_inputs():
    with pytest.raises(ValueError, match="RoPE turns pairs of dimensions, so head_size must be even, got 7"):
        RoPE(7, 16)
    rope = RoPE(8, 16)
    with pytest.raises(ValueError, match=r"positions 0 to 16 go past the RoPE table of 16 positions \(block_size\)"):
        rope(torch.zeros(1, 1, 17, 8))
    with pytest.raises(ValueError, match="positions 10 to 16 go past the RoPE table of 16 positions"):
        rope(torch.zeros(1, 1, 7, 8), past=10)


def test_a_sequence_past_the_rope_table():
    """Through the model the length is checked first; through a cache, the RoPE table stops the positions."""
    model = Llama(LlamaConfig(**SMALL))
    with pytest.raises(ValueError, match="sequence length 33 is longer than block_size=32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    attn = model.transformer.h[0].attn
    cache = KVCache(1, 2, 8, 64)  # a cache longer than the model's table
    attn(torch.zeros(1, 30, 32), kv_cache=cache)
    with pytest.raises(ValueError, match="positions 30 to 32 go past the RoPE table of 32 positions"):
        attn(torch.zeros(1, 3, 32), kv_cache=cache)


# --- SwiGLU ---------------------------------------------------------------------------------------------------

def test_swiglu_hidden():
    assert swiglu_hidden(768) == 2048  # exactly 8/3 · 768
    assert swiglu_hidden(4096, multiple_of=256) == 11008  # LLaMA 7B's intermediate_size
    assert swiglu_hidden(128) == 344 and swiglu_hidden(128) % 8 == 0
    assert LlamaConfig(n_embd=128, n_head=4, n_kv_head=2).mlp_hidden == 344


def test_swiglu_has_the_gelu_mlps_parameters_and_matches_hugging_face():
    config = LlamaConfig(n_embd=768)
    mlp = MLP(GPTConfig(n_embd=768, bias=False))
    assert sum(p.numel() for p in SwiGLU(config).parameters()) == sum(p.numel() for p in mlp.parameters())
    small = LlamaConfig(**SMALL)
    hf = transformers.models.llama.modeling_llama.LlamaMLP(
        transformers.LlamaConfig(hidden_size=32, intermediate_size=88))
    ours = SwiGLU(small)
    with torch.no_grad():
        for mine, theirs in (("c_gate", "gate_proj"), ("c_fc", "up_proj"), ("c_proj", "down_proj")):
            getattr(ours, mine).weight.copy_(getattr(hf, theirs).weight)
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(ours(x), hf(x))
    with pytest.raises(ValueError, match=r"SwiGLU\(n_embd=32\) got an input of shape \(2, 5, 16\)"):
        ours(torch.zeros(2, 5, 16))


# --- grouped-query attention -------------------------------------------------------------------------------------

def test_with_as_many_kv_heads_as_heads_and_no_rope_it_is_lesson_03s_attention():
    config = LlamaConfig(vocab_size=10, block_size=16, n_layer=1, n_head=4, n_kv_head=4, n_embd=32, bias=True)
    reference = CausalSelfAttention(GPTConfig(block_size=16, n_layer=1, n_head=4, n_embd=32))
    ours = GroupedQueryAttention(config, use_rope=False)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 16, 32)
    torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("n_kv_head", [1, 2])
def test_grouped_query_attention_is_multi_head_attention_with_shared_heads(n_kv_head):
    config = LlamaConfig(vocab_size=10, block_size=16, n_layer=1, n_head=4, n_kv_head=n_kv_head, n_embd=32)
    gqa = GroupedQueryAttention(config, use_rope=False)
    w_q, w_k, w_v = gqa.c_attn.weight.split(gqa.widths)
    assert gqa.c_attn.weight.shape == (32 + 2 * n_kv_head * 8, 32)

    def per_head(w):  # each key/value head repeated for the consecutive query heads of its group
        return w.unflatten(0, (n_kv_head, 8)).repeat_interleave(4 // n_kv_head, dim=0).flatten(0, 1)

    mha = CausalSelfAttention(GPTConfig(block_size=16, n_layer=1, n_head=4, n_embd=32, bias=False))
    with torch.no_grad():
        mha.c_attn.weight.copy_(torch.cat([w_q, per_head(w_k), per_head(w_v)]))
        mha.c_proj.weight.copy_(gqa.c_proj.weight)
    x = torch.randn(2, 16, 32)
    torch.testing.assert_close(gqa(x), mha(x))


def test_the_explicit_softmax_gives_the_same_attention(monkeypatch):
    attn = GroupedQueryAttention(LlamaConfig(**SMALL))
    x = torch.randn(2, 12, 32)
    fused = attn(x)
    monkeypatch.setattr(CausalSelfAttention, "use_fused", False)
    torch.testing.assert_close(attn(x), fused, atol=1e-6, rtol=1e-5)


def test_config_bad_inputs():
    with pytest.raises(ValueError, match=r"n_head=12 is not divisible by n_kv_head=5: each key/value head serves a "
                                         r"group of n_head // n_kv_head query heads; choose n_kv_head among the "
                                         r"divisors of n_head, \[1, 2, 3, 4, 6, 12\]"):
        LlamaConfig(n_head=12, n_kv_head=5)
    with pytest.raises(ValueError, match="n_head=4 is not divisible by n_kv_head=8"):
        LlamaConfig(n_embd=32, n_head=4, n_kv_head=8)
    with pytest.raises(ValueError, match=r"the head size n_embd // n_head = 7 is odd, but RoPE turns pairs of "
                                         r"dimensions; choose n_embd and n_head so that it is even"):
        LlamaConfig(n_embd=28, n_head=4, n_kv_head=2)
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by n_head=4"):
        LlamaConfig(n_embd=30, n_head=4, n_kv_head=2)
    for field, value in (("n_kv_head", 0), ("vocab_size", -1), ("mlp_hidden", 2.5), ("n_layer", True)):
        with pytest.raises(ValueError, match=f"LlamaConfig.{field}={value!r}: it must be a positive integer"):
            LlamaConfig(**{field: value})
    with pytest.raises(ValueError, match="dropout=1.0: it is a probability"):
        LlamaConfig(dropout=1.0)
    with pytest.raises(ValueError, match="rope_base=1.0 must be > 1"):
        LlamaConfig(rope_base=1.0)
    with pytest.raises(ValueError, match="norm_eps=0 > 0"):
        LlamaConfig(norm_eps=0)


# --- the model --------------------------------------------------------------------------------------------------

def test_config_round_trip_and_defaults():
    config = LlamaConfig()
    assert (config.n_layer, config.n_head, config.n_kv_head, config.n_embd, config.mlp_hidden) == (12, 12, 4, 768, 2048)
    assert config.head_size == 64 and not config.bias and not config.tie_weights
    assert LlamaConfig(**dataclasses.asdict(config)) == config


def test_model_forward_shapes_names_and_errors():
    model = Llama(LlamaConfig(**SMALL))
    idx = torch.randint(0, 61, (2, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 10, 61) and loss.shape == ()
    names = set(model.state_dict())
    assert "transformer.wpe.weight" not in names and "transformer.h.1.mlp.c_gate.weight" in names
    assert not any(name.endswith(".bias") for name in names)  # no biases
    assert model.lm_head.weight is not model.transformer.wte.weight
    tied = Llama(LlamaConfig(**{**SMALL, "tie_weights": True}))
    assert tied.lm_head.weight is tied.transformer.wte.weight
    with pytest.raises(ValueError, match="kv_cache has 1 entries but the model has n_layer=2 blocks"):
        model(idx, kv_cache=KVCache.for_model(model, 2)[:1])
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, vocab_size=61\)"):
        model(torch.full((1, 3), 61))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        model(idx, idx[:, :5])


def test_the_engine_trains_a_llama_and_load_trained_rebuilds_it(tmp_path):
    config = LlamaConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_kv_head=1, n_embd=16, tie_weights=True)
    run = TrainConfig(max_iters=2, eval_interval=2, eval_iters=1, warmup_iters=1, batch_size=2,
                      out_dir=str(tmp_path / "run"), progress=False, device="cpu", compile=False)
    model, history = train(config, run)
    assert isinstance(model, Llama) and len(history.steps) == 2
    restored, tokenizer = load_trained(tmp_path / "run")
    assert isinstance(restored, Llama) and restored.config == config
    idx = torch.tensor([tokenizer.encode("ROMEO:")])
    torch.testing.assert_close(restored(idx)[0], model.eval()(idx)[0], atol=0, rtol=0)
    assert generate(restored, idx, 5, temperature=0).shape == (1, 11)


def test_llama_config_like_a_gpt():
    gpt = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.1)
    config = llama_config_like(gpt, n_kv_head=2, tie_weights=True)
    assert (config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd, config.dropout) == (
        65, 64, 4, 4, 128, 0.1)
    assert (config.n_kv_head, config.mlp_hidden, config.bias, config.tie_weights) == (2, 344, False, True)
    assert llama_config_like(gpt).n_kv_head == 4  # multi-head unless told otherwise
    with pytest.raises(ValueError, match="n_head=4 is not divisible by n_kv_head=3"):
        llama_config_like(gpt, n_kv_head=3)
