"""GPT from Scratch: the course's shared package.

Lesson modules are generated from the notebooks (see helpers/notebooks.py);
infrastructure modules are written by hand. This file only re-exports names.
"""

from helpers.bootstrap import setup_notebook
from helpers.device import Capabilities, DeviceChoice, choose_device
from helpers.downloads import ASSETS, DownloadError, data_dir, fetch, gpt2_tiktoken
from helpers.seeding import set_seed

__all__ = [
    "ASSETS",
    "Capabilities",
    "DeviceChoice",
    "DownloadError",
    "choose_device",
    "data_dir",
    "fetch",
    "gpt2_tiktoken",
    "set_seed",
    "setup_notebook",
]
