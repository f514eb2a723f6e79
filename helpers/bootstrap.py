"""The first code cell of every notebook, and where the course is installed from.

Infrastructure, not taught in a lesson. The install source is named here and
nowhere else: `python -m helpers.notebooks bootstrap` writes `notebook_cell()`
into the first code cell of every notebook, and `python -m helpers.notebooks check`
(run by the tests) fails if a notebook's copy differs.

On Colab or Kaggle the cell installs the course package (from an attached offline
bundle if Kaggle has one, else from GitHub). On your own machine, where the
package is already installed, it installs nothing. Either way it then prints the
device and precision the course will use.
"""

from __future__ import annotations

import glob
import inspect
import os

REPO = "gpt-from-scratch/gpt-from-scratch"  # the course's GitHub repository
INSTALL_SOURCE = f"git+https://github.com/{REPO}.git"
KAGGLE_INPUT = "/kaggle/input"  # where Kaggle mounts attached datasets, such as an offline bundle


def install_args(input_root="/kaggle/input"):
    """pip arguments that install the course: an attached bundle's wheel if there is one, else INSTALL_SOURCE."""
    wheels = sorted(glob.glob(os.path.join(input_root, "**", "gpt_from_scratch-*.whl"), recursive=True))
    if wheels:
        return ["--no-index", "--find-links", os.path.dirname(wheels[-1]), "gpt-from-scratch"]
    return [INSTALL_SOURCE]


_CELL = '''\
# Setup. On Colab or Kaggle this installs the course package; on your own machine it installs nothing.
# (Generated from helpers/bootstrap.py: edit it there, then run `python -m helpers.notebooks bootstrap`.)
import glob, importlib.util, os, subprocess, sys
for up in ("..", os.path.join("..", "..")):  # a checkout of the course that is not pip-installed
    if importlib.util.find_spec("helpers") is None and os.path.isdir(os.path.join(up, "helpers")):
        sys.path.insert(0, os.path.abspath(up))
INSTALL_SOURCE = "{install_source}"
{install_args}
if importlib.util.find_spec("helpers") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *install_args()], check=True)
from helpers import setup_notebook
device = setup_notebook()'''


def notebook_cell() -> str:
    """The text of every notebook's first code cell."""
    return _CELL.format(install_source=INSTALL_SOURCE, install_args=inspect.getsource(install_args).rstrip())


def badges(notebook: str) -> str:
    """Markdown for the Colab and Kaggle badges of a notebook, given its path in the repository."""
    url = f"https://github.com/{REPO}/blob/main/{notebook}"
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{REPO}/blob/main/{notebook}) "
        f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]"
        f"(https://kaggle.com/kernels/welcome?src={url})"
    )


def find_bundle_data(input_root: str | None = None) -> str | None:
    """The folder of an attached offline bundle that holds the course's data files, if any."""
    input_root = input_root or KAGGLE_INPUT
    hits = sorted(glob.glob(os.path.join(input_root, "**", "tinyshakespeare.txt"), recursive=True))
    return os.path.dirname(hits[-1]) if hits else None


def setup_notebook(seed: int = 1337):
    """Seed everything, use an attached offline bundle's files if present, and print the device choice."""
    from helpers.device import choose_device
    from helpers.downloads import OFFLINE_ENV
    from helpers.seeding import set_seed

    if not os.environ.get(OFFLINE_ENV):
        bundle = find_bundle_data()
        if bundle:
            os.environ[OFFLINE_ENV] = os.path.dirname(bundle) if bundle.endswith("data") else bundle
    set_seed(seed)
    choice = choose_device()
    print(f"Device: {choice}")
    return choice
