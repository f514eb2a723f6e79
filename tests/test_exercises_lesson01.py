"""Lesson 01's checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import codecs

import pytest

from helpers.exercises import lesson01 as ex
from helpers.tokenization import BPECore, BPETokenizer


@pytest.fixture(scope="module")
def text(shakespeare):
    """A fifth of Tiny Shakespeare: the checks run as on the whole text, five times faster."""
    return shakespeare.read_text(encoding="utf-8")[:220_000]


@pytest.fixture(scope="module")
def bpe(text):
    return BPECore().train(text, vocab_size=400)


def stub(*args):
    raise NotImplementedError


def test_not_attempted_gives_a_hint_not_a_traceback(text, bpe):
    for result in [ex.check_vocab_size_prediction(None, stub, text), ex.check_vocab_size_prediction(2.0, stub, text),
                   ex.check_fewest_tokens(stub, bpe, text), ex.check_stream_text(stub)]:
        assert not result and "not attempted yet" in str(result)
    assert "write your prediction" in str(ex.check_vocab_size_prediction(None, stub, text))


# --- Exercise 1: predict, then measure ---

def held_out_ratio(train_text, test_text, vocab_size):
    tokenizer = BPETokenizer().train(train_text, vocab_size=vocab_size)
    return len(test_text) / len(tokenizer.encode(test_text))


def test_any_prediction_passes_a_right_experiment_and_hears_how_it_fared(text):
    train_text, test_text = ex.split_held_out(text)
    measured = held_out_ratio(train_text, test_text, 1024)
    close = ex.check_vocab_size_prediction(measured * 1.05, held_out_ratio, text)
    assert close and "right (within 10%)" in str(close) and f"measured {measured:.2f}" in str(close)
    too_high = ex.check_vocab_size_prediction(2 * measured, held_out_ratio, text)
    assert too_high and "too high" in str(too_high)
    too_low = ex.check_vocab_size_prediction(1, held_out_ratio, text)
    assert too_low and "too low" in str(too_low)


def test_a_prediction_must_be_a_number(text):
    result = ex.check_vocab_size_prediction("about 3", held_out_ratio, text)
    assert not result and "should be a number" in str(result)


def test_measuring_on_the_training_text_fails(text):
    def on_train(train_text, test_text, vocab_size):
        return held_out_ratio(train_text, train_text, vocab_size)

    result = ex.check_vocab_size_prediction(2.0, on_train, text)
    assert not result and "you measured on the training text" in str(result)


def test_training_on_the_test_text_fails(text):
    def on_test(train_text, test_text, vocab_size):
        return held_out_ratio(test_text, test_text, vocab_size)

    result = ex.check_vocab_size_prediction(2.0, on_test, text)
    assert not result and "you trained on test_text" in str(result)


def test_tokens_per_character_and_bytes_fail(text):
    def inverted(train_text, test_text, vocab_size):
        return 1 / held_out_ratio(train_text, test_text, vocab_size)

    def bytes_per_token(train_text, test_text, vocab_size):
        tokenizer = BPETokenizer().train(train_text, vocab_size=vocab_size)
        return len(test_text.encode("utf-8")) / len(tokenizer.encode(test_text))

    assert "tokens per character" in str(ex.check_vocab_size_prediction(2.0, inverted, text))
    assert "not UTF-8 bytes" in str(ex.check_vocab_size_prediction(2.0, bytes_per_token, text))


def test_a_vocabulary_size_of_ones_own_fails(text):
    def always_512(train_text, test_text, vocab_size):
        return held_out_ratio(train_text, test_text, 512)

    result = ex.check_vocab_size_prediction(2.0, always_512, text)
    assert not result and "train with the vocab_size argument" in str(result)


# --- Exercise 2: the fewest tokens ---

def fewest_tokens(data, pieces):
    longest = max(map(len, pieces))
    best = [0]
    for end in range(1, len(data) + 1):
        best.append(min(best[start] + 1 for start in range(max(0, end - longest), end) if data[start:end] in pieces))
    return best[-1]


def test_fewest_tokens_solution_passes_and_compares_with_bpe(bpe, text):
    result = ex.check_fewest_tokens(fewest_tokens, bpe, text)
    assert result and "longer than the shortest" in str(result) and "replays the merges" in str(result)


def test_fewest_tokens_greedy_longest_first_fails(bpe, text):
    def greedy(data, pieces):
        count, start = 0, 0
        while start < len(data):
            start += max(n for n in range(1, len(data) - start + 1) if data[start:start + n] in pieces)
            count += 1
        return count

    result = ex.check_fewest_tokens(greedy, bpe, text)
    assert not result and "the longest piece first is not always best" in str(result)


def test_fewest_tokens_one_per_byte_fails(bpe, text):
    result = ex.check_fewest_tokens(lambda data, pieces: len(data), bpe, text)
    assert not result and "one piece per byte" in str(result)


def test_fewest_tokens_short_pieces_only_fails_on_real_chunks(bpe, text):
    def up_to_four_bytes(data, pieces):  # right on the hand cases, whose pieces have at most 4 bytes
        return fewest_tokens(data, {piece for piece in pieces if len(piece) <= 4})

    result = ex.check_fewest_tokens(up_to_four_bytes, bpe, text)
    assert not result and "for the chunk" in str(result)


def test_fewest_tokens_must_be_an_int(bpe, text):
    result = ex.check_fewest_tokens(lambda data, pieces: float(fewest_tokens(data, pieces)), bpe, text)
    assert not result and "should return an int" in str(result)


# --- Exercise 3: stream the text ---

def stream_text(tokenizer, ids):
    decoder = codecs.getincrementaldecoder("utf-8")()
    return [decoder.decode(tokenizer.vocab[i]) for i in ids]


def stream_text_pending(tokenizer, ids):
    pieces, pending = [], b""
    for i in ids:
        pending += tokenizer.vocab[i]
        try:
            pieces.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            pieces.append("")
    return pieces


def test_stream_text_solutions_pass():
    assert ex.check_stream_text(stream_text)
    assert ex.check_stream_text(stream_text_pending)


def test_stream_text_replace_each_token_fails():
    result = ex.check_stream_text(lambda tok, ids: [tok.vocab[i].decode("utf-8", errors="replace") for i in ids])
    assert not result and "incomplete character" in str(result)


def test_stream_text_strict_decode_fails_with_a_hint():
    result = ex.check_stream_text(lambda tok, ids: [tok.vocab[i].decode("utf-8") for i in ids])
    assert not result and "UnicodeDecodeError" in str(result) and "keep its bytes" in str(result)


def test_stream_text_whole_text_at_once_fails():
    result = ex.check_stream_text(lambda tok, ids: [tok.decode(ids)])
    assert not result and "one string per id" in str(result)
