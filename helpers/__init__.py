# ruff: noqa: I001  (imports follow the lessons, not the alphabet)
"""GPT from Scratch: the course's shared package.

Lesson modules are generated from the notebooks (see helpers/notebooks.py);
infrastructure modules are written by hand. This file only re-exports names,
lesson by lesson, so that `from helpers import GPT, GPTConfig` works.

Above the lessons sits the training engine (helpers/engine.py, checkpoint.py,
distributed.py), written by hand; its public names are re-exported at the end.
The command line is `python -m helpers COMMAND` (helpers/cli.py).
"""

try:
    # Infrastructure
    from helpers.bootstrap import setup_notebook
    from helpers.device import Capabilities, DeviceChoice, choose_device
    from helpers.downloads import ASSETS, DownloadError, data_dir, fetch, gpt2_tiktoken
    from helpers.seeding import set_seed

    # Lesson 01: tokenization
    from helpers.tokenization import BPETokenizer, CharTokenizer, GPT2_SPLIT_PATTERN

    # Lesson 02: embeddings and data
    from helpers.data import (
        BigramLanguageModel,
        PreparedData,
        TokenDataset,
        get_batch,
        prepare_shakespeare,
        read_tokens,
        sinusoidal_positions,
        train_val_split,
        write_tokens,
    )

    # Lesson 03: attention
    from helpers.attention import CausalSelfAttention, GPTConfig, Head, MultiHeadAttention

    # Lesson 04: LayerNorm and GELU
    from helpers.layers import GELU, MLP, LayerNorm

    # Lesson 05: the transformer block
    from helpers.block import Block

    # Lesson 06: the full GPT
    from helpers.model import GPT, PRESETS, WeightLoadError, load_hf_gpt2_state_dict, preset

    # Lesson 07: parameter counting
    from helpers.counting import (
        GPU_PEAK_FLOPS,
        count_params,
        flops_per_token,
        mfu,
        param_breakdown,
        peak_flops,
        training_memory,
        training_time,
        weight_bytes,
    )

    # Lesson 08: training
    from helpers.training import configure_optimizer, cross_entropy, estimate_loss, get_lr, train_step

    # Lesson 09: generation
    from helpers.generation import KVCache, generate, stream

    # Lesson 10: a modern LLM
    from helpers.modern import (
        GroupedQueryAttention,
        Llama,
        LlamaConfig,
        RMSNorm,
        RoPE,
        SwiGLU,
        load_hf_llama_state_dict,
    )

    # The training engine, above the lessons
    from helpers.checkpoint import CheckpointError, load_checkpoint, load_trained, save_checkpoint
    from helpers.engine import PROFILES, History, NonFiniteLossError, TrainConfig, profile, train
except ModuleNotFoundError as error:  # a dependency is missing: say how to fix it
    if (error.name or "").startswith("helpers"):
        raise
    raise ModuleNotFoundError(
        f"the course needs the package {error.name!r}, which is not installed here. Install everything with "
        "`pip install -r requirements.txt`, or run `python helpers/doctor.py` to see what else is missing."
    ) from error

__all__ = [
    # infrastructure
    "ASSETS", "Capabilities", "DeviceChoice", "DownloadError", "choose_device", "data_dir", "fetch",
    "gpt2_tiktoken", "set_seed", "setup_notebook",
    # 01
    "BPETokenizer", "CharTokenizer", "GPT2_SPLIT_PATTERN",
    # 02
    "BigramLanguageModel", "PreparedData", "TokenDataset", "get_batch", "prepare_shakespeare", "read_tokens",
    "sinusoidal_positions", "train_val_split", "write_tokens",
    # 03
    "CausalSelfAttention", "GPTConfig", "Head", "MultiHeadAttention",
    # 04
    "GELU", "LayerNorm", "MLP",
    # 05
    "Block",
    # 06
    "GPT", "PRESETS", "WeightLoadError", "load_hf_gpt2_state_dict", "preset",
    # 07
    "GPU_PEAK_FLOPS", "count_params", "flops_per_token", "mfu", "param_breakdown", "peak_flops",
    "training_memory", "training_time", "weight_bytes",
    # 08
    "configure_optimizer", "cross_entropy", "estimate_loss", "get_lr", "train_step",
    # 09
    "KVCache", "generate", "stream",
    # 10
    "GroupedQueryAttention", "Llama", "LlamaConfig", "RMSNorm", "RoPE", "SwiGLU", "load_hf_llama_state_dict",
    # the engine
    "CheckpointError", "load_checkpoint", "load_trained", "save_checkpoint",
    "PROFILES", "History", "NonFiniteLossError", "TrainConfig", "profile", "train",
]
