"""Lesson 01's checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import codecs

from helpers.exercises import lesson01 as ex
from helpers.tokenization import merge


def test_not_attempted_gives_a_hint_not_a_traceback():
    def stub(*args):
        raise NotImplementedError

    for check in [ex.check_apply_merges, ex.check_compression_ratio, ex.check_stream_text]:
        result = check(stub)
        assert not result and "not attempted yet" in str(result)


# --- Exercise 1 ---

def apply_merges(ids, merges):
    for pair, new_id in merges.items():
        ids = merge(ids, pair, new_id)
    return ids


def test_apply_merges_solution_passes():
    assert ex.check_apply_merges(apply_merges)


def test_apply_merges_only_first_merge_fails():
    def only_first(ids, merges):
        pair, new_id = next(iter(merges.items()))
        return merge(ids, pair, new_id)

    result = ex.check_apply_merges(only_first)
    assert not result and "apply_merges(list(b'aaabdaaabac'), ...)" in str(result)


def test_apply_merges_doing_nothing_fails():
    result = ex.check_apply_merges(lambda ids, merges: ids)
    assert not result and "nothing was merged" in str(result)


def test_apply_merges_overlapping_pairs_fails():
    def overlapping(ids, merges):  # merges every position where the pair starts, overlaps included
        for (a, b), new_id in merges.items():
            out = [new_id for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == (a, b)]
            ids = out if out else ids
        return ids

    result = ex.check_apply_merges(overlapping)
    assert not result and "apply_merges" in str(result)


# --- Exercise 2 ---

def compression_ratio(text, tokenizer):
    return len(text) / len(tokenizer.encode(text))


def test_compression_ratio_solution_passes():
    assert ex.check_compression_ratio(compression_ratio)


def test_compression_ratio_inverted_fails():
    result = ex.check_compression_ratio(lambda text, tok: len(tok.encode(text)) / len(text))
    assert not result and "tokens per character" in str(result)


def test_compression_ratio_counting_bytes_fails():
    result = ex.check_compression_ratio(lambda text, tok: len(text.encode("utf-8")) / len(tok.encode(text)))
    assert not result and "not UTF-8 bytes" in str(result)


def test_compression_ratio_not_a_number_fails():
    result = ex.check_compression_ratio(lambda text, tok: tok.encode(text))
    assert not result and "return a number" in str(result)


# --- Exercise 3 ---

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
