"""Generate text from a trained GPT on the command line: a thin layer over helpers.generation (lesson 09).

    python -m helpers.generate --ckpt runs/cpu --prompt "ROMEO:" --temperature 0.8 --top-k 20
    python -m helpers.generate --ckpt gpt2 --prompt "The meaning of life is" --top-p 0.9 --max-new-tokens 50

--ckpt is a checkpoint of helpers.train (a ckpt.pt file or its run folder), or GPT-2's weights (a name such
as gpt2, or a model.safetensors file). The text is printed as it is generated; generation stops after
--max-new-tokens tokens or at the tokenizer's <|endoftext|>. Do not import this module: `helpers.generate`
is also the generate() function.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from helpers.device import choose_device
from helpers.downloads import DownloadError
from helpers.generation import decoding_layout, stream_text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.generate", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[1:]))
    parser.add_argument("--ckpt", required=True, help="a checkpoint (ckpt.pt or its run folder), or gpt2 / a model.safetensors")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; below 1 safer, above 1 wilder (default 1.0)")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="sample only within the nucleus of probability p")
    parser.add_argument("--seed", type=int, default=1337, help="random seed, for a repeatable output (default 1337)")
    parser.add_argument("--no-cache", action="store_true", help="recompute everything at every step (slow; for comparison)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    return parser


def load_model(ckpt: str, device: str):
    """The model (in eval mode, on device) and tokenizer of a training checkpoint, or of GPT-2's weights."""
    from helpers.model import GPT, GPT2_NAMES

    if ckpt in GPT2_NAMES or ckpt.endswith(".safetensors"):
        from helpers.downloads import gpt2_tiktoken

        return GPT.from_pretrained(ckpt).to(device), gpt2_tiktoken()
    from helpers.training import load_trained

    return load_trained(Path(ckpt), device=device)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = choose_device(args.device).device
        model, tokenizer = load_model(args.ckpt, device)
        if device == "cpu":
            decoding_layout(model)  # same weights in (in, out) memory order: faster one-token steps on a CPU
        generator = torch.Generator(device=device).manual_seed(args.seed)
        pieces = stream_text(model, tokenizer, args.prompt, args.max_new_tokens, temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p, use_cache=not args.no_cache, generator=generator)
        print(args.prompt, end="", flush=True)
        for piece in pieces:
            print(piece, end="", flush=True)
        print()
    except (ValueError, OSError, DownloadError) as error:  # bad input, or weights not to be had: one clear line
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
