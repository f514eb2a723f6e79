"""The first code cell of every notebook: where the course is installed from, and the offline bundle.

Infrastructure, not taught in a lesson. The course's address is set here and nowhere else (REPO; a fork
or the published course changes that one line, see docs/instructor.md). `python -m helpers.notebooks
bootstrap` writes `notebook_cell()` into the first code cell of every notebook and `badges()` into each
lesson's first markdown cell; `python -m helpers.notebooks check` (run by the tests) fails if either drifted.

The cell runs before the course can be imported, so its logic is the plain-Python functions below
(CELL_FUNCTIONS), copied into it as source:

- on your own machine it installs nothing: a clone beside the notebook is put on sys.path, and a kernel
  that still cannot import `helpers` is told which Python it is and how to install the course into it;
- on Colab or Kaggle it installs the course from an offline bundle if one is there (a zip uploaded to
  Colab or kept in Google Drive; on Kaggle a dataset, unzipped by Kaggle or not), else from GitHub at
  this version's tag; when nothing works it says what it tried and the two ways forward.

Then `setup_notebook()` seeds, finds the bundle's files (an unzipped bundle around the notebook, or the
one used on Colab or Kaggle) and prints the device.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = "gpt-from-scratch/gpt-from-scratch"  # the course on GitHub, OWNER/NAME: the one place it is set
BUNDLE_FOLDER = "gpt-from-scratch-bundle"  # the one folder inside a bundle zip (helpers/bundle.py)
CHECKPOINT_PATH = "runs/shakespeare/ckpt.pt"  # a bundle's trained checkpoint, inside that folder
CELL_METADATA = {"cellView": "form", "jupyter": {"source_hidden": True}}  # the cell's code starts folded


def course_version() -> str:
    """The course's version: pyproject.toml's in a checkout, else the installed package's."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        project = pyproject.read_text(encoding="utf-8").split("[project]", 1)[-1].split("\n[", 1)[0]
        match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', project)
        if match:
            return match.group(1)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpt-from-scratch")
    except PackageNotFoundError:
        return "0.0.0"


TAG = f"v{course_version()}"  # the release a notebook installs and its badges open


# The cell's functions. They use only the standard library and the names the cell defines (REPO, TAG,
# BUNDLE_FOLDER), and no `X | None` annotations, so that an old Python still reaches the message.


class SetupError(Exception):
    """The course cannot be set up; Jupyter shows this message alone, without a traceback."""

    def _render_traceback_(self):
        return str(self).split("\n")


def hosted_platform():
    """'colab' or 'kaggle' when this kernel runs there, else None (your own machine)."""
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    if os.environ.get("COLAB_RELEASE_TAG") or "google.colab" in sys.modules:
        return "colab"
    return None


def hosted_roots(platform):
    """Where a learner's files are on Colab or Kaggle: (folder, how many folders down a bundle may sit).

    Colab: uploads in /content, Google Drive in /content/drive/MyDrive once mounted; Kaggle: datasets in
    /kaggle/input. GPTFS_COLAB_ROOT and GPTFS_KAGGLE_INPUT move them (the tests use temporary folders)."""
    content = os.environ.get("GPTFS_COLAB_ROOT", "/content")
    if platform == "colab":
        return [(content, 1), (os.path.join(content, "drive", "MyDrive"), 1)]
    if platform == "kaggle":
        return [(os.environ.get("GPTFS_KAGGLE_INPUT", "/kaggle/input"), 2)]
    return []


def version_key(wheel):
    """A course wheel's version as integers, to compare: 0.10.0 is newer than 0.9.0."""
    version = os.path.basename(wheel).split("-")[1]
    return tuple(int(re.match(r"\d*", part).group() or 0) for part in version.split("."))


def newest_wheel(names):
    """The newest course wheel among file names (gpt_from_scratch-VERSION-...whl), or None."""
    wheels = [n for n in names if re.match(r"gpt_from_scratch-[^-]+-.*\.whl$", os.path.basename(n))]
    return max(wheels, key=version_key) if wheels else None


def is_bundle(folder):
    """Whether `folder` is an unzipped offline bundle: its SHA256SUMS beside its data/ folder."""
    return os.path.isfile(os.path.join(folder, "SHA256SUMS")) and os.path.isdir(os.path.join(folder, "data"))


def within(root, pattern, depth):
    """Paths matching `pattern` in `root` or in folders at most `depth` levels below it."""
    return [hit for level in range(depth + 1) for hit in glob.glob(os.path.join(root, *["*"] * level, pattern))]


def find_bundles(roots):
    """Offline bundles under `roots` ((folder, depth) pairs), unzipped folders or zips: the newest course first."""
    found = {}
    for root, depth in roots:
        for marker in within(root, "SHA256SUMS", depth + 1):
            folder = os.path.dirname(marker)
            wheel = newest_wheel(glob.glob(os.path.join(folder, "wheels", "*.whl")))
            if is_bundle(folder) and wheel:
                found[folder] = (version_key(wheel), 1)
        for path in within(root, "*.zip", depth):
            try:
                with zipfile.ZipFile(path) as archive:
                    wheel = newest_wheel(n for n in archive.namelist() if n.startswith(BUNDLE_FOLDER + "/wheels/"))
            except (OSError, zipfile.BadZipFile):
                wheel = None
            if wheel:
                found[path] = (version_key(wheel), 0)  # at the same version an unzipped folder wins
    return sorted(found, key=found.get, reverse=True)


def unzip_bundle(path, unzip_to=None):
    """Unzip a bundle (once) into a temporary folder of this machine; return the bundle's folder."""
    unzip_to = unzip_to or os.path.join(tempfile.gettempdir(), "gpt-from-scratch-bundles")
    target = os.path.join(unzip_to, f"{os.path.basename(path)}-{os.path.getsize(path)}")
    if not is_bundle(os.path.join(target, BUNDLE_FOLDER)):
        os.makedirs(unzip_to, exist_ok=True)
        partial = tempfile.mkdtemp(prefix=".partial-", dir=unzip_to)  # renamed into place once complete
        with zipfile.ZipFile(path) as archive:
            archive.extractall(partial)
        shutil.rmtree(target, ignore_errors=True)  # what an interrupted older unzip may have left
        os.replace(partial, target)
    return os.path.join(target, BUNDLE_FOLDER)


def hosted_bundle(platform):
    """The folder of the newest offline bundle uploaded or attached on Colab or Kaggle, unzipped if need be."""
    for path in find_bundles(hosted_roots(platform)):
        if not path.endswith(".zip"):
            return path
        try:
            return unzip_bundle(path)
        except (OSError, zipfile.BadZipFile) as error:
            print(f"Skipping {path}: it does not unzip ({error})")
    return None


def enclosing_bundle(start=None, levels=3):
    """The unzipped bundle that holds the folder `start` (default: the working folder, the notebook's), or None."""
    folder = os.path.abspath(start or os.getcwd())
    for _ in range(levels + 1):
        if is_bundle(folder):
            return folder
        folder, child = os.path.dirname(folder), folder
        if folder == child:
            break
    return None


def install_source():
    """The course at this notebook's release on GitHub; GPTFS_REPO=OWNER/NAME[@REF] names another copy."""
    repo, _, ref = os.environ.get("GPTFS_REPO", REPO).partition("@")
    return f"git+https://github.com/{repo}.git@{ref or TAG}"


def install_attempts(bundle):
    """(what, pip install arguments) to try in turn: a bundle's wheel with no network, the same with PyPI
    for any dependency the machine lacks, then GitHub."""
    attempts = []
    wheel = newest_wheel(glob.glob(os.path.join(bundle, "wheels", "*.whl"))) if bundle else None
    if wheel:
        wheels = os.path.dirname(wheel)
        attempts.append((f"the offline bundle's wheel {wheel}", ["--no-index", "--find-links", wheels, wheel]))
        attempts.append(("the same wheel, with missing dependencies from PyPI", ["--find-links", wheels, wheel]))
    attempts.append((install_source(), [install_source()]))
    return attempts


def add_checkout_to_path():
    """In a clone of the course that is not pip-installed, make its helpers/ importable."""
    for up in ("..", os.path.join("..", "..")):
        if importlib.util.find_spec("helpers") is None and os.path.isfile(os.path.join(up, "helpers", "__init__.py")):
            sys.path.insert(0, os.path.abspath(up))


def local_help():
    """What to do when a kernel on your own machine cannot import the course."""
    python = f'& "{sys.executable}"' if os.name == "nt" else f'"{sys.executable}"'
    bundle = enclosing_bundle()
    if bundle:
        install = f'{python} -m pip install --no-index --find-links "{os.path.join(bundle, "wheels")}" ' \
                  '"gpt-from-scratch[notebooks]"'
    else:
        install = f"cd path/to/your/clone; {python} -m pip install -e ."
    return (f"This kernel cannot import the course (the package `helpers`); nothing was installed.\n"
            f"The kernel runs {sys.executable}. Either install the course into it, in a terminal:\n"
            f"    {install}\n"
            f"then restart the kernel, or choose the kernel of the environment where you installed it.")


def hosted_help(platform, tried):
    """What was tried on Colab or Kaggle, and the two ways forward."""
    if platform == "colab":
        upload = "upload the bundle zip in the Files pane (or keep it in Google Drive and mount Drive there)"
    else:
        upload = "upload the bundle zip as a dataset and attach it to this notebook (Add Input)"
    lines = ["The course could not be installed. Tried:", *(f"  - {what}" for what in tried),
             "Two ways forward, then run this cell again:",
             f"  1. {upload}; your instructor has it, or `python -m helpers.bundle bundle.zip` makes it;",
             f"  2. or set the course's address: `%env GPTFS_REPO=OWNER/NAME` (a fork or the published course; "
             f"OWNER/NAME@BRANCH for another version than {TAG})."]
    if platform == "kaggle":
        lines.append("     (GitHub needs the notebook's Internet switched on, in its settings.)")
    return "\n".join(lines)


def ensure_course(run=subprocess.run):
    """Make `import helpers` work, installing it on Colab or Kaggle; else raise SetupError saying why."""
    add_checkout_to_path()
    if importlib.util.find_spec("helpers") is not None:
        return
    platform = hosted_platform()
    if platform is None:
        raise SetupError(local_help())
    bundle, tried = hosted_bundle(platform), []
    if not bundle:
        where = ", ".join(root for root, _ in hosted_roots(platform))
        tried.append(f"an offline bundle (the zip, or its {BUNDLE_FOLDER} folder) in {where}: none found")
    elif not os.environ.get("GPTFS_OFFLINE_DIR"):
        os.environ["GPTFS_OFFLINE_DIR"] = bundle  # the data comes from the bundle too
    for what, args in install_attempts(bundle):
        print(f"Installing the course from {what} ...")
        result = run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if result.returncode == 0:
            importlib.invalidate_caches()
            return
        reason = (result.stderr or result.stdout or "").strip().split("\n")[-1]
        tried.append(f"{what}: pip failed ({reason})")
    raise SetupError(hosted_help(platform, tried))


CELL_FUNCTIONS = (SetupError, hosted_platform, hosted_roots, version_key, newest_wheel, is_bundle, within,
                  find_bundles, unzip_bundle, hosted_bundle, enclosing_bundle, install_source, install_attempts,
                  add_checkout_to_path, local_help, hosted_help, ensure_course)

_CELL = '''\
#@title Setup {{ display-mode: "form" }}
# Installs the course on Colab or Kaggle (from an offline bundle when there is one); on your own machine it
# installs nothing. Generated from helpers/bootstrap.py: edit it there, then `python -m helpers.notebooks bootstrap`.
import glob, importlib, importlib.util, os, re, shutil, subprocess, sys, tempfile, zipfile
REPO, TAG, BUNDLE_FOLDER = {repo!r}, {tag!r}, {bundle_folder!r}


{functions}


ensure_course()
from helpers import setup_notebook
device = setup_notebook()'''


def notebook_cell() -> str:
    """The text of every notebook's first code cell."""
    functions = "\n\n".join(inspect.getsource(f).rstrip() for f in CELL_FUNCTIONS)
    return _CELL.format(repo=REPO, tag=TAG, bundle_folder=BUNDLE_FOLDER, functions=functions)


def badges(notebook: str) -> str:
    """Markdown for the Colab and Kaggle badges of a notebook (its path in the repository), at this release."""
    url = f"https://github.com/{REPO}/blob/{TAG}/{notebook}"
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{REPO}/blob/{TAG}/{notebook}) "
        f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]"
        f"(https://kaggle.com/kernels/welcome?src={url})"
    )


def bundle_folder() -> str | None:
    """The offline bundle this notebook can use: GPTFS_OFFLINE_DIR if it is one, else the unzipped bundle the
    notebook sits in, else (on Colab or Kaggle) one uploaded or attached there. None when there is none."""
    offline = os.environ.get("GPTFS_OFFLINE_DIR")
    if offline and is_bundle(offline):
        return offline
    platform = hosted_platform()
    return enclosing_bundle() or (hosted_bundle(platform) if platform else None)


def bundle_checkpoint() -> Path | None:
    """The trained checkpoint shipped in the offline bundle (runs/shakespeare/ckpt.pt), or None without one."""
    folder = bundle_folder()
    path = Path(folder, CHECKPOINT_PATH) if folder else None
    return path if path is not None and path.is_file() else None


def setup_notebook(seed: int = 1337):
    """Seed everything, take the course's files from an offline bundle if there is one, and print the device."""
    from helpers.device import choose_device
    from helpers.downloads import OFFLINE_ENV
    from helpers.seeding import set_seed

    if not os.environ.get(OFFLINE_ENV):
        folder = bundle_folder()
        if folder:
            os.environ[OFFLINE_ENV] = folder
    set_seed(seed)
    choice = choose_device()
    print(f"Device: {choice}")
    return choice
