"""helpers.tokenization against the references: tiktoken's gpt2 encoding, an independent simple trainer, and bad input."""

import json
from collections import Counter

import pytest
import regex

import helpers
from helpers.tokenization import (
    GPT2_SPLIT_PATTERN,
    BPECore,
    BPETokenizer,
    CharTokenizer,
    build_vocab,
    gpt2_byte_to_unicode,
    train_merges,
)

HARD_STRINGS = [
    "你好，世界！这是一个测试。",
    "日本語のテキスト、カタカナとひらがな",
    "مرحبا بالعالم! هذا اختبار.",
    "שלום עולם, זה מבחן",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs",
    "e\u0301 vs \u00e9, n\u0303, Z\u0351\u0352\u0353algo",
    "line one\r\nline two\r\n\r\n",
    "a  b   c    d     e",
    "\ttab\t\tand trailing spaces   ",
    "   leading spaces and a lone trailing space ",
    "12345 3.14159 1,000,000 2024-06-01 0x1F 007",
    "it's don't we're they've I'm you'll he'd 'tis IT'S Don'T",
    "Mixed: Ünïcödé café naïve résumé — “quotes” ‘single’ … 50€ ¥100 ½ ∑∫√",
    "ⓤⓝⓘⓒⓞⓓⓔ 𝕗𝕒𝕟𝕔𝕪 ＦＵＬＬＷＩＤＴＨ",
    "\u200b zero-width space, \ufeff BOM, \u00a0 no-break space",
    "", " ", "\n", "\n\n\n", "<|endoftext", "|>", "x\r\n\r\n  \t y",
]


@pytest.fixture(scope="module")
def text():
    return helpers.fetch("tinyshakespeare").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def gpt2():
    return BPETokenizer.from_gpt2_files(helpers.fetch("gpt2-vocab.bpe"), helpers.fetch("gpt2-encoder.json"))


@pytest.fixture(scope="module")
def enc():
    return helpers.gpt2_tiktoken()


@pytest.fixture(scope="module")
def small_bpe(text):
    return BPETokenizer().train(text[:50_000], vocab_size=400)


# --- the character tokenizer ---

def test_char_tokenizer_vocabulary_and_round_trip(text):
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == 65 == len(set(text))
    assert tok.chars == sorted(set(text))
    ids = tok.encode(text)
    assert len(ids) == len(text) and max(ids) == 64
    assert tok.decode(ids) == text
    assert [tok.itos[i] for i in tok.encode("First")] == list("First")


def test_char_tokenizer_bad_input(text):
    tok = CharTokenizer.from_text(text)
    with pytest.raises(ValueError, match=r"'é' at position 3"):
        tok.encode("Café")
    with pytest.raises(ValueError, match="expects a str"):
        tok.encode(b"bytes")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, 65])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="must be ints"):
        tok.decode([1.5])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")


# --- parity with tiktoken ---

def test_split_pattern_matches_tiktoken_pattern(text, enc):
    """tiktoken writes GPT-2's pattern with possessive quantifiers; the chunks must be the same."""
    for sample in [text[:200_000], *HARD_STRINGS]:
        assert regex.findall(GPT2_SPLIT_PATTERN, sample) == regex.findall(enc._pat_str, sample)


def test_gpt2_ids_match_tiktoken_on_tiny_shakespeare(text, gpt2, enc):
    ids = gpt2.encode(text)
    assert ids == enc.encode(text)
    assert gpt2.decode(ids) == text


@pytest.mark.parametrize("s", HARD_STRINGS)
def test_gpt2_ids_match_tiktoken_on_hard_strings(s, gpt2, enc):
    ids = gpt2.encode(s)
    assert ids == enc.encode(s)
    assert gpt2.decode(ids) == s == enc.decode(ids)


def test_gpt2_vocabulary_matches_tiktoken(gpt2, enc):
    assert gpt2.vocab_size == enc.n_vocab == 50257
    assert gpt2.special_tokens == {"<|endoftext|>": enc.eot_token}
    for i in [0, 1, 32, 188, 220, 255, 256, 1000, 30000, 50255]:
        assert gpt2.vocab[i] == enc.decode_single_token_bytes(i)
    # merge line i makes token 256 + i, which is tiktoken's rank of the merged bytes
    for (left, right), new_id in list(gpt2.merges.items())[::997]:
        assert enc.encode_single_token(gpt2.vocab[left] + gpt2.vocab[right]) == new_id


def test_byte_to_unicode_is_a_bijection_onto_printable_characters():
    table = gpt2_byte_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"


# --- special tokens, as tiktoken handles them ---

SPECIAL_TEXT = "The end.<|endoftext|>Once upon a time <|foo|>"


@pytest.mark.parametrize("kwargs", [
    {"allowed_special": {"<|endoftext|>"}},
    {"allowed_special": "all"},
    {"disallowed_special": ()},
    {"allowed_special": {"<|foo|>"}, "disallowed_special": ()},
    {"allowed_special": "all", "disallowed_special": ()},
])
def test_special_tokens_encode_like_tiktoken(kwargs, gpt2, enc):
    assert gpt2.encode(SPECIAL_TEXT, **kwargs) == enc.encode(SPECIAL_TEXT, **kwargs)


@pytest.mark.parametrize("kwargs", [
    {},
    {"allowed_special": {"<|foo|>"}},
    {"disallowed_special": {"<|foo|>"}},
    {"disallowed_special": "all"},
])
def test_special_tokens_raise_like_tiktoken(kwargs, gpt2, enc):
    with pytest.raises(ValueError):
        enc.encode(SPECIAL_TEXT, **kwargs)
    with pytest.raises(ValueError, match="allowed_special="):
        gpt2.encode(SPECIAL_TEXT, **kwargs)


def test_special_token_decodes_to_its_text(gpt2, enc):
    ids = enc.encode("a<|endoftext|>b", allowed_special="all")
    assert gpt2.decode(ids) == enc.decode(ids) == "a<|endoftext|>b"


def test_trained_tokenizer_special_tokens(text):
    tok = BPETokenizer().train(text[:20_000], vocab_size=300, special_tokens=["<|endoftext|>"])
    assert tok.vocab_size == 300 and tok.special_tokens == {"<|endoftext|>": 299}
    with pytest.raises(ValueError, match="special token"):
        tok.encode("a<|endoftext|>")
    ids = tok.encode("a<|endoftext|>b", allowed_special="all")
    assert ids[1] == 299 and tok.decode(ids) == "a<|endoftext|>b"
    plain = tok.encode("a<|endoftext|>b", disallowed_special=())
    assert 299 not in plain and tok.decode(plain) == "a<|endoftext|>b"


# --- the core and the full tokenizer ---

def test_tokenizer_is_the_core_plus_special_tokens_and_saving(text):
    core = BPECore().train(text[:20_000], vocab_size=300, special_tokens=["<|endoftext|>"])
    tok = BPETokenizer().train(text[:20_000], vocab_size=300, special_tokens=["<|endoftext|>"])
    assert isinstance(tok, BPECore) and not hasattr(core, "save")
    assert core.merges == tok.merges and core.vocab == tok.vocab and core.special_tokens == tok.special_tokens
    s = "a<|endoftext|>b"
    assert core.encode(s) == tok.encode_ordinary(s) == tok.encode(s, disallowed_special=())
    assert 299 not in core.encode(s) and 299 in tok.encode(s, allowed_special="all")
    assert core.decode(tok.encode(s, allowed_special="all")) == s
    assert repr(core).startswith("BPECore(vocab_size=300,") and repr(tok).startswith("BPETokenizer(vocab_size=300,")


def test_build_vocab_rejects_tables_that_do_not_fit():
    vocab = build_vocab(list(range(256)), {(104, 105): 256}, {"<|x|>": 257})
    assert vocab[256] == b"hi" and vocab[257] == b"<|x|>" and len(vocab) == 258
    with pytest.raises(ValueError, match="base table"):
        build_vocab([*range(255), 0], {}, {})
    with pytest.raises(ValueError, match="reuses an existing one"):
        build_vocab(list(range(256)), {(1, 2): 256, (3, 4): 256}, {})
    with pytest.raises(ValueError, match="already a regular token"):
        build_vocab(list(range(256)), {}, {"<|x|>": 5})
    with pytest.raises(ValueError, match="without gaps"):
        build_vocab(list(range(256)), {}, {"<|x|>": 300})


# --- training ---

def reference_simple_merges(text: str, n_merges: int) -> list[tuple[tuple[int, int], int]]:
    """An independent, slow trainer: recount every pair of every unique chunk after each merge."""
    chunks = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    words = {tuple(chunk.encode("utf-8")): n for chunk, n in chunks.items()}
    learned = []
    for new_id in range(256, 256 + n_merges):
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        best = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then the smallest pair
        learned.append((best, new_id))
        merged = {}
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return learned


def test_fast_trainer_learns_the_same_merges_as_the_simple_one(text):
    sample = text[:30_000]
    fast = train_merges(Counter(regex.findall(GPT2_SPLIT_PATTERN, sample)), 150)
    assert list(fast.items()) == reference_simple_merges(sample, 150)


def test_trained_round_trips(small_bpe, text):
    assert small_bpe.vocab_size == 400 and len(small_bpe.merges) == 144
    for s in [text[-20_000:], *HARD_STRINGS]:
        ids = small_bpe.encode(s)
        assert small_bpe.decode(ids) == s
        assert all(0 <= i < 400 for i in ids)
    # merges compress: fewer tokens than bytes on text like the training text
    assert len(small_bpe.encode(text[-20_000:])) < 0.7 * len(text[-20_000:].encode("utf-8"))


def test_encoding_is_replaying_merges_in_order(small_bpe, text):
    """Lowest-priority-first merging gives the same ids as applying every merge in learning order."""
    for chunk in set(regex.findall(GPT2_SPLIT_PATTERN, text[-5_000:])):
        ids = list(chunk.encode("utf-8"))
        for (left, right), new_id in small_bpe.merges.items():
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == (left, right):
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        assert small_bpe.encode(chunk) == ids


def test_save_load_round_trip(small_bpe, gpt2, text, tmp_path):
    for tok in [small_bpe, gpt2]:
        path = tmp_path / "tok.json"
        tok.save(path)
        loaded = BPETokenizer.load(path)
        assert loaded.merges == tok.merges and loaded.byte_ids == tok.byte_ids
        assert loaded.special_tokens == tok.special_tokens and loaded.vocab == tok.vocab
        assert loaded.encode(text[:30_000]) == tok.encode(text[:30_000])


# --- bad input ---

def test_bad_vocab_sizes(text):
    with pytest.raises(ValueError, match="at least 256"):
        BPETokenizer().train(text[:1000], vocab_size=255)
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer().train(text[:1000], vocab_size=256, special_tokens=["<|endoftext|>"])
    with pytest.raises(ValueError, match="must be an int"):
        BPETokenizer().train(text[:1000], vocab_size=300.0)
    with pytest.raises(ValueError, match=r"allows only 3 merges .* past 259 tokens"):
        BPETokenizer().train("abcd", vocab_size=260)
    assert BPETokenizer().train("abcd", vocab_size=259).vocab_size == 259


def test_bad_encode_and_decode_input(small_bpe):
    with pytest.raises(ValueError, match="expects a str, got bytes"):
        small_bpe.encode(b"To be")
    with pytest.raises(ValueError, match="expects a str, got NoneType"):
        small_bpe.encode(None)
    with pytest.raises(ValueError, match="token id 400 at position 1 is out of range"):
        small_bpe.decode([5, 400])
    with pytest.raises(ValueError, match="out of range"):
        small_bpe.decode([-1])
    with pytest.raises(ValueError, match="must be ints"):
        small_bpe.decode(["a"])
    with pytest.raises(ValueError, match="sequence of int"):
        small_bpe.decode("abc")
    with pytest.raises(ValueError, match="allowed_special must be"):
        small_bpe.encode("hi", allowed_special="<|endoftext|>")
    with pytest.raises(ValueError, match="disallowed_special must be"):
        small_bpe.encode("hi", disallowed_special="none")


def test_error_messages_say_how_to_fix(small_bpe, gpt2):
    """The whole message, with its fix, of each error the lesson used to show in a tour."""
    with pytest.raises(ValueError, match=r"pass allowed_special=\{'<\|endoftext\|>'\}; .* pass disallowed_special=\(\)"):
        gpt2.encode("hi <|endoftext|>")
    with pytest.raises(ValueError, match="ask for a smaller vocab_size or train on more text"):
        BPETokenizer().train("abab", vocab_size=300)
    with pytest.raises(ValueError, match=r"valid ids are 0\.\.399"):
        small_bpe.decode([5, 400])
    with pytest.raises(ValueError, match=r"e\.g\. data\.decode\('utf-8'\)"):
        small_bpe.encode(b"To be")
    with pytest.raises(ValueError, match="build the tokenizer from a text that contains it"):
        CharTokenizer.from_text("abc").encode("naïve")


def test_decode_accepts_tensors(small_bpe):
    import torch

    ids = small_bpe.encode("To be, or not to be")
    assert small_bpe.decode(torch.tensor(ids)) == "To be, or not to be"


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a tokenizer file"):
        BPETokenizer.load(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="not a tokenizer file"):
        BPETokenizer.load(bad)


def test_load_rejects_tables_that_do_not_fit(small_bpe, tmp_path):
    path = tmp_path / "tok.json"
    small_bpe.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    state["merges"][5][2] = state["merges"][4][2]  # two merges that make the same id
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="not a tokenizer file .* reuses an existing one"):
        BPETokenizer.load(path)
