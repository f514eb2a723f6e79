"""The prepare step: stream a text file of any size through a tokenizer into uint16 token files, resumably.

Hand-written, and above the lessons like the engine: it calls lesson 01's tokenizers (`BPETokenizer.encode_stream`)
and writes lesson 02's token files (`helpers.data.TOKEN_DTYPE`, read back with `read_tokens`). It adds what no
lesson teaches: memory that does not grow with the file, a progress bar, and resuming after an interruption.
The engine calls `prepare_text_file` for `--dataset FILE.txt`.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.data import TOKEN_DTYPE
from helpers.downloads import data_dir, fetch
from helpers.files import atomic_write
from helpers.tokenization import BPETokenizer, CharTokenizer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # without ipywidgets tqdm.auto falls back to a text bar, and would warn about it
    from tqdm.auto import tqdm

TOKENIZER_KINDS = ("gpt2", "bpe", "char")
SPECIAL_TOKENS = ["<|endoftext|>"]  # the separator of a corpus of documents; a trained BPE keeps it whole
READ_BYTES = 1 << 16  # the file is read this many bytes at a time
SAVE_EVERY_BYTES = 1 << 24  # progress is recorded after about this many bytes of text (16 MiB)
MAX_VOCAB = int(np.iinfo(TOKEN_DTYPE).max) + 1  # token files hold ids 0..65535

Encoder = Callable[[Iterable[str]], Iterator[tuple[str, list[int]]]]  # texts -> (text, its ids) pairs, in order


@dataclass(frozen=True)
class PreparedText:
    """A text file's token files, and what the engine needs to use them."""

    train_path: Path
    val_path: Path
    vocab_size: int
    tokenizer: dict  # rebuilds the tokenizer: {"kind": "gpt2"}, {"kind": "char", "chars": [...]}, {"kind": "bpe", "tables": {...}}


def prepare_text_file(path: str | Path, tokenizer_kind: str = "gpt2", out_dir: str | Path | None = None, *,
                      vocab_size: int | None = None, val_fraction: float = 0.1, sample_chars: int = 2_000_000,
                      progress: bool = True) -> PreparedText:
    """Tokenize a UTF-8 text file of any size into train.bin and val.bin (uint16) under `out_dir`.

    tokenizer_kind: "gpt2" (GPT-2's BPE, 50,257 tokens), "bpe" (a BPE of `vocab_size` tokens, 2,048 by default,
    trained on the file's first `sample_chars` characters) or "char" (one token per distinct character).
    With "gpt2" and "bpe", `<|endoftext|>` in the file is the special token that separates documents.
    Validation is the last `val_fraction` of the file, from a line start. The default `out_dir` is
    data_dir()/<file name>_<kind>. Memory stays bounded whatever the file's size. Called again, it resumes an
    interrupted run where it stopped, and reuses finished files while the file and the settings are unchanged.
    """
    source = _check_source(path)
    settings = _settings(source, tokenizer_kind, vocab_size, val_fraction, sample_chars)
    out = Path(out_dir) if out_dir is not None else data_dir() / f"{source.stem}_{tokenizer_kind}"
    if (finished := _finished(out, settings)) is not None:
        return finished
    vocab, info, encode_stream = _tokenizer(source, settings)
    settings["tokenizer_sha256"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    split = _split_point(source, settings["size"], val_fraction)
    tokens = {}
    with tqdm(total=settings["size"], unit="B", unit_scale=True, desc=f"tokenizing {source.name}",
              disable=not progress) as bar:
        for name, start, stop in (("train", 0, split), ("val", split, settings["size"])):
            region = {**settings, "split": name, "start": start, "stop": stop}
            tokens[name] = _encode_region(source, region, encode_stream, out / f"{name}.bin", bar)
    if info["kind"] == "bpe":  # for the learner: BPETokenizer.load(out / "tokenizer.json")
        with atomic_write(out / "tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(info["tables"], f)
    meta = {"settings": settings, "vocab_size": vocab, "tokenizer": info,
            "train_tokens": tokens["train"], "val_tokens": tokens["val"]}
    with atomic_write(out / "meta.json", "w", encoding="utf-8") as f:  # written last: it vouches for the token files
        json.dump(meta, f)
    for name in tokens:
        _progress_path(out / f"{name}.bin").unlink(missing_ok=True)
    return PreparedText(out / "train.bin", out / "val.bin", vocab, info)


def _check_source(path: str | Path) -> Path:
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        what = "is a folder" if source.is_dir() else "does not exist"
        raise ValueError(f"the dataset file {path} {what}; give the path of a UTF-8 text file")
    if source.stat().st_size == 0:
        raise ValueError(f"the dataset file {path} is empty; give a text file with some text in it")
    return source


def _settings(source: Path, kind: str, vocab_size: int | None, val_fraction: float, sample_chars: int) -> dict:
    """Everything the token files depend on, checked; a resumed or reused run must match it."""
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; use one of {', '.join(TOKENIZER_KINDS)}")
    if kind != "bpe" and vocab_size is not None:
        raise ValueError(f"vocab_size is for tokenizer_kind='bpe' only: the {kind} tokenizer has its own vocabulary")
    if kind == "bpe":
        vocab_size = 2048 if vocab_size is None else vocab_size
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 257 + len(SPECIAL_TOKENS) <= vocab_size <= MAX_VOCAB:
            raise ValueError(f"vocab_size must be an int from {257 + len(SPECIAL_TOKENS)} to {MAX_VOCAB} (the ids must fit "
                             f"in a uint16 token file), got {vocab_size!r}")
        if isinstance(sample_chars, bool) or not isinstance(sample_chars, int) or sample_chars < 1:
            raise ValueError(f"sample_chars must be a positive int (how much text trains the BPE), got {sample_chars!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}; 0.1 keeps the last 10% for validation")
    stat = source.stat()
    return {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "tokenizer_kind": kind,
            "vocab_size": vocab_size, "sample_chars": sample_chars if kind == "bpe" else None,
            "val_fraction": val_fraction}


def _finished(out: Path, settings: dict) -> PreparedText | None:
    """The token files of an earlier run with the same settings, if meta.json vouches for them."""
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        settings = {**settings, "tokenizer_sha256": meta["settings"]["tokenizer_sha256"]}
        itemsize = np.dtype(TOKEN_DTYPE).itemsize
        if (meta["settings"] == settings and (out / "train.bin").stat().st_size == meta["train_tokens"] * itemsize
                and (out / "val.bin").stat().st_size == meta["val_tokens"] * itemsize):
            return PreparedText(out / "train.bin", out / "val.bin", meta["vocab_size"], meta["tokenizer"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _tokenizer(source: Path, settings: dict) -> tuple[int, dict, Encoder]:
    """The vocabulary size, the info that rebuilds the tokenizer, and its stream encoder."""
    kind = settings["tokenizer_kind"]
    if kind == "char":
        chars = set()
        for text in read_text(source, 0, settings["size"]):
            chars.update(text)
        char_tokenizer = CharTokenizer(sorted(chars))

        def encode_chars(texts: Iterable[str]) -> Iterator[tuple[str, list[int]]]:
            return ((text, char_tokenizer.encode(text)) for text in texts)  # characters need no context

        return char_tokenizer.vocab_size, {"kind": "char", "chars": char_tokenizer.chars}, encode_chars
    if kind == "gpt2":
        bpe = BPETokenizer.from_gpt2_files(fetch("gpt2-vocab.bpe"), fetch("gpt2-encoder.json"))
        info = {"kind": "gpt2"}
    else:
        sample = _first_chars(source, settings["sample_chars"])
        bpe = BPETokenizer().train(sample, settings["vocab_size"], special_tokens=SPECIAL_TOKENS)
        info = {"kind": "bpe", "tables": bpe.to_dict()}
    return bpe.vocab_size, info, lambda texts: bpe.encode_stream(texts, allowed_special="all")


def _first_chars(source: Path, n: int) -> str:
    pieces, total = [], 0
    for text in read_text(source, 0, source.stat().st_size):
        pieces.append(text)
        total += len(text)
        if total >= n:
            break
    return "".join(pieces)[:n]


def read_text(source: Path, start: int, stop: int) -> Iterator[str]:
    """The text of bytes start..stop of a UTF-8 file (start at a character boundary), a piece at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(source, "rb") as f:
        f.seek(start)
        position = start
        while position < stop and (block := f.read(min(READ_BYTES, stop - position))):
            try:
                yield decoder.decode(block, final=position + len(block) >= stop)
            except UnicodeDecodeError as error:
                raise ValueError(f"{source} is not UTF-8 text (byte {position + error.start} near {error.object[error.start:error.start + 4]!r}); "
                                 "convert it to UTF-8 first, e.g. with iconv -f latin1 -t utf-8") from None
            position += len(block)


def _split_point(source: Path, size: int, val_fraction: float) -> int:
    """The byte where validation begins: after the first line end at or past (1 - val_fraction) of the file,
    or, without one, at the first character boundary there."""
    target = int(size * (1 - val_fraction))
    with open(source, "rb") as f:
        f.seek(target)
        offset = target
        while block := f.read(READ_BYTES):
            if (i := block.find(b"\n")) >= 0:
                offset += i + 1
                break
            offset += len(block)
        if offset >= size:  # no line end with text after it: cut at a character, not inside one
            f.seek(target)
            offset = target + next((i for i, b in enumerate(f.read(4)) if b & 0xC0 != 0x80), 0)
    if not 0 < offset < size:
        raise ValueError(f"{source} is too small to split into training and validation text ({size} bytes); "
                         "give a longer text or another val_fraction")
    return offset


def _progress_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".progress.json")


def _resume_point(progress_path: Path, region: dict) -> tuple[int, int, bool]:
    """(bytes, tokens, done) as an earlier run with the same settings recorded them, or (0, 0, False)."""
    try:
        progress = json.loads(progress_path.read_text(encoding="utf-8"))
        if progress["region"] == region:
            return int(progress["bytes"]), int(progress["tokens"]), progress["done"] is True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return 0, 0, False


def _save_progress(progress_path: Path, region: dict, n_bytes: int, n_tokens: int, done: bool = False) -> None:
    with atomic_write(progress_path, "w", encoding="utf-8") as f:
        json.dump({"region": region, "bytes": n_bytes, "tokens": n_tokens, "done": done}, f)


def _durable(out_file) -> None:
    out_file.flush()
    os.fsync(out_file.fileno())


def _encode_region(source: Path, region: dict, encode_stream: Encoder, out_path: Path, bar) -> int:
    """Encode bytes region["start"]..region["stop"] of the file into out_path, resuming from its .part file.

    Each record says: the part file's first `tokens` ids are those of the region's first `bytes` bytes. The
    pieces of encode_stream end where no later text can change their ids, so encoding on from there gives
    the same ids as one uninterrupted pass. Ids are made durable before the record that counts them.
    """
    part, progress_path = out_path.with_name(out_path.name + ".part"), _progress_path(out_path)
    itemsize = np.dtype(TOKEN_DTYPE).itemsize
    n_bytes, n_tokens, done = _resume_point(progress_path, region)
    if done and out_path.exists() and out_path.stat().st_size == n_tokens * itemsize:
        bar.update(n_bytes)  # finished by an earlier run
        return n_tokens
    if done or not part.exists() or part.stat().st_size < n_tokens * itemsize:
        n_bytes, n_tokens = 0, 0  # nothing to resume from: start afresh
    bar.update(n_bytes)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(part, "r+b" if n_tokens else "wb") as out_file:
        out_file.truncate(n_tokens * itemsize)  # drop ids written after the last record
        out_file.seek(n_tokens * itemsize)
        unsaved = 0
        for text, ids in encode_stream(read_text(source, region["start"] + n_bytes, region["stop"])):
            np.asarray(ids, dtype=TOKEN_DTYPE).tofile(out_file)
            size = len(text.encode("utf-8"))
            n_bytes, n_tokens, unsaved = n_bytes + size, n_tokens + len(ids), unsaved + size
            bar.update(size)
            if unsaved >= SAVE_EVERY_BYTES:
                _durable(out_file)
                _save_progress(progress_path, region, n_bytes, n_tokens)
                unsaved = 0
        _durable(out_file)
    os.replace(part, out_path)
    _save_progress(progress_path, region, n_bytes, n_tokens, done=True)
    return n_tokens
