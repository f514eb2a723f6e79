"""Lesson 02's exercise checkers: each passes its solution and fails typical wrong answers with a useful hint."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.data import prepare_shakespeare, read_tokens
from helpers.exercises import lesson02 as ex
from helpers.tokenization import CharTokenizer


def stub(*args):
    raise NotImplementedError


def test_unattempted_exercises_say_so():
    assert "not attempted yet" in str(ex.check_rotation_for_offset(stub))
    assert "not attempted yet" in str(ex.check_nearest_rows(stub, torch.zeros(3, 3), None))
    assert "write your prediction" in str(ex.check_shuffled_bigram(None, stub, [1, 2, 3], [1, 2]))
    assert "not attempted yet" in str(ex.check_shuffled_bigram(3.0, stub, [1, 2, 3], [1, 2]))


# --- Exercise 1: an offset is a rotation ---

def rotation(k, n_embd, exponent_step=2):
    matrix = torch.zeros(n_embd, n_embd)
    for i in range(n_embd // 2):
        turn = k / 10000 ** (exponent_step * i / n_embd)
        c, s = math.cos(turn), math.sin(turn)
        matrix[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, s], [-s, c]])
    return matrix


def test_rotation_solution_passes():
    result = ex.check_rotation_for_offset(rotation)
    assert result and "every position k places on" in str(result)


def test_rotation_least_squares_from_the_table_passes_too():
    from helpers.data import sinusoidal_positions

    def fitted(k, n_embd):  # any matrix that does the job is right
        table = sinusoidal_positions(200, n_embd).double()
        return torch.linalg.lstsq(table[30:130], table[30 + k : 130 + k]).solution.T.float()

    assert ex.check_rotation_for_offset(fitted)


def test_rotation_hints():
    assert "the wrong way" in str(ex.check_rotation_for_offset(lambda k, n: rotation(-k, n)))
    assert "the wrong way" in str(ex.check_rotation_for_offset(lambda k, n: rotation(k, n).T))
    assert "is the identity" in str(ex.check_rotation_for_offset(lambda k, n: torch.eye(n)))
    assert "not 1 / 10000^(i / n_embd)" in str(ex.check_rotation_for_offset(lambda k, n: rotation(k, n, 1)))
    assert "angle-sum formulas" in str(ex.check_rotation_for_offset(lambda k, n: 2 * rotation(k, n)))
    assert "shape" in str(ex.check_rotation_for_offset(lambda k, n: rotation(k, n)[:, :2]))


# --- Exercise 2: neighbours in the table ---

def nearest_rows(weight, i, k):
    unit = F.normalize(weight, dim=1)
    similarity = unit @ unit[i]
    similarity[i] = -math.inf
    return similarity.topk(k).indices.tolist()


@pytest.fixture(scope="module")
def char_data(shakespeare):
    prepared = prepare_shakespeare("char")
    return CharTokenizer(prepared.chars), read_tokens(prepared.train_path), read_tokens(prepared.val_path)


def test_nearest_rows_solution_passes_and_shows_the_trained_neighbours(char_data):
    tokenizer, train, _ = char_data
    ids = np.asarray(train, dtype=np.int64)
    counts = np.ones((65, 65))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    table = torch.tensor(np.log(counts / counts.sum(axis=1, keepdims=True)), dtype=torch.float32)
    result = ex.check_nearest_rows(nearest_rows, table, tokenizer)
    assert result and "'a': 'o' 'e'" in str(result)  # vowels sit together
    assert ex.check_nearest_rows(lambda w, i, k: torch.tensor(nearest_rows(w, i, k)), table, tokenizer)


def test_nearest_rows_hints():
    table, tokenizer = torch.randn(65, 8), CharTokenizer([chr(32 + i) for i in range(65)])
    with_itself = lambda w, i, k: [i, *nearest_rows(w, i, k - 1)]  # row i is its own nearest row
    assert "leave row i itself out" in str(ex.check_nearest_rows(with_itself, table, tokenizer))

    def by_dot_product(w, i, k):
        scores = w @ w[i]
        scores[i] = -math.inf
        return scores.topk(k).indices.tolist()

    assert "dot product" in str(ex.check_nearest_rows(by_dot_product, table, tokenizer))

    def least_similar(w, i, k):
        unit = F.normalize(w, dim=1)
        similarity = unit @ unit[i]
        similarity[i] = math.inf
        return similarity.topk(k, largest=False).indices.tolist()

    assert "most similar rows first" in str(ex.check_nearest_rows(least_similar, table, tokenizer))
    reversed_order = lambda w, i, k: nearest_rows(w, i, k)[::-1]
    assert "most similar rows first" in str(ex.check_nearest_rows(reversed_order, table, tokenizer))

    def one_too_few(w, i, k):
        return nearest_rows(w, i, k)[: k - 1] if k > 3 else nearest_rows(w, i, k)

    assert "a random (65, 16) table" in str(ex.check_nearest_rows(one_too_few, table, tokenizer))
    assert "list of ids" in str(ex.check_nearest_rows(lambda w, i, k: set(nearest_rows(w, i, k)), table, tokenizer))


# --- Exercise 3: predict, then measure ---

def shuffle_tokens(ids, generator):
    return ids[torch.randperm(len(ids), generator=generator).numpy()]


def test_any_prediction_passes_a_right_experiment_and_hears_how_it_fared(char_data):
    _, train, val = char_data
    low = ex.check_shuffled_bigram(2.5, shuffle_tokens, train, val)
    assert low and "too low" in str(low) and "ordered bigram" in str(low)
    measured = float(str(low).split("validation loss of ")[1].split(" ")[0])
    assert 3.2 < measured < 3.5  # the entropy of the character frequencies, about 3.3 nats
    assert "right (within 0.15)" in str(ex.check_shuffled_bigram(measured + 0.1, shuffle_tokens, train, val))
    numpy_shuffle = lambda ids, generator: np.random.default_rng(5).permutation(ids)  # another random order
    assert "too high" in str(ex.check_shuffled_bigram(4.0, numpy_shuffle, train, val))


def test_shuffle_hints(char_data):
    _, train, val = char_data
    assert "should be a number" in str(ex.check_shuffled_bigram("3", shuffle_tokens, train, val))
    assert "returns None" in str(ex.check_shuffled_bigram(3.0, lambda ids, g: np.random.shuffle(ids), train, val))
    assert "expected all" in str(ex.check_shuffled_bigram(3.0, lambda ids, g: shuffle_tokens(ids, g)[1:], train, val))
    random_ids = lambda ids, g: torch.randint(65, (len(ids),), generator=g).numpy()  # new tokens, not these
    assert "not the same tokens" in str(ex.check_shuffled_bigram(3.0, random_ids, train, val))

    def blocks(ids, generator):  # whole windows shuffled: the pairs inside them stay
        cut = len(ids) // 32 * 32
        windows = ids[:cut].reshape(-1, 32)
        return np.concatenate([windows[torch.randperm(len(windows), generator=generator).numpy()].ravel(), ids[cut:]])

    assert "keeps most neighbours together" in str(ex.check_shuffled_bigram(3.0, blocks, train, val))
    assert "keeps most neighbours together" in str(ex.check_shuffled_bigram(3.0, lambda ids, g: ids[::-1], train, val))

    def half(ids, generator):  # only the first half shuffled
        ids = ids.copy()
        ids[: len(ids) // 2] = shuffle_tokens(ids[: len(ids) // 2], generator)
        return ids

    assert "shuffle every token" in str(ex.check_shuffled_bigram(3.0, half, train, val))
