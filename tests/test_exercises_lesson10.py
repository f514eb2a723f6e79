"""Lesson 10's exercise checkers pass the solutions and fail typical wrong answers with a useful hint."""

import dataclasses

import torch

from helpers.exercises import lesson10 as ex
from helpers.modern import GroupedQueryAttention, RoPE


def rope_scores(offsets):  # the solution
    rope = RoPE(64, max(offsets) + 1)
    ones = torch.ones(1, 1, 1, 64)
    return [(rope(ones, past=offset) * rope(ones, past=0)).sum().item() for offset in offsets]


def llama_params(config):  # the solution
    d, kv, hidden = config.n_embd, config.n_kv_head * config.head_size, config.mlp_hidden
    attention = d * (d + 2 * kv) + d * d + (d + 2 * kv + d if config.bias else 0)
    mlp = 3 * d * hidden + (2 * hidden + d if config.bias else 0)
    block = 2 * d + attention + mlp
    head = 0 if config.tie_weights else config.vocab_size * d
    return config.vocab_size * d + config.n_layer * block + d + head


def mean_pool_heads(attn, n_kv_head):  # the solution
    pooled = GroupedQueryAttention(dataclasses.replace(attn.config, n_kv_head=n_kv_head), use_rope=attn.rope is not None)
    group = attn.n_head // n_kv_head
    with torch.no_grad():
        for name in ("weight", "bias"):
            if getattr(attn.c_attn, name) is not None:
                q, k, v = getattr(attn.c_attn, name).split(attn.widths)
                k, v = (t.unflatten(0, (n_kv_head, group, -1)).mean(dim=1).flatten(0, 1) for t in (k, v))
                getattr(pooled.c_attn, name).copy_(torch.cat([q, k, v]))
        pooled.c_proj.load_state_dict(attn.c_proj.state_dict())
    return pooled


def not_attempted(*args):
    raise NotImplementedError


def test_rope_scores_passes_whatever_the_prediction():
    for prediction in ex.BEHAVIOURS:
        result = ex.check_rope_scores(prediction, rope_scores)
        assert result, str(result)
        assert "the measurement says 'decays'" in str(result)
        assert ("was right" in str(result)) == (prediction == "decays")
    assert ex.check_rope_scores(" Decays ", rope_scores)


def test_rope_scores_wrong_answers():
    assert "not attempted" in str(ex.check_rope_scores("decays", not_attempted))
    assert "not attempted" in str(ex.check_rope_scores("", not_attempted))
    assert "first write your prediction" in str(ex.check_rope_scores("", rope_scores))
    assert "first write your prediction" in str(ex.check_rope_scores("it goes down", rope_scores))
    same_position = lambda offsets: [64.0 for _ in offsets]
    assert "same position" in str(ex.check_rope_scores("constant", same_position))
    scaled = lambda offsets: [s / 8 for s in rope_scores(offsets)]
    assert "sqrt(64)" in str(ex.check_rope_scores("decays", scaled))
    one_pair = lambda offsets: [64.0 if o == 0 else 2.0 * torch.cos(torch.tensor(float(o))).item() for o in offsets]
    assert "offset 0 is right" in str(ex.check_rope_scores("decays", one_pair))
    assert "list of 1001 numbers" in str(ex.check_rope_scores("decays", lambda offsets: 3.0))


def test_behaviour_reads_a_curve():
    assert ex.behaviour([5.0] * 100) == "constant"
    assert ex.behaviour([10.0 - i / 10 for i in range(100)]) == "decays"
    assert ex.behaviour([1.0 + i for i in range(100)]) == "grows"
    assert ex.behaviour([(-1.0) ** i for i in range(100)]) == "oscillates"


def test_llama_params():
    result = ex.check_llama_params(llama_params)
    assert result and "8,030,261,248" in str(result)
    assert "not attempted" in str(ex.check_llama_params(not_attempted))
    all_heads = lambda c: llama_params(dataclasses.replace(c, n_kv_head=c.n_head))
    assert "n_kv_head heads, not n_head" in str(ex.check_llama_params(all_heads))
    head_twice = lambda c: llama_params(c) + (c.vocab_size * c.n_embd if c.tie_weights else 0)
    assert "count it once" in str(ex.check_llama_params(head_twice))
    no_norms = lambda c: llama_params(c) - (2 * c.n_layer + 1) * c.n_embd
    assert "gain per feature" in str(ex.check_llama_params(no_norms))
    no_bias = lambda c: llama_params(dataclasses.replace(c, bias=False))
    assert "bias=True" in str(ex.check_llama_params(no_bias))
    untied_missing = lambda c: llama_params(dataclasses.replace(c, tie_weights=True))
    assert "of its own" in str(ex.check_llama_params(untied_missing))
    assert "should return an int" in str(ex.check_llama_params(lambda c: float(llama_params(c))))


def test_mean_pool_heads():
    result = ex.check_mean_pool_heads(mean_pool_heads)
    assert result, str(result)
    assert "not attempted" in str(ex.check_mean_pool_heads(not_attempted))

    def strided(attn, n_kv_head):
        pooled = mean_pool_heads(attn, n_kv_head)
        with torch.no_grad():
            pooled.c_attn.weight.copy_(ex._strided_pool(attn, n_kv_head))
        return pooled

    assert "CONSECUTIVE" in str(ex.check_mean_pool_heads(strided))

    def summed(attn, n_kv_head):
        pooled = mean_pool_heads(attn, n_kv_head)
        q_rows = attn.config.n_embd
        with torch.no_grad():
            pooled.c_attn.weight[q_rows:] *= attn.n_head // n_kv_head
        return pooled

    assert "take their mean" in str(ex.check_mean_pool_heads(summed))

    def no_bias(attn, n_kv_head):
        pooled = mean_pool_heads(attn, n_kv_head)
        if pooled.c_attn.bias is not None:
            with torch.no_grad():
                pooled.c_attn.bias.zero_()
        return pooled

    assert "biases" in str(ex.check_mean_pool_heads(no_bias))

    def in_place(attn, n_kv_head):
        with torch.no_grad():
            attn.c_proj.weight.mul_(1.0)
            attn.c_attn.weight.add_(0.0 * attn.c_attn.weight + 1e-3)
        return mean_pool_heads(attn, n_kv_head)

    assert "changed the weights of its input" in str(ex.check_mean_pool_heads(in_place))
    same_heads = lambda attn, n_kv_head: mean_pool_heads(attn, attn.n_kv_head)
    assert "n_kv_head=" in str(ex.check_mean_pool_heads(same_heads))

    def lost_rope(attn, n_kv_head):
        pooled = mean_pool_heads(attn, n_kv_head)
        pooled.rope = None
        return pooled

    assert "use_rope" in str(ex.check_mean_pool_heads(lost_rope))
