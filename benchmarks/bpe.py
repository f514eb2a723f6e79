"""How fast is our BPE? Training a 512-token vocabulary and encoding Tiny Shakespeare with GPT-2's merges.

Run: GPTFS_OFFLINE_DIR=../shared/offline python benchmarks/bpe.py [--simple]
Targets on a 2-core CPU: training at most 3 s, encoding at most 2 s. `--simple` also times the
lesson's simple trainer (recount every pair after each merge) on the whole text, for comparison.
"""

import argparse
import time

import helpers
from helpers.tokenization import BPETokenizer, train_simple


def best_of(repeats: int, make, run) -> tuple[float, object]:
    """The fastest of `repeats` timed calls of run(make()), and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        subject = make()
        start = time.perf_counter()
        result = run(subject)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--simple", action="store_true", help="also time the simple trainer (about 20 s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    text = helpers.fetch("tinyshakespeare").read_text(encoding="utf-8")
    vocab_bpe, encoder_json = helpers.fetch("gpt2-vocab.bpe"), helpers.fetch("gpt2-encoder.json")
    enc = helpers.gpt2_tiktoken()

    train_s, trained = best_of(args.repeats, BPETokenizer, lambda tok: tok.train(text, vocab_size=512))
    print(f"train vocab_size=512 on Tiny Shakespeare ({len(text):,} chars): {train_s:.2f} s  (target <= 3 s)")

    load_s, gpt2 = best_of(1, lambda: None, lambda _: BPETokenizer.from_gpt2_files(vocab_bpe, encoder_json))
    print(f"load GPT-2's files: {load_s:.2f} s")
    encode_s, ids = best_of(
        args.repeats, lambda: BPETokenizer.from_gpt2_files(vocab_bpe, encoder_json), lambda tok: tok.encode(text)
    )
    print(f"encode Tiny Shakespeare with GPT-2's merges (cold cache): {encode_s:.2f} s  (target <= 2 s)")
    tiktoken_s, reference = best_of(args.repeats, lambda: None, lambda _: enc.encode(text))
    print(f"tiktoken gpt2 encode: {tiktoken_s:.3f} s; identical ids: {ids == reference} ({len(ids):,} tokens)")

    if args.simple:
        start = time.perf_counter()
        simple = train_simple(text, 512)
        print(f"simple trainer, vocab_size=512: {time.perf_counter() - start:.1f} s; "
              f"same merges as the fast one: {simple == trained.merges}")


if __name__ == "__main__":
    main()
