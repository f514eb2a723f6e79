"""Exercise checkers for lesson 01 (tokenization). Solutions: notebooks/solutions/01_tokenization.ipynb."""

from __future__ import annotations

import codecs
import functools
import math
from collections import Counter
from collections.abc import Callable

from helpers.exercises import Hint, exercise, expect, expect_sequence
from helpers.tokenization import BPECore, BPETokenizer, split_chunks

_ENGLISH = (
    "the cat sat on the mat. the other cat sat on the hat, and then the cats sat there together. "
    "that is the thing with these cats: they think the mat is theirs. " * 3
)
_ENGLISH_UNSEEN = "then the other cats sat on that naïve mat together, and the café hat is theirs. "
_MIXED = "你好你好你好 héé héé héé 👋👋👋 naïve naïve " * 4

PREDICTED_VOCAB_SIZE = 1024  # the vocabulary whose compression exercise 1 asks the learner to predict
HELD_OUT_FRACTION = 0.1  # the last 10% of the text, as lesson 02 splits it


def _mixed_bpe() -> BPETokenizer:
    """Merges that cut characters: some tokens hold only part of a character's bytes."""
    return BPETokenizer().train(_MIXED, vocab_size=272)


def _prediction(prediction, what: str) -> float:
    """The learner's prediction as a float, or a hint when it is missing or not a number."""
    expect(prediction is not None and prediction is not Ellipsis,
           f"not attempted yet: first write your prediction ({what}) in `prediction`, then write the experiment")
    expect(isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and math.isfinite(prediction),
           f"`prediction` should be a number ({what}), got {prediction!r}")
    return float(prediction)


def split_held_out(text: str) -> tuple[str, str]:
    """The first 90% of `text` to train on, and the last 10% to measure on."""
    n_train = len(text) - int(len(text) * HELD_OUT_FRACTION)
    return text[:n_train], text[n_train:]


@functools.lru_cache(maxsize=8)
def _ratios(train_text: str, test_text: str, vocab_size: int) -> tuple[float, float]:
    """Characters per token of a BPE trained on train_text: on test_text (held out) and on train_text itself."""
    tokenizer = BPETokenizer().train(train_text, vocab_size=vocab_size)
    return len(test_text) / len(tokenizer.encode(test_text)), len(train_text) / len(tokenizer.encode(train_text))


def _wrong_ratio_hint(got: float, train_text: str, test_text: str, vocab_size: int) -> str | None:
    """What a typical wrong experiment computed, when `got` is what it gives."""
    tokenizer = BPETokenizer().train(train_text, vocab_size=vocab_size)
    n_tokens = len(tokenizer.encode(test_text))
    on_test = BPETokenizer().train(test_text, vocab_size=vocab_size) if vocab_size <= 300 else None
    mistakes = {
        n_tokens / len(test_text): "you returned tokens per character; the ratio is characters per token",
        len(test_text.encode("utf-8")) / n_tokens: "count characters with len(test_text), not UTF-8 bytes",
        len(train_text) / len(tokenizer.encode(train_text)):
            "you measured on the training text; measure on test_text, which the tokenizer never saw",
    }
    if on_test is not None:
        mistakes[len(test_text) / len(on_test.encode(test_text))] = "you trained on test_text: train on train_text"
    return next((hint for value, hint in mistakes.items() if math.isclose(got, value, rel_tol=1e-9)), None)


def _check_ratio(held_out_ratio: Callable, train_text: str, test_text: str, vocab_size: int) -> float:
    try:
        got = held_out_ratio(train_text, test_text, vocab_size)
    except ValueError as error:
        if "allows only" not in str(error):
            raise
        raise Hint(f"training on a short text with vocab_size={vocab_size} raised ValueError ({error}): "
                   "train with the vocab_size argument, not a number of your own") from None
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"return a number (characters per token), got {type(got).__name__}")
    want = _ratios(train_text, test_text, vocab_size)[0]
    if not math.isclose(got, want, rel_tol=1e-6):
        hint = _wrong_ratio_hint(got, train_text, test_text, vocab_size)
        raise Hint(hint or f"with vocab_size={vocab_size} on a short English text you measured {got:.4f}, expected "
                   f"{want:.4f}: train a BPETokenizer on train_text with vocab_size tokens, then divide "
                   "len(test_text) by the number of tokens of test_text")
    return float(got)


@exercise("Exercise 1 (predict, then measure: a vocabulary of 1,024)")
def check_vocab_size_prediction(prediction, held_out_ratio: Callable, text: str) -> str:
    """`held_out_ratio(train_text, test_text, vocab_size)`: characters per token on test_text of a BPE trained on
    train_text. The learner predicts its value for 1,024 tokens on Tiny Shakespeare's held-out 10%."""
    guess = _prediction(prediction, "characters per token with 1,024 tokens, on text the tokenizer never saw")
    for vocab_size in (280, 300):  # small cases first: they are quick, and they catch a vocab_size left out
        _check_ratio(held_out_ratio, _ENGLISH, _ENGLISH_UNSEEN, vocab_size)
    train_text, test_text = split_held_out(text)
    measured = _check_ratio(held_out_ratio, train_text, test_text, PREDICTED_VOCAB_SIZE)
    on_train = _ratios(train_text, test_text, PREDICTED_VOCAB_SIZE)[1]
    half = _ratios(train_text, test_text, PREDICTED_VOCAB_SIZE // 2)[0]
    if abs(guess - measured) <= 0.1 * measured:
        verdict = "Your prediction was right (within 10%)."
    else:
        verdict = f"Your prediction was too {'high' if guess > measured else 'low'}."
    return (f"you predicted {guess:.2f}; the experiment measured {measured:.2f} characters per token, as the "
            f"reference experiment does. {verdict} On the same held-out text 512 tokens give {half:.2f}: doubling "
            f"the vocabulary bought only {measured / half - 1:.0%} more characters per token, because BPE learns "
            f"the most frequent pairs first and each later merge saves fewer tokens than the one before. And text "
            f"the tokenizer never saw compresses less than its training text ({on_train:.2f} characters per token "
            "there): some merges fit the training text only")


def _reference_fewest(data: bytes, pieces: set[bytes]) -> list[bytes]:
    """A shortest spelling of `data` with `pieces`: best[i] is one for data[:i], built from shorter prefixes."""
    longest = max(map(len, pieces))
    best: list[list[bytes]] = [[]]
    for end in range(1, len(data) + 1):
        options = [best[start] + [data[start:end]] for start in range(max(0, end - longest), end)
                   if data[start:end] in pieces]
        best.append(min(options, key=len))
    return best[-1]


def _greedy_longest(data: bytes, pieces: set[bytes]) -> int:
    """The count of a typical wrong answer: always take the longest piece that starts here."""
    count, start = 0, 0
    while start < len(data):
        start += max(n for n in range(1, len(data) - start + 1) if data[start:start + n] in pieces)
        count += 1
    return count


_BYTES = {bytes([b]) for b in range(256)}
_HAND_CASES = [  # (data, extra pieces): small enough to check by hand
    (b"abcd", {b"ab", b"bcd"}),  # the longest first (ab) leaves c, d: 3 pieces; a + bcd needs 2
    (b"aaaa", {b"aa"}),
    (b"xyz", set()),
    (b"", {b"ab"}),
    (b"the cat", {b"th", b"the", b" c", b"he c", b"at"}),
]


@exercise("Exercise 2 (the fewest tokens)")
def check_fewest_tokens(fewest_tokens: Callable, tokenizer: BPECore, text: str) -> str:
    """`fewest_tokens(data, pieces)` is the smallest number of pieces (byte strings) whose concatenation is data."""
    for data, extra in _HAND_CASES:
        pieces = _BYTES | extra
        got = fewest_tokens(data, set(pieces))
        want = len(_reference_fewest(data, pieces))
        call = f"fewest_tokens({data!r}, single bytes + {sorted(extra)})"
        expect(isinstance(got, int) and not isinstance(got, bool), f"{call} should return an int, got {got!r}")
        if got != want and got == len(data) and extra:
            raise Hint(f"{call} gave {got}, one piece per byte: use the longer pieces too")
        if got != want and got == _greedy_longest(data, pieces):
            raise Hint(f"{call} gave {got}, expected {want}: taking the longest piece first is not always best "
                       "(b'abcd' with ab and bcd: ab, c, d is 3 pieces, a, bcd only 2). Work out the fewest pieces "
                       "for every prefix of data, shortest prefix first")
        expect(got == want, f"{call} gave {got}, expected {want}")

    pieces = set(tokenizer.vocab.values())
    chunks = Counter(split_chunks(text, tokenizer.pattern))
    shortest = {chunk: len(_reference_fewest(chunk.encode("utf-8"), pieces)) for chunk in chunks}
    longer = [chunk for chunk in chunks if len(tokenizer.encode(chunk)) > shortest[chunk]]
    sample = sorted(longer, key=chunks.get, reverse=True)[:100] + [chunk for chunk, _ in chunks.most_common(100)]
    for chunk in sample:
        got = fewest_tokens(chunk.encode("utf-8"), set(pieces))
        expect(got == shortest[chunk], f"for the chunk {chunk!r} and the vocabulary of the lesson's `bpe` you "
               f"returned {got}, expected {shortest[chunk]}")

    n_bpe = sum(len(tokenizer.encode(chunk)) * n for chunk, n in chunks.items())
    n_fewest = sum(shortest[chunk] * n for chunk, n in chunks.items())
    example = longer and max(longer, key=chunks.get)
    shown = ""
    if example:
        as_bpe = [tokenizer.vocab[i].decode("utf-8", errors="replace") for i in tokenizer.encode(example)]
        as_fewest = [piece.decode("utf-8", errors="replace") for piece in _reference_fewest(example.encode(), pieces)]
        shown = f" (BPE spells {example!r} as {as_bpe}, where {as_fewest} would do)"
    return (f"BPE's spelling is longer than the shortest for {len(longer):,} of the {len(chunks):,} distinct chunks"
            f"{shown}; over the whole text that is {n_bpe:,} tokens instead of {n_fewest:,} "
            f"({n_bpe / n_fewest - 1:.1%} more). BPE does not search for the shortest spelling: it replays the "
            "merges of training, so a word is always cut the way it was cut in the text the tokenizer learned from")


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
