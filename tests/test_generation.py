"""Lesson 09: sampling rules against Hugging Face's, the KV cache against full forward passes, generate and stream."""

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from helpers.generation import (
    KVCache,
    TextDecoder,
    generate,
    next_token_probs,
    sample_next,
    stream,
    stream_text,
    top_k_filter,
    top_p_filter,
)
from helpers.model import GPT, GPTConfig
from helpers.tokenization import CharTokenizer

CONFIG = GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight the other tests for a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    model = GPT(CONFIG)
    with torch.no_grad():  # larger weights than GPT-2's init: peaked distributions, no near-ties for argmax
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    return model.eval()


@torch.no_grad()
def greedy_reference(model: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    """The plainest loop: a full forward pass over the last block_size tokens, argmax, append."""
    for _ in range(n):
        logits, _ = model(idx[:, -model.config.block_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx


# --- the KV cache --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("prompt_len", [1, 5, 15, 16, 23])
def test_cached_generation_equals_uncached_and_the_plain_loop(model, batch_size, prompt_len):
    prompt = torch.randint(0, CONFIG.vocab_size, (batch_size, prompt_len), generator=torch.Generator().manual_seed(prompt_len))
    n = 30  # every case runs past block_size=16, so the window slides
    cached = generate(model, prompt, n, temperature=0)
    uncached = generate(model, prompt, n, temperature=0, use_cache=False)
    assert cached.shape == (batch_size, prompt_len + n)
    assert torch.equal(cached[:, :prompt_len], prompt)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, greedy_reference(model, prompt, n))


def test_cached_logits_match_full_forward_step_by_step(model):
    ids = torch.randint(0, CONFIG.vocab_size, (2, CONFIG.block_size), generator=torch.Generator().manual_seed(1))
    caches = KVCache.for_model(model, batch_size=2)
    with torch.no_grad():
        prefill, _ = model(ids[:, :4], kv_cache=caches)
        torch.testing.assert_close(prefill, model(ids[:, :4])[0], atol=1e-5, rtol=1e-5)
        for t in range(4, CONFIG.block_size):
            step, _ = model(ids[:, t:t + 1], kv_cache=caches)
            full, _ = model(ids[:, :t + 1])
            torch.testing.assert_close(step[:, -1], full[:, -1], atol=1e-5, rtol=1e-5)
    assert caches[0].length == CONFIG.block_size


def test_sampling_with_the_same_generator_is_the_same_with_or_without_cache(model):
    prompt = torch.randint(0, CONFIG.vocab_size, (2, 20), generator=torch.Generator().manual_seed(2))  # > block_size
    settings = dict(temperature=0.9, top_k=10, top_p=0.9)
    a = generate(model, prompt, 25, **settings, generator=torch.Generator().manual_seed(5))
    b = generate(model, prompt, 25, **settings, use_cache=False, generator=torch.Generator().manual_seed(5))
    c = generate(model, prompt, 25, **settings, generator=torch.Generator().manual_seed(5))
    d = generate(model, prompt, 25, **settings, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, d)


def test_kv_cache_rejects_overflow_and_a_wrong_batch(model):
    caches = KVCache.for_model(model, batch_size=2, max_len=6)
    assert len(caches) == CONFIG.n_layer and caches[0].k.shape == (2, CONFIG.n_head, 6, CONFIG.head_size)
    with torch.no_grad():
        model(torch.zeros(2, 4, dtype=torch.long), kv_cache=caches)
        with pytest.raises(ValueError, match="cannot take 3 more"):
            model(torch.zeros(2, 3, dtype=torch.long), kv_cache=caches)
    k = torch.zeros(1, CONFIG.n_head, 1, CONFIG.head_size)
    with pytest.raises(ValueError, match="do not fit a cache"):
        KVCache(2, CONFIG.n_head, CONFIG.head_size, 6).update(k, k)
    with pytest.raises(ValueError, match="max_len=17"):
        KVCache.for_model(model, 1, max_len=17)


# --- sliding past block_size: keep_when_full -------------------------------------------------------

@torch.no_grad()
def greedy_with_refills(model: GPT, idx: torch.Tensor, n: int, keep: int) -> torch.Tensor:
    """By hand, without a cache: the window the model reads grows to block_size tokens; one more token and it
    restarts from its last `keep` tokens."""
    start = max(0, idx.size(1) - model.config.block_size)
    contexts = []
    for _ in range(n):
        if idx.size(1) - start > model.config.block_size:
            start = idx.size(1) - keep
        contexts.append(idx.size(1) - start)
        logits, _ = model(idx[:, start:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx, contexts


@pytest.mark.parametrize("keep", [1, 5, 8, 15, 16])
def test_keep_when_full_is_exact_until_the_window_fills(model, keep):
    prompt = torch.randint(0, CONFIG.vocab_size, (2, 4), generator=torch.Generator().manual_seed(keep))
    n = CONFIG.block_size - 4 + 1  # the last token is chosen from a full window; the window never slides
    assert torch.equal(generate(model, prompt, n, temperature=0, keep_when_full=keep),
                       generate(model, prompt, n, temperature=0, use_cache=False))


@pytest.mark.parametrize("keep", [1, 5, 8, 15, 16])
def test_keep_when_full_reads_the_windows_of_a_loop_by_hand(model, keep):
    prompt = torch.randint(0, CONFIG.vocab_size, (2, CONFIG.block_size), generator=torch.Generator().manual_seed(keep))
    n = 40  # the window is full from the start, so it slides in the first step
    expected, contexts = greedy_with_refills(model, prompt, n, keep)
    period = CONFIG.block_size - keep + 1
    assert contexts[:1 + period] == [CONFIG.block_size] + list(range(keep, CONFIG.block_size + 1))  # hand-checked
    assert torch.equal(generate(model, prompt, n, temperature=0, keep_when_full=keep), expected)
    assert torch.equal(generate(model, prompt, n, temperature=0, keep_when_full=keep, use_cache=False), expected)
    if keep == CONFIG.block_size:  # keeping the whole window is the exact slide, the default
        assert torch.equal(expected, generate(model, prompt, n, temperature=0))
    else:  # a shorter context gives other tokens with these random weights
        assert not torch.equal(expected, generate(model, prompt, n, temperature=0))


def test_keep_when_full_runs_few_tokens_per_step(model):
    """The point of the option: once full, the exact slide runs block_size tokens per step, half a window about 2."""
    fed = []
    hook = model.register_forward_pre_hook(lambda module, args, kwargs: fed.append(args[0].size(1)), with_kwargs=True)
    try:
        prompt = torch.zeros(1, CONFIG.block_size, dtype=torch.long)
        for keep in (None, CONFIG.block_size // 2):
            fed.clear()
            generate(model, prompt, 91, temperature=0, keep_when_full=keep)
            steps = fed[1:]  # after the prefill of the prompt
            if keep is None:
                assert steps == [CONFIG.block_size] * 90
            else:  # a refill of 8 tokens, then 8 one-token steps: 16 tokens per 9 new tokens
                assert steps == ([keep] + [1] * (CONFIG.block_size - keep)) * 10
    finally:
        hook.remove()


# --- the sampling rules ----------------------------------------------------------------------------

def test_filters_match_hugging_face():
    logits = torch.randn(5, 300, generator=torch.Generator().manual_seed(0)) * 4
    for k in (1, 7, 300):
        assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(k)(None, logits))
    for p in (0.05, 0.5, 0.9, 0.999):
        assert torch.equal(top_p_filter(logits, p), TopPLogitsWarper(p)(None, logits))
    want = TopPLogitsWarper(0.8)(None, TopKLogitsWarper(40)(None, TemperatureLogitsWarper(1.5)(None, logits))).softmax(-1)
    torch.testing.assert_close(next_token_probs(logits, 1.5, top_k=40, top_p=0.8), want)


def test_temperature_zero_is_argmax_and_one_is_softmax():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(1))
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(-1))
    torch.testing.assert_close(next_token_probs(logits, 1.0), torch.softmax(logits, -1))


def test_top_k_never_samples_outside_the_k_best():
    logits = torch.randn(1, 100, generator=torch.Generator().manual_seed(2))
    draws = sample_next(logits.expand(5000, -1), temperature=1.5, top_k=6, generator=torch.Generator().manual_seed(0))
    best = set(logits[0].topk(6).indices.tolist())
    assert set(draws.tolist()) == best  # never outside, and each of the 6 is drawn


def nucleus(probs: np.ndarray, p: float) -> set[int]:
    """The smallest set of most likely tokens whose probabilities add up to at least p (in float64)."""
    order = np.argsort(-probs)
    size = int(np.searchsorted(np.cumsum(probs[order]), p)) + 1
    return set(order[:size].tolist())


@pytest.mark.parametrize("p", [0.3, 0.75, 0.95])
def test_top_p_never_samples_outside_the_nucleus(p):
    logits = torch.randn(1, 60, generator=torch.Generator().manual_seed(3)) * 2
    allowed = nucleus(torch.softmax(logits[0].double(), -1).numpy(), p)
    draws = sample_next(logits.expand(20000, -1), top_p=p, generator=torch.Generator().manual_seed(1))
    drawn = set(draws.tolist())
    assert drawn <= allowed
    assert len(drawn) >= len(allowed) - 1  # the least likely member may be rare, the others all show up


def test_multinomial_frequencies_approach_the_probabilities():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    draws = sample_next(logits.expand(40000, -1), temperature=0.7, generator=torch.Generator().manual_seed(4))
    frequencies = torch.bincount(draws, minlength=4) / len(draws)
    torch.testing.assert_close(frequencies, torch.softmax(logits[0] / 0.7, -1), atol=0.01, rtol=0)


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-0.1), "temperature=-0.1"),
    (dict(temperature=float("nan")), "temperature=nan"),
    (dict(top_k=0), "top_k=0"),
    (dict(top_k=38), "top_k=38: it must be an integer from 1 to the vocabulary size 37"),
    (dict(top_p=0.0), r"top_p=0.0: it must lie in \(0, 1\]"),
    (dict(top_p=1.01), "top_p=1.01"),
    (dict(max_new_tokens=-1), "max_new_tokens=-1"),
    (dict(idx=torch.zeros(1, 0, dtype=torch.long)), "the prompt is empty"),
    (dict(idx=torch.zeros(3, dtype=torch.long)), r"got \(3,\); for one prompt write torch.tensor\(\[ids\]\)"),
    (dict(keep_when_full=0), "keep_when_full=0: it must be an integer from 1 to block_size=16"),
    (dict(keep_when_full=17), "keep_when_full=17: it must be an integer from 1 to block_size=16"),
    (dict(keep_when_full=8.0), r"keep_when_full=8.0: .* or None to slide exactly"),
    (dict(keep_when_full=True), "keep_when_full=True"),
])
def test_bad_input_raises_a_clear_value_error_at_the_call(model, kwargs, message):
    args = dict(idx=torch.zeros(1, 3, dtype=torch.long), max_new_tokens=5)
    args.update(kwargs)
    idx, n = args.pop("idx"), args.pop("max_new_tokens")
    with pytest.raises(ValueError, match=message):
        generate(model, idx, n, **args)
    with pytest.raises(ValueError, match=message):
        stream(model, idx, n, **args)  # raised at the call, not at the first token


# --- generate and stream ---------------------------------------------------------------------------

def test_eos_stops_one_prompt_early_and_pads_finished_rows(model):
    prompt = torch.randint(0, CONFIG.vocab_size, (1, 4), generator=torch.Generator().manual_seed(7))
    free = generate(model, prompt, 12, temperature=0)[0, 4:].tolist()
    eos = free[3]
    first = free.index(eos)
    out = generate(model, prompt, 12, temperature=0, eos_id=eos)
    assert out[0, 4:].tolist() == free[:first + 1]  # stops right after the first eos
    both = torch.cat([prompt, torch.randint(0, CONFIG.vocab_size, (1, 4), generator=torch.Generator().manual_seed(8))])
    free_rows = generate(model, both, 12, temperature=0)
    out = generate(model, both, 12, temperature=0, eos_id=eos)
    for row, tokens in zip(out[:, 4:].tolist(), free_rows[:, 4:].tolist()):
        if eos in tokens:
            stop = tokens.index(eos)
            assert row[:stop + 1] == tokens[:stop + 1] and set(row[stop:]) == {eos}
        else:
            assert out.size(1) == 16 and row == tokens


def test_stream_yields_one_batch_column_per_step_and_restores_the_mode(model):
    model.train()
    try:
        steps = stream(model, torch.zeros(2, 3, dtype=torch.long), 4, temperature=0)
        first = next(steps)
        assert first.shape == (2,) and first.dtype == torch.long
        assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()  # nothing leaks while it waits
        assert len(list(steps)) == 3
        assert model.training  # the mode is back once the stream ends
        assert torch.equal(generate(model, torch.zeros(2, 3, dtype=torch.long), 0), torch.zeros(2, 3, dtype=torch.long))
    finally:
        model.eval()


def test_text_decoder_keeps_multibyte_characters_whole():
    from helpers.downloads import gpt2_tiktoken

    encoding = gpt2_tiktoken()
    text = "naïve 🌙 façade — 日本語"
    ids = encoding.encode(text)
    decoder = TextDecoder(encoding)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text == encoding.decode(ids)
    assert all("\ufffd" not in piece for piece in pieces)
    assert any(encoding.decode([i]) != "" and "\ufffd" in encoding.decode([i]) for i in ids)  # the naive way breaks


def test_stream_text_stops_at_the_eos_token_without_printing_it(model):
    tokenizer = CharTokenizer("\n abcdefghijklmnopqrstuvwxyz,.:;!?'ABC"[:CONFIG.vocab_size])
    text = "".join(stream_text(model, tokenizer, "ab", 30, temperature=0, eos_id=None))
    continuation = generate(model, torch.tensor([tokenizer.encode("ab")]), 30, temperature=0)[0, 2:].tolist()
    assert text == tokenizer.decode(continuation)
    eos = continuation[2]
    stopped = "".join(stream_text(model, tokenizer, "ab", 30, temperature=0, eos_id=eos))
    assert stopped == tokenizer.decode(continuation[:continuation.index(eos)])
    with pytest.raises(ValueError, match="top_k"):
        stream_text(model, tokenizer, "ab", 5, top_k=0)


def test_decoding_layout_changes_strides_not_values_or_tokens(model):
    import copy

    from helpers.generation import decoding_layout

    fast = decoding_layout(copy.deepcopy(model))
    assert fast.lm_head.weight is fast.transformer.wte.weight  # still tied
    for (name, p), (_, q) in zip(model.named_parameters(), fast.named_parameters()):
        assert torch.equal(p, q), name
    c_fc = fast.transformer.h[0].mlp.c_fc.weight
    assert c_fc.shape == (4 * CONFIG.n_embd, CONFIG.n_embd) and c_fc.stride() == (1, 4 * CONFIG.n_embd)
    assert decoding_layout(fast) is fast and c_fc.stride() == (1, 4 * CONFIG.n_embd)  # a second call changes nothing
    prompt = torch.randint(0, CONFIG.vocab_size, (2, 5), generator=torch.Generator().manual_seed(9))
    assert torch.equal(generate(fast, prompt, 30, temperature=0), generate(model, prompt, 30, temperature=0))
    with torch.no_grad():
        torch.testing.assert_close(fast(prompt)[0], model(prompt)[0], atol=1e-5, rtol=1e-5)


def test_generate_on_a_cpu_stores_the_weights_in_decoding_layout_and_they_train_alike():
    import copy

    torch.manual_seed(0)
    plain = GPT(CONFIG)
    converted = copy.deepcopy(plain)
    with torch.inference_mode():  # the strictest caller: the new weights must still be trainable tensors
        generate(converted, torch.zeros(1, 3, dtype=torch.long), 2)  # on a CPU: converted in place, and left so
    assert plain.transformer.h[0].mlp.c_fc.weight.is_contiguous()
    assert converted.transformer.h[0].mlp.c_fc.weight.stride() == (1, 4 * CONFIG.n_embd)
    assert converted.lm_head.weight is converted.transformer.wte.weight and converted.lm_head.weight.stride() == (1, 37)
    x, y = torch.randint(0, CONFIG.vocab_size, (2, 4, CONFIG.block_size), generator=torch.Generator().manual_seed(4))
    losses = {}
    for name, m in (("plain", plain), ("converted", converted)):  # the same AdamW steps: the same numbers
        m.train()
        optimizer = torch.optim.AdamW(m.parameters(), lr=1e-2)
        losses[name] = []
        for _ in range(3):
            _, loss = m(x, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses[name].append(loss.item())
    torch.testing.assert_close(losses["plain"], losses["converted"], atol=1e-5, rtol=1e-5)
    for (name, p), q in zip(plain.named_parameters(), converted.parameters()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-5, msg=name)


def test_a_padded_vocabulary_never_yields_an_id_the_tokenizer_lacks():
    """GPT-2 data pads vocab_size from 50,257 to 50,304; the extra ids must never be drawn, however likely."""
    from helpers.generation import stream_text

    tokenizer = CharTokenizer(sorted(set("abcdefgh ")))  # 9 characters; the model has 16 ids
    model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0))
    forward = model.forward

    def padded_ids_win(idx, targets=None, kv_cache=None):
        logits, loss = forward(idx, targets, kv_cache=kv_cache)
        return logits + torch.cat([torch.zeros(9), torch.full((7,), 50.0)]), loss  # ids 9..15 far ahead

    model.forward = padded_ids_win
    for settings in (dict(temperature=0), dict(temperature=2.0, generator=torch.Generator().manual_seed(0))):
        text = "".join(stream_text(model, tokenizer, "abc", 20, **settings))
        assert len(text) == 20 and set(text) <= set("abcdefgh ")
    ids = generate(model, torch.tensor([[0, 1]]), 10, temperature=1.0, vocab_size=9)
    assert int(ids.max()) < 9
    assert int(generate(model, torch.tensor([[0, 1]]), 10, temperature=0).max()) >= 9  # without the limit: the padding


def test_training_after_generate_matches_training_without_it_with_fused_adamw():
    """generate stores the weights in decoding order on a CPU; the next training forward puts them back, so an
    optimizer whose running averages were made before (fused AdamW reads them as flat memory) stays right."""
    import copy

    from helpers.generation import decoding_layout, training_layout
    from helpers.training import configure_optimizer, train_step

    torch.manual_seed(0)
    plain = GPT(CONFIG)
    generated = copy.deepcopy(plain)
    batch = [tuple(torch.randint(0, CONFIG.vocab_size, (2, 4, CONFIG.block_size), generator=torch.Generator().manual_seed(5)))]
    optimizers = {id(m): configure_optimizer(m, 0.1, 1e-2, (0.9, 0.99), "cpu") for m in (plain, generated)}
    assert optimizers[id(plain)].defaults["fused"]
    for m in (plain, generated):
        train_step(m, optimizers[id(m)], batch)  # the running averages now exist, in (out, in) row order
    generate(generated, torch.zeros(1, 3, dtype=torch.long), 2)
    assert generated.transformer.h[0].mlp.c_fc.weight.stride() == (1, 4 * CONFIG.n_embd)
    losses = {id(m): [train_step(m, optimizers[id(m)], batch)[0].item() for _ in range(3)] for m in (plain, generated)}
    assert losses[id(plain)] == losses[id(generated)]
    assert generated.transformer.h[0].mlp.c_fc.weight.is_contiguous()  # back in row order for training
    for p, q in zip(plain.parameters(), generated.parameters()):
        assert torch.equal(p, q)
    assert training_layout(decoding_layout(generated)) is generated and generated.lm_head.weight.is_contiguous()
