"""How fast is our BPE? Training a 512-token vocabulary, encoding Tiny Shakespeare with GPT-2's merges, and
streaming a 50 MB file through encode_iterable.

Run: GPTFS_OFFLINE_DIR=../shared/offline python -m benchmarks.bpe [--simple] [--stream-mb 50]
Targets on a 2-core CPU (issue 14): training at most 0.5 s, encoding at most 0.2 s, with ids identical to
tiktoken's (the script stops with an error if they are not). Each figure is the best of --repeats runs; the
load average is printed before and after, since a shared machine makes timings noisy. `--simple` also times
the lesson's simple trainer (recount every pair after each merge) on the whole text, for comparison.
The streaming row writes Tiny Shakespeare repeated to `--stream-mb` MB in a temporary folder, streams it line
by line through encode_iterable (bounded memory), and compares with tiktoken's encode_ordinary_batch on the
same file, read whole and cut into its copies of Tiny Shakespeare, one per batch item; `--stream-mb 0` skips it.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also runs as `python benchmarks/bpe.py`

import helpers  # noqa: E402
from helpers.tokenization import BPETokenizer, train_simple  # noqa: E402


def best_of(repeats: int, make, run) -> tuple[float, object]:
    """The fastest of `repeats` timed calls of run(make()), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        subject = make()
        start = time.perf_counter()
        result = run(subject)
        best = min(best, time.perf_counter() - start)
    return best, result


def stream_row(text: str, gpt2: BPETokenizer, enc, megabytes: int) -> None:
    """Streaming-encode throughput in MB/s on a file of Tiny Shakespeare repeated, ours against tiktoken's."""
    copies = max(1, round(megabytes * 1e6 / len(text.encode("utf-8"))))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shakespeare_repeated.txt"
        with open(path, "w", encoding="utf-8", newline="") as f:
            for _ in range(copies):
                f.write(text)
        size_mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        with open(path, encoding="utf-8", newline="") as f:
            n_ours = sum(1 for _ in gpt2.encode_iterable(f))
        ours_s = time.perf_counter() - start
        whole = path.read_text(encoding="utf-8")
        pieces = [whole[i * len(text):(i + 1) * len(text)] for i in range(copies)]  # each copy ends with a line end
        start = time.perf_counter()
        batches = enc.encode_ordinary_batch(pieces)
        tiktoken_s = time.perf_counter() - start
    n_tiktoken = sum(map(len, batches))
    if n_ours != n_tiktoken:
        raise SystemExit(f"streamed {n_ours:,} tokens where tiktoken gives {n_tiktoken:,}")
    print(f"stream-encode {size_mb:.0f} MB (Tiny Shakespeare x{copies}) with encode_iterable: {ours_s:.1f} s, "
          f"{size_mb / ours_s:.1f} MB/s; tiktoken encode_ordinary_batch: {tiktoken_s:.1f} s, "
          f"{size_mb / tiktoken_s:.1f} MB/s; same number of tokens: {n_ours == n_tiktoken} ({n_ours:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simple", action="store_true", help="also time the simple trainer (about 20 s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best counts (default 5)")
    parser.add_argument("--stream-mb", type=int, default=50, help="size of the streamed file in MB (0: skip)")
    args = parser.parse_args()

    text = helpers.fetch("tinyshakespeare").read_text(encoding="utf-8")
    vocab_bpe, encoder_json = helpers.fetch("gpt2-vocab.bpe"), helpers.fetch("gpt2-encoder.json")
    enc = helpers.gpt2_tiktoken()
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    train_s, trained = best_of(args.repeats, BPETokenizer, lambda tok: tok.train(text, vocab_size=512))
    print(f"train vocab_size=512 on Tiny Shakespeare ({len(text):,} chars): {train_s:.3f} s  (target <= 0.5 s)")

    load_s, gpt2 = best_of(1, lambda: None, lambda _: BPETokenizer.from_gpt2_files(vocab_bpe, encoder_json))
    print(f"load GPT-2's files: {load_s:.2f} s")
    encode_s, ids = best_of(
        args.repeats, lambda: BPETokenizer.from_gpt2_files(vocab_bpe, encoder_json), lambda tok: tok.encode(text)
    )
    print(f"encode Tiny Shakespeare with GPT-2's merges (cold cache): {encode_s:.3f} s  (target <= 0.2 s)")
    tiktoken_s, reference = best_of(args.repeats, lambda: None, lambda _: enc.encode(text))
    print(f"tiktoken gpt2 encode: {tiktoken_s:.3f} s; identical ids: {ids == reference} ({len(ids):,} tokens)")
    if ids != reference:
        raise SystemExit("our ids differ from tiktoken's: the encoder is wrong, and its time means nothing")

    if args.stream_mb:
        stream_row(text, gpt2, enc, args.stream_mb)

    if args.simple:
        start = time.perf_counter()
        simple = train_simple(text, 512)
        print(f"simple trainer, vocab_size=512: {time.perf_counter() - start:.1f} s; "
              f"same merges as the fast one: {simple == trained.merges}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
