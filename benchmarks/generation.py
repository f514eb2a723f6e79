"""Benchmark lesson 09's generation on CPU: KV cache vs no cache, and ours vs Hugging Face's generate.

A GPT-2-small-shaped model (12 layers, 12 heads, n_embd 768, vocab 50257) with random weights; the same
weights are loaded into transformers' GPT2LMHeadModel. Each run generates --new tokens greedily from a
--prompt-token prompt; the script checks that all three give identical tokens and prints tokens per second
(the best of --repeats runs, after one warm-up) and the machine's load, since a shared CPU makes timings noisy.

    python benchmarks/generation.py [--new 200] [--prompt 16] [--repeats 3] [--skip-uncached]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from helpers.generation import generate
from helpers.model import GPT, GPTConfig, load_hf_gpt2_state_dict


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    """The fastest of `repeats` timed calls of fn (after one untimed warm-up), and fn's output."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=int, default=200, help="new tokens per run (default 200)")
    parser.add_argument("--prompt", type=int, default=16, help="prompt length in tokens (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant; the best counts (default 3)")
    parser.add_argument("--skip-uncached", action="store_true", help="skip the slow run without the cache")
    args = parser.parse_args()

    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024)).eval()
    hf.generation_config.eos_token_id = None  # never stop early: every run makes exactly --new tokens
    hf.generation_config.pad_token_id = 0
    ours = GPT(GPTConfig.from_preset("gpt2"))
    load_hf_gpt2_state_dict(ours, hf.state_dict())
    ours.eval()
    prompt = torch.randint(0, 50257, (1, args.prompt), generator=torch.Generator().manual_seed(0))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average before: {os.getloadavg()}")
    runs = {
        "ours, KV cache": lambda: generate(ours, prompt, args.new, temperature=0),
        "Hugging Face generate": lambda: hf.generate(prompt, max_new_tokens=args.new, do_sample=False,
                                                     attention_mask=torch.ones_like(prompt)),
    }
    if not args.skip_uncached:
        runs["ours, no cache"] = lambda: generate(ours, prompt, args.new, temperature=0, use_cache=False)
    seconds, outputs = {}, {}
    for name, fn in runs.items():
        with torch.inference_mode():
            seconds[name], outputs[name] = best_time(fn, 1 if name == "ours, no cache" else args.repeats)
        print(f"{name:24s} {seconds[name]:7.2f} s  {args.new / seconds[name]:7.1f} tokens/s")
    reference = outputs["ours, KV cache"]
    for name, out in outputs.items():
        assert out.shape == (1, args.prompt + args.new), f"{name} made {out.shape[1] - args.prompt} tokens"
        assert torch.equal(out, reference), f"{name} made different tokens from ours with the KV cache"
    print("identical tokens: yes")
    hf_ratio = seconds["Hugging Face generate"] / seconds["ours, KV cache"]
    print(f"ours (cached) vs Hugging Face, tokens/s ratio: {hf_ratio:.2f}x")
    if "ours, no cache" in seconds:
        print(f"KV cache speedup over no cache: {seconds['ours, no cache'] / seconds['ours, KV cache']:.1f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
