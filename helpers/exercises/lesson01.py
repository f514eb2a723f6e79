"""Exercise checkers for lesson 01 (tokenization). Solutions: notebooks/solutions/01_tokenization.ipynb."""

from __future__ import annotations

import codecs
import math
from collections.abc import Callable

from helpers.exercises import Hint, exercise, expect, expect_sequence
from helpers.tokenization import BPETokenizer, CharTokenizer

_ENGLISH = (
    "the cat sat on the mat. the other cat sat on the hat, and then the cats sat there together. "
    "that is the thing with these cats: they think the mat is theirs. " * 3
)
_MIXED = "你好你好你好 héé héé héé 👋👋👋 naïve naïve " * 4


def _english_bpe() -> BPETokenizer:
    return BPETokenizer().train(_ENGLISH, vocab_size=300)


def _mixed_bpe() -> BPETokenizer:
    """Merges that cut characters: some tokens hold only part of a character's bytes."""
    return BPETokenizer().train(_MIXED, vocab_size=272)


@exercise("Exercise 1 (replay the merges)")
def check_apply_merges(apply_merges: Callable) -> str:
    hand = {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    got = apply_merges(list(b"aaabdaaabac"), dict(hand))
    expect(got is not None, "apply_merges returned None: return the list of ids")
    expect(list(got) != list(b"aaabdaaabac"), "nothing was merged: apply each merge with merge(ids, pair, new_id)")
    expect_sequence(list(got), [258, 100, 258, 97, 99], "apply_merges(list(b'aaabdaaabac'), ...)")
    expect_sequence(list(apply_merges(list(b"aaaa"), {(97, 97): 256})), [256, 256],
                    "apply_merges(list(b'aaaa'), {(97, 97): 256}) (merge non-overlapping pairs, left to right)")
    tokenizer = _english_bpe()
    for chunk in [" the", " together", " theirs", " cats", " thinking"]:
        want = tokenizer.encode_ordinary(chunk)
        got = apply_merges(list(chunk.encode("utf-8")), tokenizer.merges)
        expect(list(got) == want, f"for chunk {chunk!r} with a trained tokenizer's merges you returned {list(got)}, "
               f"expected {want}: apply every merge, in the order of the dict, to the whole list")
    return "same ids as BPETokenizer.encode on every chunk"


@exercise("Exercise 2 (compression ratio)")
def check_compression_ratio(compression_ratio: Callable) -> str:
    chars = CharTokenizer.from_text(_ENGLISH)
    got = compression_ratio(_ENGLISH, chars)
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number (characters per token), got {type(got).__name__}")
    expect(math.isclose(got, 1.0), f"the character tokenizer has one token per character, so the ratio is 1.0; got {got}")
    bpe = _english_bpe()
    want = len(_ENGLISH) / len(bpe.encode(_ENGLISH))
    got = compression_ratio(_ENGLISH, bpe)
    if math.isclose(got, 1 / want, rel_tol=1e-6):
        raise Hint(f"you returned tokens per character ({got:.3f}); the ratio is characters per token ({want:.3f})")
    expect(math.isclose(got, want, rel_tol=1e-6), f"for a 300-token BPE you returned {got:.4f}, expected {want:.4f}")
    text = "naïve café: déjà vu " * 5
    n_tokens = len(bpe.encode(text))
    got = compression_ratio(text, bpe)
    if math.isclose(got, len(text.encode("utf-8")) / n_tokens, rel_tol=1e-6):
        raise Hint("count characters with len(text), not UTF-8 bytes: 'é' is one character but two bytes")
    expect(math.isclose(got, len(text) / n_tokens, rel_tol=1e-6),
           f"on {text[:20]!r}... you returned {got:.4f}, expected {len(text) / n_tokens:.4f}")
    return f"our small BPE packs {want:.2f} characters into each token"


def _reference_stream(tokenizer: BPETokenizer, ids: list[int]) -> list[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    return [decoder.decode(tokenizer.vocab[i]) for i in ids]


@exercise("Exercise 3 (stream the text)")
def check_stream_text(stream_text: Callable) -> str:
    byte_level = BPETokenizer()  # no merges: one token per byte
    text = "Hé👋!"
    ids = byte_level.encode(text)
    try:
        got = stream_text(byte_level, ids)
    except UnicodeDecodeError:
        raise Hint("decoding raised UnicodeDecodeError: a token can end in the middle of a character; "
                   "keep its bytes and try again when the next token arrives") from None
    expect(got is not None and len(got) == len(ids), f"return one string per id: {len(ids)} for {text!r}, got "
           f"{None if got is None else len(got)}")
    expect(not any("\ufffd" in piece for piece in got),
           "a piece contains '\\ufffd' (�): you decoded bytes of an incomplete character; keep them until it is complete")
    expect_sequence(got, _reference_stream(byte_level, ids), f"pieces for {text!r} one byte per token")
    tokenizer = _mixed_bpe()
    ids = tokenizer.encode(_MIXED)
    got = stream_text(tokenizer, ids)
    expect(len(got) == len(ids), f"return one string per id: {len(ids)}, got {len(got)}")
    expect(not any("\ufffd" in piece for piece in got),
           "a piece contains '\\ufffd' (�): you decoded bytes of an incomplete character; keep them until it is complete")
    expect("".join(got) == _MIXED, "joined, the pieces should be exactly the decoded text")
    return "every character appears once all its bytes have arrived"
