"""Lesson 09's exercise checkers pass the solutions and fail typical wrong answers with a useful hint."""

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from helpers.exercises import lesson09 as ex


def min_p_filter(logits, min_p):  # the solution
    probs = logits.softmax(dim=-1)
    return logits.masked_fill(probs < min_p * probs.max(dim=-1, keepdim=True).values, float("-inf"))


def apply_repetition_penalty(logits, previous_ids, penalty):  # the solution
    seen = logits.gather(-1, previous_ids)
    return logits.scatter(-1, previous_ids, torch.where(seen > 0, seen / penalty, seen * penalty))


def kv_cache_bytes(config, batch_size, seq_len, bytes_per_value):  # the solution
    return 2 * config.n_layer * batch_size * seq_len * config.n_embd * bytes_per_value


def not_attempted(*args):
    raise NotImplementedError


def test_repetition_penalty_solution_matches_hugging_face():
    logits = torch.randn(3, 30, generator=torch.Generator().manual_seed(0)) * 3
    previous = torch.randint(0, 30, (3, 10), generator=torch.Generator().manual_seed(1))
    want = RepetitionPenaltyLogitsProcessor(1.4)(previous, logits.clone())
    torch.testing.assert_close(apply_repetition_penalty(logits, previous, 1.4), want)
    torch.testing.assert_close(ex.repetition_penalty_reference(logits, previous, 1.4), want)


def test_min_p_filter():
    assert ex.check_min_p_filter(min_p_filter)
    assert "not attempted" in str(ex.check_min_p_filter(not_attempted))
    absolute = lambda logits, min_p: logits.masked_fill(logits.softmax(-1) < min_p, float("-inf"))
    assert "relative" in str(ex.check_min_p_filter(absolute))
    on_logits = lambda logits, m: logits.masked_fill(logits < m * logits.max(-1, keepdim=True).values, float("-inf"))
    assert "compare probabilities" in str(ex.check_min_p_filter(on_logits))
    probabilities = lambda logits, m: min_p_filter(logits, m).softmax(-1)
    assert "returned probabilities" in str(ex.check_min_p_filter(probabilities))

    def in_place(logits, min_p):
        probs = logits.softmax(-1)
        return logits.masked_fill_(probs < min_p * probs.max(-1, keepdim=True).values, float("-inf"))

    assert "in place" in str(ex.check_min_p_filter(in_place))


def test_repetition_penalty():
    assert ex.check_repetition_penalty(apply_repetition_penalty)
    assert "not attempted" in str(ex.check_repetition_penalty(not_attempted))

    def divide_all(logits, previous_ids, penalty):
        return logits.scatter(-1, previous_ids, logits.gather(-1, previous_ids) / penalty)

    assert "MORE likely" in str(ex.check_repetition_penalty(divide_all))

    def per_occurrence(logits, previous_ids, penalty):
        out = logits.clone()
        for row, ids in enumerate(previous_ids.tolist()):
            for i in ids:
                out[row, i] = out[row, i] / penalty if out[row, i] > 0 else out[row, i] * penalty
        return out

    assert "once per occurrence" in str(ex.check_repetition_penalty(per_occurrence))

    def in_place(logits, previous_ids, penalty):
        seen = logits.gather(-1, previous_ids)
        return logits.scatter_(-1, previous_ids, torch.where(seen > 0, seen / penalty, seen * penalty))

    assert "in place" in str(ex.check_repetition_penalty(in_place))


def test_kv_cache_bytes():
    result = ex.check_kv_cache_bytes(kv_cache_bytes)
    assert result and "75.5 MB" in str(result)
    assert "not attempted" in str(ex.check_kv_cache_bytes(not_attempted))
    keys_only = lambda c, b, t, s: kv_cache_bytes(c, b, t, s) // 2
    assert "keys AND values" in str(ex.check_kv_cache_bytes(keys_only))
    one_layer = lambda c, b, t, s: kv_cache_bytes(c, b, t, s) // c.n_layer
    assert "n_layer blocks" in str(ex.check_kv_cache_bytes(one_layer))
    values = lambda c, b, t, s: kv_cache_bytes(c, b, t, s) // s
    assert "bytes_per_value" in str(ex.check_kv_cache_bytes(values))
    one_head = lambda c, b, t, s: kv_cache_bytes(c, b, t, s) // c.n_head
    assert "n_head heads" in str(ex.check_kv_cache_bytes(one_head))


def argmax_fraction(model, idx, steps, top_p, generator):  # the solution
    from helpers.generation import sample_next

    hits = 0
    with torch.no_grad():
        for _ in range(steps):
            logits = model(idx[:, -model.config.block_size:])[0][:, -1]
            token = sample_next(logits, 1.0, top_p=top_p, generator=generator)
            hits += int(token.item() == logits.argmax(dim=-1).item())
            idx = torch.cat([idx, token[:, None]], dim=1)
    return hits / steps


def test_top_p_argmax():
    from helpers.attention import GPTConfig
    from helpers.model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        model.lm_head.weight.mul_(10)  # sharper distributions, as a trained model has in places
    result = ex.check_top_p_argmax(argmax_fraction, 0.5, model)
    assert result and "most likely token was drawn" in str(result)
    assert "write your prediction first" in str(ex.check_top_p_argmax(argmax_fraction, None, model))
    assert "not attempted" in str(ex.check_top_p_argmax(not_attempted, 0.5, model))

    def never_appends(model, idx, steps, top_p, generator):  # samples every step from the same prompt
        from helpers.generation import sample_next

        with torch.no_grad():
            logits = model(idx)[0][:, -1]
            hits = [sample_next(logits, 1.0, top_p=top_p, generator=generator).item() == logits.argmax().item()
                    for _ in range(steps)]
        return sum(hits) / steps

    assert "append the sampled token" in str(ex.check_top_p_argmax(never_appends, 0.5, model))
