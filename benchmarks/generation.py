"""Benchmark lesson 09's generation on CPU: KV cache vs no cache, and ours vs Hugging Face's generate.

A GPT-2-small-shaped model (12 layers, 12 heads, n_embd 768, vocab 50257) with random weights; the same
weights are loaded into transformers' GPT2LMHeadModel, and into a second copy of ours whose Linear weights
`decoding_layout` stores in (in, out) memory order, as Hugging Face's Conv1D does. Each run generates --new
tokens greedily from a --prompt-token prompt. The script checks that every variant gives identical tokens,
and prints tokens per second (the best and the median of --repeats alternating runs, after a warm-up; the
slow run without the cache runs once) and the machine's load, since a shared CPU makes timings noisy.

    python benchmarks/generation.py [--new 200] [--prompt 16] [--repeats 5] [--threads N] [--skip-uncached]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from helpers.generation import decoding_layout, generate
from helpers.model import GPT, load_hf_gpt2_state_dict, preset


def timed(fn) -> tuple[float, torch.Tensor]:
    """Seconds one call of fn takes, and its output."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=int, default=200, help="new tokens per run (default 200)")
    parser.add_argument("--prompt", type=int, default=16, help="prompt length in tokens (default 16)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours and HF's, alternating (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-uncached", action="store_true", help="skip the slow run without the cache")
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
    fast = decoding_layout(GPT(preset("gpt2")))  # the same weights, stored in (in, out) order
    load_hf_gpt2_state_dict(fast, hf.state_dict())
    fast.eval()
    prompt = torch.randint(0, 50257, (1, args.prompt), generator=torch.Generator().manual_seed(0))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average before: {os.getloadavg()}")
    runs = {
        "ours, KV cache": lambda: generate(ours, prompt, args.new, temperature=0),
        "ours, + decoding_layout": lambda: generate(fast, prompt, args.new, temperature=0),
        "Hugging Face generate": lambda: hf.generate(prompt, max_new_tokens=args.new, do_sample=False,
                                                     attention_mask=torch.ones_like(prompt)),
    }
    seconds, outputs = {name: [] for name in runs}, {}
    with torch.inference_mode():
        for fn in runs.values():
            fn()  # warm-up
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
    reference = outputs["ours, KV cache"]
    for name, out in outputs.items():
        assert out.shape == (1, args.prompt + args.new), f"{name} made {out.shape[1] - args.prompt} tokens"
        assert torch.equal(out, reference), f"{name} made different tokens from ours with the KV cache"
    print("identical tokens: yes")
    best = {name: min(times) for name, times in seconds.items()}
    median = {name: statistics.median(times) for name, times in seconds.items()}
    for name in ("ours, KV cache", "ours, + decoding_layout"):
        print(f"{name} vs Hugging Face, tokens/s ratio: {best['Hugging Face generate'] / best[name]:.2f}x "
              f"(best runs), {median['Hugging Face generate'] / median[name]:.2f}x (medians)")
    if "ours, no cache" in best:
        print(f"KV cache speedup over no cache: {best['ours, no cache'] / best['ours, KV cache']:.1f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
