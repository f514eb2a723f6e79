"""helpers.tokenization against the references: tiktoken's gpt2 encoding, an independent simple trainer, and bad input."""

import json
import random
import sys
import tracemalloc
from collections import Counter, defaultdict

import pytest
import regex

import helpers
from helpers.tokenization import (
    GPT2_ASCII_PATTERN,
    GPT2_SPLIT_PATTERN,
    BPECore,
    BPETokenizer,
    CharTokenizer,
    StreamingMixin,
    build_vocab,
    count_chunks,
    gpt2_byte_to_unicode,
    merge_and_count,
    merge_by_priority,
    split_chunks,
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



def random_ascii_texts(seed: int, n: int) -> list[str]:
    """Strings of every ASCII character, with the contractions, digits, runs of spaces and line ends that the
    pattern treats specially."""
    rng = random.Random(seed)
    pieces = [chr(c) for c in range(128)] + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "  ", "   ", "\r\n",
                                            " \n", "\t ", "12", " 3", "ab", " cd", "EF", "!?", " ..."]
    return ["".join(rng.choices(pieces, k=rng.randint(0, 40))) for _ in range(n)]


def test_ascii_pattern_splits_like_the_unicode_pattern(text):
    """split_chunks takes Python's re with GPT2_ASCII_PATTERN for ASCII text: the chunks must be regex's."""
    for sample in [text, *random_ascii_texts(0, 3_000), *[s for s in HARD_STRINGS if s.isascii()]]:
        assert GPT2_ASCII_PATTERN.findall(sample) == regex.findall(GPT2_SPLIT_PATTERN, sample)
        assert split_chunks(sample) == regex.findall(GPT2_SPLIT_PATTERN, sample)
    assert split_chunks("naïve  café's 42") == regex.findall(GPT2_SPLIT_PATTERN, "naïve  café's 42")

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

def reference_simple_merges(text: str, n_merges: int, greatest_bytes: bool = False) -> list[tuple[tuple[int, int], int]]:
    """An independent, slow trainer: recount every pair of every unique chunk after each merge. Ties go to the
    smallest pair of ids, or with greatest_bytes to the pair whose byte strings compare greatest."""
    chunks = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    words = {tuple(chunk.encode("utf-8")): n for chunk, n in chunks.items()}
    spelled = {i: bytes([i]) for i in range(256)}
    learned = []
    for new_id in range(256, 256 + n_merges):
        counts = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += n
        top = max(counts.values())
        tied = sorted(p for p in counts if counts[p] == top)
        best = max(tied, key=lambda p: (spelled[p[0]], spelled[p[1]])) if greatest_bytes else tied[0]
        spelled[new_id] = spelled[best[0]] + spelled[best[1]]
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



def test_merge_and_count_changes_are_the_difference_of_the_pair_counts():
    """The changes that merge_and_count records are the weighted pair counts after the merge minus those before,
    the merged pair aside, also where the pair overlaps itself (a a a) or follows itself (a b a b)."""
    rng = random.Random(0)
    for _ in range(2_000):
        ids = rng.choices([1, 2, 3], k=rng.randint(0, 12))
        pair, weight = (rng.choice([1, 2]), rng.choice([1, 2, 3])), rng.randint(1, 5)
        changes = defaultdict(int)
        new = merge_and_count(ids, pair, 9, weight, changes)
        before, after = Counter(zip(ids, ids[1:])), Counter(zip(new, new[1:]))
        expected = {p: weight * (after[p] - before[p]) for p in before | after if p != pair}
        assert {p: n for p, n in changes.items() if n and p != pair} == {p: n for p, n in expected.items() if n}
        assert pair not in after


@pytest.mark.parametrize("tie_break", ["smallest_ids", "greatest_bytes"])
def test_fast_trainer_matches_the_reference_on_repeats_and_ties(tie_break):
    """Texts of few letters: pairs that overlap themselves (aaaa), many ties, and chunks that run out of pairs."""
    rng = random.Random(1)
    for _ in range(60):
        sample = "".join(rng.choices(["a", "b", "c", "aa", "ab", " a", " b", "\n"], k=rng.randint(1, 80)))
        n_merges = rng.randint(1, 12)
        try:
            expected = reference_simple_merges(sample, n_merges, greatest_bytes=tie_break == "greatest_bytes")
        except ValueError:  # the reference ran out of pairs: so must the trainer
            with pytest.raises(ValueError, match="the text allows only"):
                train_merges(Counter(regex.findall(GPT2_SPLIT_PATTERN, sample)), n_merges, tie_break=tie_break)
            continue
        fast = train_merges(Counter(regex.findall(GPT2_SPLIT_PATTERN, sample)), n_merges, tie_break=tie_break)
        assert list(fast.items()) == expected

def test_tie_break_rules():
    """Ties go to the smallest ids by default; tie_break="greatest_bytes" picks the greatest pair of byte strings."""
    tied = Counter({"ab": 1, "zy": 1, "zx": 1})
    assert train_merges(tied, 1) == {(97, 98): 256}
    assert train_merges(tied, 1, tie_break="greatest_bytes") == {(122, 121): 256}
    # after "aa" -> 256, "aa"+"c" and "b"+"c" tie: the bytes decide, b"b" > b"aa", though the id 98 < 256
    assert train_merges(Counter({"aac": 2, "bc": 2, "aa": 1}), 2, tie_break="greatest_bytes") == {(97, 97): 256, (98, 99): 257}
    with pytest.raises(ValueError, match="tie_break must be 'smallest_ids' or 'greatest_bytes', got 'largest'"):
        train_merges(tied, 1, tie_break="largest")


def test_greatest_bytes_rule_matches_an_independent_trainer(text):
    sample = text[:30_000]
    fast = train_merges(Counter(regex.findall(GPT2_SPLIT_PATTERN, sample)), 150, tie_break="greatest_bytes")
    assert list(fast.items()) == reference_simple_merges(sample, 150, greatest_bytes=True)
    default = BPETokenizer().train(sample, 406)
    other = BPETokenizer().train(sample, 406, tie_break="greatest_bytes")
    assert other.merges == fast and other.merges != default.merges  # the sample has ties, and the rules differ on them


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



def replay_lowest_first(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """The plain form of merge_by_priority: find the pair of lowest priority, merge all its copies, repeat."""
    while True:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            return ids
        best = min(pairs, key=merges.get)
        out, i = [], 0
        while i < len(ids):
            if tuple(ids[i:i + 2]) == best:
                out.append(merges[best])
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out


def test_merge_by_priority_equals_merging_every_copy_of_the_lowest_pair(small_bpe):
    """merge_by_priority merges one copy at a time and looks up only the neighbours' priorities: the same ids."""
    repeats = BPETokenizer().train("aaaa abab aaa ba " * 50 + "abba aab " * 20, vocab_size=266)
    rng = random.Random(2)
    for tokenizer, alphabet in [(repeats, b"ab "), (small_bpe, b"aeht nsor")]:
        for _ in range(1_000):
            ids = list(bytes(rng.choices(alphabet, k=rng.randint(0, 20))))
            assert merge_by_priority(ids, tokenizer.merges) == replay_lowest_first(ids, tokenizer.merges)


@pytest.mark.parametrize("tie_break", ["smallest_ids", "greatest_bytes"])
def test_every_merged_token_is_rebuilt_from_its_own_bytes(tie_break, gpt2, text):
    """What makes encode_chunks' shortcut (a chunk that is a token is that token) exact: replaying the merges on a
    merged token's bytes gives the token, for GPT-2's merges and for merges that our trainer learns."""
    trained = BPETokenizer().train(text[:200_000], vocab_size=1_000, tie_break=tie_break)
    for tokenizer in [trained, gpt2]:
        base_ids = bytes(tokenizer.byte_ids)
        for token in tokenizer.merges.values():
            assert merge_by_priority(list(tokenizer.vocab[token].translate(base_ids)), tokenizer.merges) == [token]


def test_encode_is_merge_by_priority_on_each_chunk(small_bpe, gpt2, text):
    """encode's cache, its shortcut for whole tokens and its byte table change nothing: each chunk's ids are
    merge_by_priority's on its bytes mapped to base ids."""
    for tokenizer in [small_bpe, gpt2]:
        tokenizer._cache.clear()
        for sample in [text[-20_000:], *HARD_STRINGS]:
            expected = []
            for chunk in regex.findall(GPT2_SPLIT_PATTERN, sample):
                expected += merge_by_priority([tokenizer.byte_ids[b] for b in chunk.encode("utf-8")], tokenizer.merges)
            assert tokenizer.encode(sample) == expected

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
    with pytest.raises(ValueError, match="bad.json is not a tokenizer written by BPETokenizer.save"):
        BPETokenizer.load(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="bad.json is not a tokenizer written by BPETokenizer.save"):
        BPETokenizer.load(bad)
    with pytest.raises(ValueError, match="the data is not a tokenizer written by BPETokenizer.save"):
        BPETokenizer.from_dict([1, 2])


def test_load_rejects_tables_that_do_not_fit(small_bpe, tmp_path):
    path = tmp_path / "tok.json"
    small_bpe.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    state["merges"][5][2] = state["merges"][4][2]  # two merges that make the same id
    path.write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="not a tokenizer written by BPETokenizer.save .* reuses an existing one"):
        BPETokenizer.load(path)


# --- special tokens in training ---

STORIES = ["Tom has a red ball.", "The cat sat on the mat!", "Anna reads a book.", "We swim in the sea?", "Tom and Anna play."]


def learned_strings(tok: BPETokenizer) -> list[bytes]:
    return [tok.vocab[i] for i in sorted(tok.merges.values())]


def test_special_tokens_are_boundaries_in_training():
    """<|endoftext|> is the only place where '<', '|' and '>' occur: trained with it as a special token, no learned
    token holds one of them; trained without, the merges spell out the separator and glue it to punctuation."""
    corpus = "<|endoftext|>".join(STORIES * 40)
    assert not set("<|>") & set("".join(STORIES))
    bounded = BPETokenizer().train(corpus, vocab_size=297, special_tokens=["<|endoftext|>"])
    plain = BPETokenizer().train(corpus, vocab_size=297)
    assert len(bounded.merges) == 40 and bounded.special_tokens == {"<|endoftext|>": 296}
    assert not [t for t in learned_strings(bounded) if set(t) & set(b"<|>")]
    separator_pieces = [t for t in learned_strings(plain) if set(t) & set(b"<|>")]
    assert b"<|" in separator_pieces and b"|>" in separator_pieces
    assert any(t[:1] in (b".", b"!", b"?") for t in separator_pieces)  # a merge across a document boundary
    doc = "<|endoftext|>".join(STORIES)
    ids = bounded.encode(doc, allowed_special="all")
    assert ids.count(296) == 4 and bounded.decode(ids) == doc


def test_count_chunks_cuts_at_special_tokens_longest_first():
    counts = count_chunks("a.<|x|><|x|><|xy|>b.<|x|>", special_tokens=["<|x|>", "<|x|><|xy|>"])
    assert counts == Counter({"a": 1, ".": 2, "b": 1})  # '<|x|><|xy|>' is matched whole, not as '<|x|>' + '<|xy|>'
    assert count_chunks("a<|x|>b") == Counter({"a": 1, "<|": 1, "x": 1, "|>": 1, "b": 1})


def test_trained_special_tokens_survive_save_and_load(tmp_path):
    corpus = "<|endoftext|>".join(STORIES * 40) + "<|pad|>"
    tok = BPETokenizer().train(corpus, vocab_size=300, special_tokens=["<|endoftext|>", "<|pad|>"])
    assert tok.special_tokens == {"<|endoftext|>": 298, "<|pad|>": 299} and len(tok.merges) == 42
    tok.save(tmp_path / "tok.json")
    for loaded in (BPETokenizer.load(tmp_path / "tok.json"), BPETokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))):
        assert loaded.special_tokens == tok.special_tokens and loaded.merges == tok.merges
        assert loaded.encode(corpus, allowed_special="all") == tok.encode(corpus, allowed_special="all")
        assert loaded.encode(corpus, allowed_special="all")[-1] == 299


@pytest.mark.parametrize("special_tokens, message", [
    ([""], r"special token '' \(str\) is not allowed: each special token must be a non-empty str"),
    ([b"<|endoftext|>"], r"special token b'<\|endoftext\|>' \(bytes\) is not allowed"),
    (["<|endoftext|>", None], r"special token None \(NoneType\) is not allowed"),
    ("<|endoftext|>", r"special_tokens must be a list of strings such as \['<\|endoftext\|>'\], got '<\|endoftext\|>'"),
    (5, "special_tokens must be a list of strings"),
    (["<|a|>", "<|a|>"], "lists a token more than once"),
])
def test_bad_special_tokens(special_tokens, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer().train("some text", vocab_size=300, special_tokens=special_tokens)
    with pytest.raises(ValueError, match=message):
        count_chunks("some text", special_tokens=special_tokens)


# --- streaming ---

STREAM_TEXT = (
    "First Citizen:\n你好，世界！这是一个测试。\n日本語のテキスト\n👨‍👩‍👧‍👦 family 👍🏽\n"
    "a    \n    b\t\t\n\n   \n  c\n"  # line breaks inside runs of spaces and tabs
    "The end.<|endoftext|>\n<|endoftext|>Once\n\n<|endoftext|>\n"  # line breaks next to special tokens
    "x'l\nl x'll we'll IT'S\r\n\r\nno newline at the end   "
)


def stream_cases(text: str, rng: random.Random) -> dict[str, list[str]]:
    """The same text cut into pieces in several ways."""
    sizes = {"1": [1] * len(text), "3": [3] * len(text), "random": [rng.randint(1, 9) for _ in text]}
    cases = {"whole": [text]}
    for name, steps in sizes.items():
        cuts, pieces = 0, []
        for step in steps:
            if cuts >= len(text):
                break
            pieces.append(text[cuts:cuts + step])
            cuts += step
        cases[name] = pieces
    return cases


@pytest.mark.parametrize("kwargs", [{"allowed_special": "all"}, {"disallowed_special": ()}])
def test_encode_iterable_over_a_file_equals_encode(kwargs, gpt2, small_bpe, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes((STREAM_TEXT * 3).encode("utf-8"))
    text = path.read_bytes().decode("utf-8")
    for tok in (gpt2, small_bpe):
        expected = tok.encode(text, **kwargs)
        with open(path, encoding="utf-8", newline="") as f:  # line by line
            assert list(tok.encode_iterable(f, **kwargs)) == expected
        with open(path, encoding="utf-8", newline="") as f:  # 5 characters at a time: cuts anywhere
            assert list(tok.encode_iterable(iter(lambda: f.read(5), ""), **kwargs)) == expected
        for pieces in stream_cases(text, random.Random(0)).values():
            assert list(tok.encode_iterable(pieces, **kwargs)) == expected
            # pieces joined into stretches of at least 1 character: the cut rules alone keep the ids right
            pairs = list(tok.encode_stream(pieces, min_chars=1, **kwargs))
            assert "".join(t for t, _ in pairs) == text and [i for _, ids in pairs for i in ids] == expected


def test_encode_iterable_holds_back_two_chunks(gpt2):
    """'x' + "'l" + 'l' is x, 'll: the chunk before the last ("'") can still change, so the stream keeps two back."""
    assert gpt2.encode("x'll") == [87, 1183]
    assert list(gpt2.encode_iterable(["x'l", "l"])) == [87, 1183]
    stretches = list(gpt2.encode_stream(["x'l", "l", " more text"], min_chars=1, disallowed_special=()))
    assert stretches == [("x", [87]), ("'ll", [1183]), (" more text", [517, 2420])]  # after "x'l", only "x" was final


def test_encode_iterable_special_tokens_across_pieces(gpt2):
    pieces = ["The end.<|endo", "ftext|", ">Once"]
    assert list(gpt2.encode_iterable(pieces, allowed_special="all")) == [464, 886, 13, 50256, 7454]
    assert list(gpt2.encode_iterable(pieces, disallowed_special=())) == gpt2.encode("".join(pieces), disallowed_special=())
    with pytest.raises(ValueError, match=r"special token '<\|endoftext\|>' at position 8\. To encode it"):
        list(gpt2.encode_iterable(pieces))
    with pytest.raises(ValueError, match=r"at position 70008\."):  # the position in the whole stream
        list(gpt2.encode_iterable(["a" * 70_000, "The end.<|endoftext|>"]))


def test_encode_iterable_bad_input(gpt2, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello\n")
    with open(path, "rb") as f, pytest.raises(ValueError, match="expects a str, got bytes; decode bytes first"):
        list(gpt2.encode_iterable(f))
    with pytest.raises(ValueError, match="allowed_special must be"):
        list(gpt2.encode_iterable(["hi"], allowed_special="<|endoftext|>"))
    assert list(gpt2.encode_iterable([])) == [] and list(gpt2.encode_iterable(["", ""])) == []


def test_encode_iterable_keeps_its_chunk_cache_bounded(small_bpe, text, monkeypatch):
    monkeypatch.setattr(StreamingMixin, "max_cached_chunks", 200)
    sample = text[:300_000]
    small_bpe._cache.clear()
    ids, biggest = [], 0
    for _, batch in small_bpe.encode_stream(sample.splitlines(keepends=True)):
        ids += batch
        biggest = max(biggest, len(small_bpe._cache))
    assert len(set(regex.findall(GPT2_SPLIT_PATTERN, sample))) > 5_000 and biggest < 2_500
    assert ids == small_bpe.encode(sample)


def test_encode_iterable_memory_stays_bounded(gpt2, text, tmp_path):
    """A file of 5 MB: streaming it keeps the peak of new memory under 10 MB (the chunk cache starts cold);
    encode on the whole text needs more. (That the ids are encode's is checked above.)"""
    path = tmp_path / "big.txt"
    path.write_bytes((text * 5)[:5_000_000].encode("utf-8"))
    assert path.stat().st_size == 5_000_000
    gpt2._cache.clear()
    tracemalloc.start()
    try:
        with open(path, encoding="utf-8", newline="") as f:
            n_ids = sum(1 for _ in gpt2.encode_iterable(f))
        stream_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # encode on the whole text holds at least the text and the list of its ids (and also makes every chunk)
    whole_at_least = sys.getsizeof(path.read_text(encoding="utf-8")) + sys.getsizeof([0] * n_ids)
    assert n_ids > 1_500_000
    assert stream_peak < 10_000_000 < whole_at_least
