"""Seeding: one call makes a run repeatable. Infrastructure, not taught in a lesson."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int = 1337) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and every GPU), and return a seeded CPU generator.

    The returned generator is for code that takes one explicitly, such as
    `get_batch`, so that its draws do not depend on what else used the global RNG.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA and MPS device
    return torch.Generator().manual_seed(seed)
