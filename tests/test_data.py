"""Lesson 02 (helpers/data.py): embeddings, the LM dataset, batches, token files, prepare_shakespeare, the bigram."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.data import (
    BigramLanguageModel,
    TokenDataset,
    get_batch,
    one_hot_embed,
    prepare_shakespeare,
    read_tokens,
    sinusoidal_positions,
    train_val_split,
    write_tokens,
)
from helpers.downloads import fetch, gpt2_tiktoken
from helpers.tokenization import CharTokenizer

IDS = np.arange(100, 150, dtype=np.int64)  # 50 distinct ids: every window is easy to recognise


# embeddings


def test_one_hot_embed_equals_nn_embedding_forward_and_gradient():
    torch.manual_seed(0)
    wte = nn.Embedding(11, 6)
    idx = torch.tensor([[3, 0, 3, 10], [1, 1, 2, 3]])
    assert torch.allclose(one_hot_embed(idx, wte.weight), wte(idx))

    weight = wte.weight.detach().clone().requires_grad_()
    upstream = torch.randn(2, 4, 6)
    (one_hot_embed(idx, weight) * upstream).sum().backward()
    (wte(idx) * upstream).sum().backward()
    assert torch.allclose(weight.grad, wte.weight.grad)
    used = set(idx.flatten().tolist())
    for row in range(11):
        assert (weight.grad[row].abs().sum() != 0) == (row in used)


def test_sinusoidal_positions_match_distilbert():
    warnings.filterwarnings("ignore", message="IProgress not found")
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    for block_size, n_embd in [(64, 32), (10, 7)]:
        reference = torch.empty(block_size, n_embd)
        create_sinusoidal_embeddings(block_size, n_embd, reference)
        assert torch.allclose(sinusoidal_positions(block_size, n_embd), reference, atol=1e-6)


# the dataset


@pytest.mark.parametrize("block_size, stride", [(1, 1), (8, 1), (8, 3), (8, 8), (49, 1), (10, 100)])
def test_token_dataset_windows_match_unfold(block_size, stride):
    dataset = TokenDataset(IDS, block_size, stride=stride)
    slices = torch.from_numpy(IDS).unfold(0, block_size + 1, stride)  # the reference windows
    assert len(dataset) == slices.shape[0]
    for i in range(len(dataset)):
        x, y = dataset[i]
        assert x.dtype == torch.int64 and x.shape == (block_size,)
        assert torch.equal(x, slices[i, :-1]) and torch.equal(y, slices[i, 1:])
    assert torch.equal(dataset[-1][0], slices[-1, :-1])
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_token_dataset_accepts_lists_tensors_and_memmaps(tmp_path):
    path = write_tokens(IDS, tmp_path / "ids.bin")
    for ids in (IDS.tolist(), torch.from_numpy(IDS), read_tokens(path)):
        x, y = TokenDataset(ids, 4, stride=2)[3]
        assert x.tolist() == IDS[6:10].tolist() and y.tolist() == IDS[7:11].tolist()


def test_dataloader_batches_a_token_dataset():
    loader = torch.utils.data.DataLoader(TokenDataset(IDS, 8, stride=8), batch_size=2)
    x, y = next(iter(loader))
    assert x.shape == y.shape == (2, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_train_val_split_sizes():
    train, val = train_val_split(IDS)
    assert len(val) == 5 and len(train) == 45
    assert np.array_equal(np.concatenate([train, val]), IDS)
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    train, val = train_val_split(text, val_fraction=0.1)
    assert len(train) + len(val) == len(text) and len(val) == len(text) // 10
    assert train + val == text


# batches


def test_get_batch_shapes_shift_and_bounds():
    x, y = get_batch(IDS, block_size=8, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.all(x[:, 1:] - x[:, :-1] == 1)  # each row is a contiguous slice of IDS
    assert x.min() >= IDS[0] and y.max() <= IDS[-1]


def test_get_batch_reaches_the_last_window_and_only_it():
    x, y = get_batch(IDS[:9], block_size=8, batch_size=4)  # exactly one window fits
    assert torch.equal(x, torch.from_numpy(IDS[:8]).expand(4, 8))
    assert torch.equal(y, torch.from_numpy(IDS[1:9]).expand(4, 8))


def test_get_batch_is_deterministic_with_a_generator():
    first = get_batch(IDS, 8, 4, generator=torch.Generator().manual_seed(42))
    second = get_batch(IDS, 8, 4, generator=torch.Generator().manual_seed(42))
    other = get_batch(IDS, 8, 4, generator=torch.Generator().manual_seed(43))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_get_batch_reads_a_memmap(tmp_path):
    data = read_tokens(write_tokens(IDS, tmp_path / "train.bin"))
    x, y = get_batch(data, 8, 3, device="cpu")
    assert x.dtype == torch.int64 and x.shape == (3, 8) and torch.equal(x[:, 1:], y[:, :-1])


# token files


def test_token_file_round_trip(tmp_path):
    ids = np.array([0, 1, 65535, 50256, 7])
    path = write_tokens(ids.tolist(), tmp_path / "sub" / "ids.bin")
    assert path.stat().st_size == 2 * len(ids)
    tokens = read_tokens(path)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    assert tokens.tolist() == ids.tolist()
    assert sorted(p.name for p in path.parent.iterdir()) == ["ids.bin"]  # no temporary file left


@pytest.mark.parametrize("bad", [[1, 65536], [-1, 3]])
def test_write_tokens_refuses_ids_outside_uint16(tmp_path, bad):
    with pytest.raises(ValueError, match=r"does not fit in uint16 \(0..65535\);.*store the ids as uint32"):
        write_tokens(bad, tmp_path / "bad.bin")
    assert list(tmp_path.iterdir()) == []


def test_write_tokens_replaces_a_file_atomically(tmp_path):
    path = write_tokens([1, 2, 3], tmp_path / "ids.bin")
    write_tokens([4, 5], path)
    assert read_tokens(path).tolist() == [4, 5]


# bad input


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: TokenDataset([1, 2, 3], block_size=8),
         r"needs at least 9 tokens \(block_size inputs plus one target\), but the data has only 3; use a smaller block_size"),
        (lambda: TokenDataset(IDS, block_size=50), "smaller block_size"),
        (lambda: TokenDataset(IDS, block_size=0), "block_size must be at least 1"),
        (lambda: TokenDataset(IDS, block_size=8, stride=0), "stride must be at least 1, got 0; use stride=1 for every window"),
        (lambda: TokenDataset(IDS, block_size=8, stride=-2), "stride must be at least 1"),
        (lambda: TokenDataset(np.zeros((4, 4)), block_size=2), "1-D"),
        (lambda: train_val_split([1, 2, 3, 4, 5], val_fraction=0.1),
         r"validation part empty; use more data \(at least 10 tokens for this fraction\) or a larger val_fraction"),
        (lambda: train_val_split([], val_fraction=0.5), "part empty"),
        (lambda: train_val_split(IDS, val_fraction=0), "between 0 and 1"),
        (lambda: train_val_split(IDS, val_fraction=1.0), "between 0 and 1"),
        (lambda: get_batch(IDS, block_size=8, batch_size=0), "batch_size must be at least 1, got 0"),
        (lambda: get_batch(IDS[:8], block_size=8, batch_size=2), "needs at least 9 tokens .* has only 8; use a smaller block_size or more data"),
        (lambda: write_tokens([], "unused.bin"), "no token ids"),
        (lambda: write_tokens([0.5, 1.5], "unused.bin"), "must be integers"),
        (lambda: prepare_shakespeare("bpe"), "'char' or 'gpt2'"),
        (lambda: BigramLanguageModel(0), "vocab_size must be at least 1"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# prepare_shakespeare


@pytest.fixture
def data_folder(tmp_path, monkeypatch, offline_dir):
    """An empty data folder; the files come from offline_dir's verified copies, as from a bundle."""
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(offline_dir))
    return tmp_path


def test_prepare_shakespeare_char(data_folder):
    prepared = prepare_shakespeare("char")
    assert prepared.train_path == data_folder / "shakespeare_char" / "train.bin"
    assert prepared.val_path.parent == prepared.train_path.parent
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    tokenizer = CharTokenizer(prepared.chars)
    assert prepared.vocab_size == tokenizer.vocab_size == len(set(text)) == 65
    train, val = read_tokens(prepared.train_path), read_tokens(prepared.val_path)
    assert len(val) == len(text) // 10 and len(train) + len(val) == len(text)
    assert tokenizer.decode(np.concatenate([train, val]).tolist()) == text


def test_prepare_shakespeare_gpt2_matches_tiktoken(data_folder):
    prepared = prepare_shakespeare("gpt2")
    reference = gpt2_tiktoken()
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")
    ids = np.concatenate([read_tokens(prepared.train_path), read_tokens(prepared.val_path)])
    assert ids.tolist() == reference.encode_ordinary(text)
    assert prepared.vocab_size == reference.n_vocab == 50257 and prepared.chars is None


def test_prepare_shakespeare_skips_valid_files_and_redoes_damaged_ones(data_folder):
    first = prepare_shakespeare("char")
    stamp = first.train_path.stat().st_mtime_ns
    again = prepare_shakespeare("char")
    assert again == first and again.train_path.stat().st_mtime_ns == stamp  # not rewritten

    with open(first.val_path, "r+b") as f:
        f.truncate(10)  # a damaged file: its size no longer matches meta.json
    repaired = prepare_shakespeare("char")
    assert len(read_tokens(repaired.val_path)) == len(fetch("tinyshakespeare").read_text(encoding="utf-8")) // 10


# the bigram model


def test_bigram_forward_interface_and_initial_loss():
    torch.manual_seed(0)
    vocab_size = 65
    model = BigramLanguageModel(vocab_size)
    idx = torch.randint(vocab_size, (4, 16))
    targets = torch.randint(vocab_size, (4, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 16, vocab_size)
    assert torch.allclose(logits, model.wte.weight[idx])  # a bigram's logits depend on the current token only
    assert loss.item() == pytest.approx(F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1)).item())
    assert loss.item() == pytest.approx(math.log(vocab_size), abs=0.02)  # it starts at the uniform guess
    logits, loss = model(idx)
    assert loss is None


def test_bigram_short_training_lowers_the_loss_and_generates():
    text = fetch("tinyshakespeare").read_text(encoding="utf-8")[:100_000]
    tokenizer = CharTokenizer.from_text(text)
    data = np.array(tokenizer.encode(text))
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = BigramLanguageModel(tokenizer.vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    x, y = get_batch(data, 32, 64, generator=generator)
    initial = model(x, y)[1].item()
    for _ in range(50):
        xb, yb = get_batch(data, 32, 32, generator=generator)
        loss = model(xb, yb)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model(x, y)[1].item() < initial - 1.0

    out = model.generate(torch.zeros((2, 1), dtype=torch.long), max_new_tokens=20, generator=generator)
    assert out.shape == (2, 21) and out.max() < tokenizer.vocab_size
    same = model.generate(torch.zeros((2, 1), dtype=torch.long), 20, generator=torch.Generator().manual_seed(5))
    again = model.generate(torch.zeros((2, 1), dtype=torch.long), 20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(same, again)
