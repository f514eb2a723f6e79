"""helpers.prepare: a text file of any size streamed into uint16 token files; resumable; clear errors."""

import json

import numpy as np
import pytest

import helpers
from helpers import prepare
from helpers.data import read_tokens
from helpers.prepare import prepare_text_file
from helpers.tokenization import BPETokenizer, CharTokenizer


@pytest.fixture(scope="module")
def text():
    return helpers.fetch("tinyshakespeare").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def gpt2():
    return BPETokenizer.from_gpt2_files(helpers.fetch("gpt2-vocab.bpe"), helpers.fetch("gpt2-encoder.json"))


@pytest.fixture
def corpus(text, tmp_path):
    """Documents joined by <|endoftext|>, with multi-byte characters, about 300 KB."""
    body = text[:290_000].replace("\n\n", "\n<|endoftext|>", 200) + "\nÉpilogue: 你好 👋\n"
    path = tmp_path / "corpus.txt"
    path.write_bytes(body.encode("utf-8"))
    return path


def split_text(path, val_fraction=0.1) -> tuple[str, str]:
    """The expected training and validation text: cut after the first line end past 90% of the bytes."""
    data = path.read_bytes()
    split = data.index(b"\n", int(len(data) * (1 - val_fraction))) + 1
    return data[:split].decode("utf-8"), data[split:].decode("utf-8")


def test_gpt2_token_files_equal_encode(corpus, gpt2, tmp_path):
    prepared = prepare_text_file(corpus, "gpt2", tmp_path / "out", progress=False)
    train_text, val_text = split_text(corpus)
    assert read_tokens(prepared.train_path).tolist() == gpt2.encode(train_text, allowed_special="all")
    assert read_tokens(prepared.val_path).tolist() == gpt2.encode(val_text, allowed_special="all")
    assert 50256 in read_tokens(prepared.train_path)  # the separators are the special token
    assert prepared.vocab_size == 50257 and prepared.tokenizer == {"kind": "gpt2"}
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["train_tokens"] == len(read_tokens(prepared.train_path)) and meta["settings"]["tokenizer_kind"] == "gpt2"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["meta.json", "train.bin", "val.bin"]


def test_trained_bpe_and_char_token_files(corpus, tmp_path):
    prepared = prepare_text_file(corpus, "bpe", tmp_path / "bpe", vocab_size=300, sample_chars=100_000, progress=False)
    tok = BPETokenizer.from_dict(prepared.tokenizer["tables"])
    expected = BPETokenizer().train(corpus.read_text(encoding="utf-8")[:100_000], 300, special_tokens=["<|endoftext|>"])
    assert tok.merges == expected.merges and tok.special_tokens == {"<|endoftext|>": 299} and prepared.vocab_size == 300
    assert BPETokenizer.load(tmp_path / "bpe" / "tokenizer.json").merges == tok.merges
    train_text, val_text = split_text(corpus)
    assert read_tokens(prepared.train_path).tolist() == tok.encode(train_text, allowed_special="all")
    assert read_tokens(prepared.val_path).tolist() == tok.encode(val_text, allowed_special="all")

    chars = prepare_text_file(corpus, "char", tmp_path / "char", progress=False)
    char_tok = CharTokenizer(chars.tokenizer["chars"])
    assert chars.tokenizer["chars"] == sorted(set(corpus.read_text(encoding="utf-8")))
    assert read_tokens(chars.train_path).tolist() == char_tok.encode(train_text)
    assert read_tokens(chars.val_path).tolist() == char_tok.encode(val_text) and chars.vocab_size == char_tok.vocab_size


def test_interrupted_and_restarted_gives_the_same_file(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "READ_BYTES", 4096)
    monkeypatch.setattr(prepare, "SAVE_EVERY_BYTES", 50_000)
    reference = prepare_text_file(corpus, "gpt2", tmp_path / "reference", progress=False)

    real_save, saves = prepare._save_progress, []

    def save_then_interrupt(*args, **kwargs):
        saves.append(args[2])  # the bytes recorded
        if len(saves) == 3:  # the ids after the 2nd record are written but not recorded: they must be dropped
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(prepare, "_save_progress", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare_text_file(corpus, "gpt2", tmp_path / "out", progress=False)
    part = tmp_path / "out" / "train.bin.part"
    recorded = json.loads((tmp_path / "out" / "train.bin.progress.json").read_text())
    assert not (tmp_path / "out" / "train.bin").exists() and not (tmp_path / "out" / "meta.json").exists()
    assert part.stat().st_size > recorded["tokens"] * 2 > 0  # ids past the record, written before the interruption

    monkeypatch.setattr(prepare, "_save_progress", real_save)
    starts = []
    real_read = prepare.read_text
    monkeypatch.setattr(prepare, "read_text", lambda source, start, stop: starts.append(start) or real_read(source, start, stop))
    resumed = prepare_text_file(corpus, "gpt2", tmp_path / "out", progress=False)
    assert starts[0] == recorded["bytes"] == saves[1]  # it went on from the record, not from the start
    for name in ("train_path", "val_path"):
        assert getattr(resumed, name).read_bytes() == getattr(reference, name).read_bytes()
    assert not part.exists() and not list((tmp_path / "out").glob("*.progress.json"))


def test_finished_files_are_reused_until_the_source_or_settings_change(corpus, tmp_path, monkeypatch):
    first = prepare_text_file(corpus, "char", tmp_path / "out", progress=False)
    first_val_tokens = len(read_tokens(first.val_path))
    monkeypatch.setattr(prepare, "_encode_region", lambda *args: pytest.fail("the finished files were not reused"))
    assert prepare_text_file(corpus, "char", tmp_path / "out", progress=False) == first
    monkeypatch.undo()
    again = prepare_text_file(corpus, "char", tmp_path / "out", val_fraction=0.2, progress=False)
    assert len(read_tokens(again.val_path)) > 1.5 * first_val_tokens  # the same folder, re-prepared
    corpus.write_bytes(corpus.read_bytes() + "Ω\n".encode())
    changed = prepare_text_file(corpus, "char", tmp_path / "out", val_fraction=0.2, progress=False)
    assert "Ω" in changed.tokenizer["chars"] and "Ω" not in first.tokenizer["chars"]


def test_a_file_without_line_ends_is_split_at_a_character(tmp_path):
    path = tmp_path / "one_line.txt"
    path.write_bytes(("日本語" * 50).encode("utf-8"))  # 150 characters of 3 bytes, no line end
    prepared = prepare_text_file(path, "char", tmp_path / "out", progress=False)
    assert (len(read_tokens(prepared.train_path)), len(read_tokens(prepared.val_path))) == (135, 15)


def test_token_files_are_uint16(corpus, tmp_path):
    prepared = prepare_text_file(corpus, "char", tmp_path / "out", progress=False)
    assert prepared.train_path.stat().st_size == 2 * len(read_tokens(prepared.train_path))
    assert read_tokens(prepared.train_path).dtype == np.uint16


@pytest.mark.parametrize("kwargs, message", [
    ({"tokenizer_kind": "wordpiece"}, r"unknown tokenizer kind 'wordpiece'; use one of gpt2, bpe, char"),
    ({"tokenizer_kind": "gpt2", "vocab_size": 1000}, "vocab_size is for tokenizer_kind='bpe' only"),
    ({"tokenizer_kind": "bpe", "vocab_size": 70_000}, r"vocab_size must be an int from 258 to 65536 \(the ids must fit in a uint16"),
    ({"tokenizer_kind": "bpe", "vocab_size": 512, "sample_chars": 0}, "sample_chars must be a positive int"),
    ({"tokenizer_kind": "char", "val_fraction": 1.5}, "val_fraction must be between 0 and 1"),
])
def test_bad_settings(kwargs, message, corpus, tmp_path):
    with pytest.raises(ValueError, match=message):
        prepare_text_file(corpus, out_dir=tmp_path / "out", progress=False, **kwargs)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.txt does not exist; give the path of a UTF-8 text file"):
        prepare_text_file(tmp_path / "missing.txt", "char", progress=False)
    with pytest.raises(ValueError, match="is a folder"):
        prepare_text_file(tmp_path, "char", progress=False)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        prepare_text_file(tmp_path / "empty.txt", "char", progress=False)
    (tmp_path / "latin1.txt").write_bytes("café au lait\n".encode("latin-1") * 10)
    with pytest.raises(ValueError, match=r"latin1\.txt is not UTF-8 text \(byte 3 .*convert it to UTF-8 first"):
        prepare_text_file(tmp_path / "latin1.txt", "char", tmp_path / "out", progress=False)
    (tmp_path / "tiny.txt").write_bytes(b"a")
    with pytest.raises(ValueError, match="too small to split into training and validation text"):
        prepare_text_file(tmp_path / "tiny.txt", "char", tmp_path / "out2", progress=False)
    (tmp_path / "short.txt").write_bytes(b"abcd" * 20)
    with pytest.raises(ValueError, match="allows only .* merges"):
        prepare_text_file(tmp_path / "short.txt", "bpe", tmp_path / "out3", vocab_size=400, progress=False)
