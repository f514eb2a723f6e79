"""Benchmark lesson 09's generation on CPU: ours vs Hugging Face's generate, the KV cache vs no cache, and the
slide past block_size.

A GPT-2-small-shaped model (12 layers, 12 heads, n_embd 768, vocab 50257, block_size 1024) with random weights;
the same weights are loaded into transformers' GPT2LMHeadModel. Rows:

- ours vs Hugging Face: `generate` as a learner calls it (on a CPU it puts the Linear weights in (in, out)
  memory order on its first call, and leaves them so) against `GPT2LMHeadModel.generate`, greedy, --new
  tokens from a --prompt-token prompt, the best and the median of --repeats alternating runs after a
  warm-up; the tokens must be identical. The one-time cost of the conversion is printed too.
- KV cache vs no cache: the same run without the cache (one run, slow); identical tokens.
- window full: a prompt of block_size tokens and --full-new new ones, the exact slide (the default: a full
  window per token past block_size) against keep_when_full=block_size // 2 (one refill of half the window per
  block_size // 2 + 1 tokens); one run each. Their tokens differ by design; the share that agrees is printed.
- training step: since `generate` leaves the weights in the new order, one AdamW step of the CPU profile's
  model in each order, --repeats alternating rounds; the two must not differ beyond the noise.

The machine's load is printed, since a shared CPU makes timings noisy.

    python -m benchmarks.generation [--new 200] [--prompt 16] [--repeats 5] [--full-new 32] [--threads N]
                                    [--skip-uncached] [--skip-full] [--skip-train]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also runs as `python benchmarks/generation.py`

from helpers.generation import decoding_layout, generate  # noqa: E402
from helpers.model import GPT, load_hf_gpt2_state_dict, preset  # noqa: E402


def timed(fn) -> tuple[float, torch.Tensor]:
    """Seconds one call of fn takes, and its output."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def ours_vs_hf(args, ours: GPT, hf) -> None:
    prompt = torch.randint(0, 50257, (1, args.prompt), generator=torch.Generator().manual_seed(0))
    layout_seconds, _ = timed(lambda: decoding_layout(copy.deepcopy(ours)))  # what the first call pays, once
    layout_seconds -= timed(lambda: copy.deepcopy(ours))[0]
    runs = {
        "ours, generate": lambda: generate(ours, prompt, args.new, temperature=0),
        "Hugging Face generate": lambda: hf.generate(prompt, max_new_tokens=args.new, do_sample=False,
                                                     attention_mask=torch.ones_like(prompt)),
    }
    seconds, outputs = {name: [] for name in runs}, {}
    with torch.inference_mode():
        for fn in runs.values():
            fn()  # warm-up (and, for ours, the one-time layout conversion)
        for _ in range(args.repeats):  # alternate, so that a change in the machine's load hits both alike
            for name, fn in runs.items():
                elapsed, outputs[name] = timed(fn)
                seconds[name].append(elapsed)
        if not args.skip_uncached:  # slow: one run, no warm-up
            elapsed, outputs["ours, no cache"] = timed(
                lambda: generate(ours, prompt, args.new, temperature=0, use_cache=False))
            seconds["ours, no cache"] = [elapsed]
    for name, times in seconds.items():
        print(f"{name:24s} best {min(times):7.2f} s  median {statistics.median(times):7.2f} s  "
              f"{args.new / min(times):7.1f} tokens/s (best)")
    reference = outputs["ours, generate"]
    for name, out in outputs.items():
        assert out.shape == (1, args.prompt + args.new), f"{name} made {out.shape[1] - args.prompt} tokens"
        assert torch.equal(out, reference), f"{name} made different tokens from ours with the KV cache"
    print("identical tokens: yes")
    print(f"the first call's one-time layout conversion: {layout_seconds:.2f} s")
    best = {name: min(times) for name, times in seconds.items()}
    median = {name: statistics.median(times) for name, times in seconds.items()}
    hf_name = "Hugging Face generate"
    print(f"ours vs Hugging Face, tokens/s ratio: {best[hf_name] / best['ours, generate']:.2f}x (best runs), "
          f"{median[hf_name] / median['ours, generate']:.2f}x (medians)")
    if "ours, no cache" in best:
        print(f"KV cache speedup over no cache: {best['ours, no cache'] / best['ours, generate']:.1f}x (best runs), "
              f"{median['ours, no cache'] / median['ours, generate']:.1f}x (median)")


def window_full(args, ours: GPT) -> None:
    block_size = ours.config.block_size
    keep = block_size // 2
    prompt = torch.randint(0, 50257, (1, block_size), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        exact_s, exact = timed(lambda: generate(ours, prompt, args.full_new, temperature=0))
        keep_s, kept = timed(lambda: generate(ours, prompt, args.full_new, temperature=0, keep_when_full=keep))
    agree = (exact[0, block_size:] == kept[0, block_size:]).float().mean().item()
    print(f"window full ({block_size}-token prompt, {args.full_new} new tokens, the prompt's prefill included):")
    print(f"  exact slide (default)      {exact_s:7.2f} s  {args.full_new / exact_s:6.1f} tokens/s")
    print(f"  keep_when_full={keep:<10d} {keep_s:7.2f} s  {args.full_new / keep_s:6.1f} tokens/s")
    print(f"  speed-up {exact_s / keep_s:.1f}x; tokens equal to the exact slide's: {agree:.0%}")


def training_step(args) -> None:
    from benchmarks.train_step import SHAPES, build, time_steps

    shape = SHAPES["cpu-profile"]
    gen = torch.Generator().manual_seed(0)
    batches = [tuple(torch.randint(65, (shape["batch_size"], shape["block_size"]), generator=gen) for _ in "xy")
               for _ in range(4)]
    plain = build("ours", shape)
    converted = build("ours", shape)  # the same seed: the same weights, then in generate's order
    decoding_layout(converted[0])
    times = {"as built": [], "after generate": []}
    for built in (plain, converted):
        time_steps(*built, batches, 3)  # warm-up
    for _ in range(args.repeats):
        times["as built"].append(time_steps(*plain, batches, 10))
        times["after generate"].append(time_steps(*converted, batches, 10))
    built, after = (statistics.median(times[name]) for name in times)
    print(f"training step, CPU profile's model: as built {built:.1f} ms, after generate's layout {after:.1f} ms "
          "(its first training step puts the usual order back) "
          f"(medians of {args.repeats}); ratio {after / built:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=int, default=200, help="new tokens per run (default 200)")
    parser.add_argument("--prompt", type=int, default=16, help="prompt length in tokens (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours and HF's, alternating (default 5)")
    parser.add_argument("--full-new", type=int, default=32, help="new tokens after a block_size prompt (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-uncached", action="store_true", help="skip the slow run without the cache")
    parser.add_argument("--skip-full", action="store_true", help="skip the window-full runs")
    parser.add_argument("--skip-train", action="store_true", help="skip the training-step check")
    args = parser.parse_args()

    from transformers import GPT2Config, GPT2LMHeadModel

    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024)).eval()
    hf.generation_config.eos_token_id = None  # never stop early: every run makes exactly --new tokens
    hf.generation_config.pad_token_id = 0
    ours = GPT(preset("gpt2"))
    load_hf_gpt2_state_dict(ours, hf.state_dict())
    ours.eval()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average before: {os.getloadavg()}")
    ours_vs_hf(args, ours, hf)
    if not args.skip_full:
        window_full(args, ours)
    if not args.skip_train:
        training_step(args)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
