"""Exercise checkers for Lesson 02: embeddings and data.

    from helpers.exercises import lesson02 as ex
    ex.check_make_windows(make_windows)

Solutions: notebooks/solutions/02_embeddings.ipynb.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from helpers.data import TokenDataset
from helpers.exercises import exercise, expect, expect_close, expect_sequence, expect_shape

TINY_IDS = [5, 1, 4, 1, 5, 9, 2, 6, 5, 3]  # ten token ids, small enough to check by eye


def _reference_windows(ids: list[int], block_size: int, stride: int) -> list[tuple[list[int], list[int]]]:
    dataset = TokenDataset(ids, block_size, stride=stride)
    return [(x.tolist(), y.tolist()) for x, y in (dataset[i] for i in range(len(dataset)))]


@exercise("Exercise 1 (input and target windows)")
def check_make_windows(make_windows) -> str:
    """`make_windows(ids, block_size, stride)` returns a list of (x, y) pairs of lists, as TokenDataset does."""
    for block_size, stride in [(3, 1), (3, 2), (4, 3)]:
        got = [(list(map(int, x)), list(map(int, y))) for x, y in make_windows(list(TINY_IDS), block_size, stride)]
        want = _reference_windows(TINY_IDS, block_size, stride)
        case = f"for ids={TINY_IDS}, block_size={block_size}, stride={stride}"
        expect(len(got) > 0, f"{case}: you returned no windows, expected {len(want)}")
        x0, y0 = got[0]
        expect(len(x0) == block_size, f"{case}: each x should hold block_size={block_size} ids, yours holds {len(x0)}")
        expect(y0 != x0, f"{case}: y equals x; the target is the input shifted by one: y[t] is the token after x[t]")
        expect(
            not (x0 == want[0][1] and y0 == want[0][0]),
            f"{case}: x and y are swapped; x is the window itself, y the same window shifted one token later",
        )
        expect_sequence(x0, want[0][0], f"{case}, the first x")
        expect_sequence(y0, want[0][1], f"{case}, the first y (the token after each x[t])")
        starts_ok = [x for x, _ in got][: len(want)] == [x for x, _ in want][: len(got)]
        expect(starts_ok, f"{case}: window i should start at token i * stride; check how you step through ids")
        expect(
            len(got) >= len(want),
            f"{case}: you made {len(got)} windows, expected {len(want)}; you stop too early. The last window may "
            f"start as late as len(ids) - block_size - 1 = {len(TINY_IDS) - block_size - 1}: its target still fits",
        )
        expect(
            len(got) == len(want),
            f"{case}: you made {len(got)} windows, expected {len(want)}; a window whose target would run past the "
            "end of ids does not count (x needs block_size ids and y one more)",
        )
        for (gx, gy), (wx, wy) in zip(got, want):
            expect_sequence(gx, wx, f"{case}, x")
            expect_sequence(gy, wy, f"{case}, y")
    return "every window and its shift by one match TokenDataset"


@exercise("Exercise 2 (an embedding lookup as a matmul)")
def check_one_hot_lookup(one_hot_lookup) -> str:
    """`one_hot_lookup(idx, weight)` returns the rows of weight picked by idx, through one-hot vectors."""
    generator = torch.Generator().manual_seed(0)
    vocab_size, n_embd = 7, 4
    weight = torch.randn(vocab_size, n_embd, generator=generator)
    idx = torch.tensor([[3, 0, 6], [3, 3, 1]])
    got = one_hot_lookup(idx, weight)
    expect(isinstance(got, torch.Tensor), f"return a torch.Tensor, got {type(got).__name__}")
    expect(
        tuple(got.shape) != (2, 3, vocab_size),
        "your result has one column per vocabulary entry: that is the one-hot matrix itself; multiply it by weight",
    )
    expect_shape(got, (2, 3, n_embd), "the looked-up vectors (batch, time, n_embd)")
    expect_close(got, F.embedding(idx, weight), "the looked-up vectors")
    return "one-hot @ weight picks exactly the rows that nn.Embedding picks"


def _window_count(n_tokens: int, block_size: int, stride: int) -> int:
    return len(TokenDataset(np.zeros(n_tokens, dtype=np.int64), block_size, stride=stride))


@exercise("Exercise 3 (how many windows)")
def check_count_windows(count_windows) -> str:
    """`count_windows(n_tokens, block_size, stride)` gives len(TokenDataset(...)) without building it."""
    for n_tokens, block_size, stride in [(10, 3, 1), (10, 3, 2), (100, 8, 8), (1_003_855, 256, 256), (9, 8, 5)]:
        got = count_windows(n_tokens, block_size, stride)
        want = _window_count(n_tokens, block_size, stride)
        case = f"count_windows({n_tokens}, {block_size}, {stride})"
        if got == (n_tokens - block_size) // stride + 1 and got != want:
            expect(False, f"{case} gave {got}, expected {want}: a window needs block_size + 1 tokens (x plus one more for y)")
        if got == (n_tokens - block_size - 1) // stride and got != want:
            expect(False, f"{case} gave {got}, expected {want}: don't forget the window that starts at token 0")
        expect(got == want, f"{case} gave {got}, expected {want}")
    return "your formula matches len(TokenDataset(...)) in every case"


@exercise("Exercise 4 (the loss of a uniform guess)")
def check_uniform_loss(uniform_loss) -> str:
    """`uniform_loss(vocab_size)` is the cross-entropy of a model that gives every token the same probability."""
    for vocab_size in (2, 65, 50257):
        got = float(uniform_loss(vocab_size))
        want = F.cross_entropy(torch.zeros(1, vocab_size, dtype=torch.float64), torch.tensor([0])).item()
        case = f"uniform_loss({vocab_size})"
        expect(not math.isclose(got, 1 / vocab_size), f"{case}: 1/vocab_size is the probability; the loss is -log of it")
        expect(not math.isclose(got, math.log2(vocab_size)), f"{case}: that is log base 2 (bits); cross_entropy uses the natural log")
        expect(not math.isclose(got, math.log10(vocab_size)), f"{case}: that is log base 10; cross_entropy uses the natural log")
        expect(math.isclose(got, want, rel_tol=1e-6), f"{case} gave {got:.4f}, expected {want:.4f} (F.cross_entropy of equal logits)")
    return f"a model that knows nothing scores ln(65) = {math.log(65):.3f} on Tiny Shakespeare characters"
