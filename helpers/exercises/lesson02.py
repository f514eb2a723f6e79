"""Exercise checkers for Lesson 02: embeddings and data.

    from helpers.exercises import lesson02 as ex
    ex.check_rotation_for_offset(rotation_for_offset)

Solutions: notebooks/solutions/02_embeddings.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers.data import BigramLanguageModel, as_token_array, get_batch
from helpers.exercises import Hint, exercise, expect, expect_shape


def _table(n_positions: int, n_embd: int) -> torch.Tensor:
    """The sinusoidal table in float64, computed here from the formula (sin in even columns, cos in odd)."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (torch.arange(0, n_embd, 2, dtype=torch.float64) / n_embd)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(n_positions, n_embd)


def _rotation(k: int, n_embd: int, exponent_step: int = 2) -> torch.Tensor:
    """The reference: one 2x2 rotation by k·ω_i per column pair (exponent_step=1 is a typical wrong frequency)."""
    matrix = torch.zeros(n_embd, n_embd, dtype=torch.float64)
    for i in range(n_embd // 2):
        turn = k / 10000 ** (exponent_step * i / n_embd)
        c, s = math.cos(turn), math.sin(turn)
        matrix[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    return matrix


def _moves_rows(matrix: torch.Tensor, k: int, n_embd: int) -> bool:
    """Whether matrix @ table[pos] == table[pos + k] for positions 20..119."""
    table = _table(200, n_embd)
    return torch.allclose(table[20:120] @ matrix.T, table[20 + k : 120 + k], atol=1e-4)


@exercise("Exercise 1 (an offset is a rotation)")
def check_rotation_for_offset(rotation_for_offset: Callable) -> str:
    """`rotation_for_offset(k, n_embd)` is the matrix M with M @ PE[pos] == PE[pos + k] for every position pos."""
    for n_embd, k in [(2, 1), (8, 1), (8, 3), (64, 10), (8, -2), (8, 0)]:
        got = rotation_for_offset(k, n_embd)
        call = f"rotation_for_offset({k}, {n_embd})"
        expect_shape(got, (n_embd, n_embd), call)
        matrix = got.detach().double().cpu()
        if _moves_rows(matrix, k, n_embd):
            continue
        if k != 0 and _moves_rows(matrix, -k, n_embd):
            raise Hint(f"{call} moves each position k places back, not forward: the rotation turns the wrong way. "
                       "sin(a + b) = sin a·cos b + cos a·sin b, cos(a + b) = cos a·cos b - sin a·sin b")
        if k != 0 and torch.allclose(matrix, torch.eye(n_embd, dtype=torch.float64), atol=1e-6):
            raise Hint(f"{call} is the identity: it must turn each column pair by k times that pair's speed")
        if n_embd > 2 and torch.allclose(matrix, _rotation(k, n_embd, exponent_step=1), atol=1e-4):
            raise Hint(f"{call}: the column pair 2i, 2i+1 turns by 1 / 10000^(2i / n_embd) radians per position, "
                       "not 1 / 10000^(i / n_embd)")
        raise Hint(f"{call} does not move position pos to pos + k: each column pair (2i, 2i+1) holds "
                   "(sin(pos·ω), cos(pos·ω)) with ω = 1 / 10000^(2i / n_embd); write sin((pos + k)·ω) and "
                   "cos((pos + k)·ω) with the angle-sum formulas, and read off a 2x2 block")
    return ("the same matrix moves every position k places on, whatever the position: a layer that multiplies by a "
            "matrix can learn 'the token k places back' once, for all positions. RoPE, the position scheme of Llama "
            "(lesson 10), builds attention on this property")


def _nearest(weight: torch.Tensor, i: int, k: int, similarity: str = "cosine") -> list[int]:
    """The reference; similarity="dot" ranks by the dot product and "least" gives the least similar rows
    (two typical wrong answers)."""
    rows = weight if similarity == "dot" else F.normalize(weight, dim=1)
    scores = rows @ rows[i] * (-1 if similarity == "least" else 1)
    scores[i] = -math.inf
    return scores.topk(k).indices.tolist()


def _as_ids(got) -> list[int]:
    if isinstance(got, torch.Tensor):
        got = got.tolist()
    expect(isinstance(got, (list, tuple)), f"return a list of ids, got {type(got).__name__}")
    return [int(i) for i in got]


# Row 1 is long and at a wider angle from row 0 than the short row 2: cosine and dot product disagree.
_HAND_WEIGHT = torch.tensor([[1.0, 0.0], [10.0, 5.0], [1.0, 0.1], [-1.0, 0.0], [0.0, 1.0]])


@exercise("Exercise 2 (neighbours in the table)")
def check_nearest_rows(nearest_rows: Callable, weight: torch.Tensor, tokenizer) -> str:
    """`nearest_rows(weight, i, k)`: the k rows of weight most cosine-similar to row i, most similar first, not i."""
    got = _as_ids(nearest_rows(_HAND_WEIGHT.clone(), 0, 3))
    want = _nearest(_HAND_WEIGHT, 0, 3)
    case = f"nearest_rows(weight, 0, 3) with weight = {_HAND_WEIGHT.tolist()}"
    expect(0 not in got, f"{case} gave {got}: leave row i itself out (it is always its own nearest row)")
    expect(got != _nearest(_HAND_WEIGHT, 0, 3, "dot"),
           f"{case} gave {got}: that ranks by the dot product, which favours long rows; divide by the lengths "
           "(cosine similarity: F.normalize the rows first)")
    expect(got != _nearest(_HAND_WEIGHT, 0, 3, "least") and got != want[::-1],
           f"{case} gave {got}: put the most similar rows first (sort by similarity, largest first)")
    expect(got == want, f"{case} gave {got}, expected {want}")
    random_rows = torch.randn(65, 16, generator=torch.Generator().manual_seed(2))
    for i, k in [(0, 5), (17, 3), (64, 1)]:
        got = _as_ids(nearest_rows(random_rows.clone(), i, k))
        expect(got == _nearest(random_rows, i, k), f"nearest_rows(a random (65, 16) table, {i}, {k}) gave {got}, "
               f"expected {_nearest(random_rows, i, k)}")
    table = weight.detach().float().cpu()
    shown = "; ".join(f"{c!r}: {' '.join(repr(tokenizer.decode([j])) for j in _nearest(table, tokenizer.encode(c)[0], 4))}"
                      for c in "aT.")
    return (f"in the bigram table you passed, the nearest rows are {shown}. Characters that are followed by the same "
            "characters get similar rows: vowels, capitals, punctuation. Nobody told the model what a vowel is")


def _train_bigram(train_ids: np.ndarray, vocab_size: int, steps: int = 500) -> BigramLanguageModel:
    """The lesson's bigram and training loop, on the CPU, with the lesson's seed, batch and learning rate."""
    generator = torch.Generator().manual_seed(1337)
    with torch.random.fork_rng(devices=[]):  # the learner's global random state stays as it was
        torch.manual_seed(1337)
        model = BigramLanguageModel(vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a table this small trains fastest on one thread, above all on a busy machine
    try:
        for _ in range(steps):
            x, y = get_batch(train_ids, block_size=32, batch_size=32, generator=generator)
            _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model


_references: dict[tuple, tuple[float, float]] = {}


def _reference_losses(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> tuple[float, float]:
    """The validation loss of the bigram trained on a full shuffle of train_ids, and on train_ids in order."""
    key = (vocab_size, hash(train_ids.tobytes()), hash(val_ids.tobytes()))
    if key not in _references:
        reference_shuffle = train_ids[_reference_order(len(train_ids))]
        _references[key] = (_loss_on(_train_bigram(reference_shuffle, vocab_size), val_ids),
                            _loss_on(_train_bigram(train_ids, vocab_size), val_ids))
    return _references[key]


def _reference_order(n: int) -> np.ndarray:
    return torch.randperm(n, generator=torch.Generator().manual_seed(0)).numpy()


def _loss_on(model: BigramLanguageModel, ids: np.ndarray) -> float:
    """The bigram's exact mean loss over a whole token sequence."""
    ids = torch.from_numpy(ids.astype(np.int64))
    with torch.no_grad():
        return model(ids[None, :-1], ids[None, 1:])[1].item()


def _pair_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """The entropy of the next token given the current one, counted over the sequence itself (nats)."""
    counts = np.zeros((vocab_size, vocab_size))
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    probs = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return float(-(counts * np.log(np.where(counts > 0, probs, 1))).sum() / counts.sum())


def _shuffled_by(shuffle_tokens: Callable, train_ids: np.ndarray) -> np.ndarray:
    got = shuffle_tokens(train_ids.copy(), torch.Generator().manual_seed(0))  # a copy: shuffling in place is fine
    expect(got is not None, "shuffle_tokens returned None: return the shuffled tokens (a shuffle in place returns None)")
    got = as_token_array(got).astype(np.int64)
    expect(len(got) == len(train_ids), f"shuffle_tokens returned {len(got):,} tokens, expected all {len(train_ids):,}")
    vocab_size = int(train_ids.max()) + 1
    expect(np.array_equal(np.bincount(got, minlength=vocab_size), np.bincount(train_ids, minlength=vocab_size)),
           "the shuffled tokens are not the same tokens: return a permutation of ids (each token once, in a new order)")
    return got


@exercise("Exercise 3 (predict, then measure: shuffled text)")
def check_shuffled_bigram(prediction, shuffle_tokens: Callable, train_data, val_data) -> str:
    """`shuffle_tokens(ids, generator)` returns the training tokens in a random order. The learner predicts the
    validation loss of the lesson's bigram trained on them."""
    expect(prediction is not None and prediction is not Ellipsis,
           "not attempted yet: first write your prediction (the validation loss) in `prediction`, then shuffle")
    expect(isinstance(prediction, (int, float)) and not isinstance(prediction, bool) and math.isfinite(prediction),
           f"`prediction` should be a number (a validation loss), got {prediction!r}")
    train_ids, val_ids = as_token_array(train_data).astype(np.int64), as_token_array(val_data).astype(np.int64)
    shuffled = _shuffled_by(shuffle_tokens, train_ids)
    vocab_size = int(max(train_ids.max(), val_ids.max())) + 1
    reference_shuffle = train_ids[_reference_order(len(train_ids))]
    if _pair_entropy(shuffled, vocab_size) < 0.5 * (_pair_entropy(train_ids, vocab_size)
                                                    + _pair_entropy(reference_shuffle, vocab_size)):
        raise Hint("your order keeps most neighbours together (did you shuffle windows or blocks, or reverse the "
                   "text?): shuffle single tokens, so that no token keeps the neighbour it had")
    measured = _loss_on(_train_bigram(shuffled, vocab_size), val_ids)
    reference, ordered = _reference_losses(train_ids, val_ids, vocab_size)
    expect(abs(measured - reference) < 0.05, f"after training on your shuffled tokens the validation loss is "
           f"{measured:.3f}, but {reference:.3f} after a full shuffle: shuffle every token")
    uniform = math.log(vocab_size)
    if abs(prediction - measured) <= 0.15:
        verdict = "Your prediction was right (within 0.15)."
    else:
        verdict = f"Your prediction was too {'high' if prediction > measured else 'low'}."
    return (f"you predicted {prediction:.2f}; the experiment measured a validation loss of {measured:.2f} (the "
            f"reference experiment: {reference:.2f}). {verdict} Shuffled text keeps only how often each character "
            f"occurs, so the bigram learns those frequencies and nothing else: every row of its table becomes the "
            f"same. Frequencies alone take the loss from the uniform {uniform:.2f} to {measured:.2f}; the order of "
            f"neighbouring characters takes it on to the ordered bigram's {ordered:.2f}")
