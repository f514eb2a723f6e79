"""Make an offline bundle: everything a workshop needs, in one zip, for rooms without wifi.

    python -m helpers.bundle bundle.zip
    python -m helpers.bundle bundle.zip --checkpoint notebooks/runs/lesson08-cpu/ckpt.pt
    python -m helpers.bundle bundle.zip --with-deps   # also the dependencies' wheels (all but torch)

A tool, not taught in a lesson; run it from a checkout, on a machine that has the files (or the network).
The zip holds one folder, gpt-from-scratch-bundle/, with:

    wheels/gpt_from_scratch-<version>-py3-none-any.whl   the course package
    wheels/*.whl                                          with --with-deps: its dependencies but torch, for this
                                                          machine's OS and Python (build on a machine like the room's)
    notebooks/NN_*.ipynb, notebooks/solutions/NN_*.ipynb the lessons and their solutions
    data/tinyshakespeare.txt, data/gpt2-*                 the course's files, under the names fetch() gives them
    tiktoken_cache/<sha1 of URL>                          GPT-2's BPE files, laid out as tiktoken's cache
    runs/shakespeare/ckpt.pt                              a trained checkpoint (with --checkpoint)
    README.md, SHA256SUMS                                 how to use it; every file's checksum

That layout is what the course looks for: GPTFS_OFFLINE_DIR=<the folder> makes helpers.fetch() use
data/ and tiktoken_cache/, and on Kaggle the bootstrap cell finds wheels/ and data/ in an attached dataset.
Every data file is a verified copy (helpers.fetch); the zip is written atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from helpers.downloads import ASSETS, fetch, sha256_of
from helpers.files import atomic_write
from helpers.notebooks import ROOT, all_notebooks
from helpers.training import CheckpointError, load_checkpoint

FOLDER = "gpt-from-scratch-bundle"  # the one top-level folder in the zip
COURSE_ASSETS = ("tinyshakespeare", "gpt2-vocab.bpe", "gpt2-encoder.json")
TIKTOKEN_ASSETS = ("gpt2-vocab.bpe", "gpt2-encoder.json")
CHECKPOINT_PATH = "runs/shakespeare/ckpt.pt"  # where --checkpoint goes: load_trained("runs/shakespeare")
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE")  # besides helpers/, what building the wheel reads

README = """\
# GPT from Scratch: offline bundle

Everything the course downloads, and the course itself, for a machine with no network.
It assumes Python (3.10 or newer) and torch are installed. The course's other dependencies (tiktoken,
regex, numpy, matplotlib, tqdm, safetensors) must be installed too, unless the bundle was made with
`--with-deps`, which puts their wheels in `wheels/` for the OS and Python version it was made on. Jupyter
(to open the notebooks) is not included.

## On your own machine

```bash
unzip {zip_name}                     # makes the folder {folder}/
cd {folder}
pip install --no-index --find-links wheels gpt-from-scratch
export GPTFS_OFFLINE_DIR="$PWD"      # Windows (PowerShell): $env:GPTFS_OFFLINE_DIR = "$PWD"
python -m helpers.doctor             # every line should say OK
jupyter lab notebooks/
```

With `GPTFS_OFFLINE_DIR` set, the course copies Tiny Shakespeare and GPT-2's BPE files from `data/`
and `tiktoken_cache/` here (checking each file's sha256) instead of downloading them. From a clone of
the repository, skip the `pip install` line: the clone already has the package.

## On Kaggle

Upload `{zip_name}` as a dataset (Datasets → New dataset), then in a lesson's notebook use
*Add input* to attach it. The notebook's first cell finds the wheel under `/kaggle/input`, installs
the course from it with no network, and points the downloads at the bundle's `data/` folder.

## On Colab

Upload `{zip_name}`, then run `!unzip -q {zip_name}` and
`!pip install -q --no-index --find-links {folder}/wheels gpt-from-scratch` before the first cell, and
`import os; os.environ["GPTFS_OFFLINE_DIR"] = "/content/{folder}"`.

## What is inside

{contents}

`SHA256SUMS` lists every file's checksum: `sha256sum -c SHA256SUMS` checks them.
"""


class BundleError(RuntimeError):
    """The bundle cannot be made (no checkout to build from, a bad checkpoint, a failed wheel build)."""


def build_wheel(out_dir: Path, source: Path = ROOT) -> Path:
    """Build the course's wheel into `out_dir` with pip, offline, from a clean copy of the package's sources
    (so nothing stale in a build/ folder can slip into the wheel). Returns the wheel's path."""
    if not (source / "pyproject.toml").is_file():
        raise BundleError(f"{source} is not a checkout of the course (no pyproject.toml); "
                          "run python -m helpers.bundle from a clone of the repository")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gptfs-wheel-") as tmp:
        clean = Path(tmp) / "src"
        shutil.copytree(source / "helpers", clean / "helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in PACKAGE_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, clean / name)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", str(clean), "--no-deps", "--no-build-isolation", "--no-index",
             "-q", "-w", str(out_dir)],
            capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if result.returncode != 0:
            raise BundleError(f"pip wheel failed (is setuptools>=68 installed?):\n{result.stderr[-2000:]}")
    wheels = sorted(out_dir.glob("gpt_from_scratch-*.whl"))
    if not wheels:
        raise BundleError(f"pip wheel wrote no gpt_from_scratch-*.whl into {out_dir}")
    return wheels[-1]


def runtime_dependencies() -> list[str]:
    """The course's run-time requirements (from its installed metadata), without torch, which the room has."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires("gpt-from-scratch") or []
    except PackageNotFoundError as error:
        raise BundleError("the course is not installed here: run `pip install -e .` in the checkout first") from error
    runtime = [r for r in requirements if "extra ==" not in r]  # leave out the test extras
    return [r for r in runtime if not r.replace(" ", "").lower().startswith("torch")]


def download_dependencies(out_dir: Path, run=subprocess.run) -> list[Path]:
    """Download wheels of the course's dependencies (and theirs) but torch into out_dir, for this machine's OS
    and Python, so that `pip install --no-index --find-links wheels gpt-from-scratch` needs only torch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    result = run([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(out_dir),
                  *runtime_dependencies()], capture_output=True, text=True)
    if result.returncode != 0:
        raise BundleError(f"pip download of the dependencies failed (this step needs the network):\n"
                          f"{result.stderr[-2000:]}")
    return sorted(set(out_dir.glob("*.whl")) - before)


def bundle_files(checkpoint: Path | None = None, wheel_dir: Path | None = None,
                 with_deps: bool = False) -> dict[str, Path]:
    """What goes into the bundle: its path inside the bundle folder -> the file on this machine."""
    files: dict[str, Path] = {}
    if wheel_dir is not None:
        wheel = build_wheel(wheel_dir)
        files[f"wheels/{wheel.name}"] = wheel
        for dependency in download_dependencies(wheel_dir) if with_deps else []:
            files[f"wheels/{dependency.name}"] = dependency
    for notebook in all_notebooks():
        files[notebook.relative_to(ROOT).as_posix()] = notebook
    for name in COURSE_ASSETS:
        asset = ASSETS[name]
        path = fetch(name)  # a verified copy in the data folder, from the offline copy or the network
        files[f"data/{asset.filename}"] = path
        if name in TIKTOKEN_ASSETS:
            files[f"tiktoken_cache/{asset.tiktoken_cache_name}"] = path
    if checkpoint is not None:
        load_checkpoint(checkpoint)  # raises unless it is a readable checkpoint written by train()
        files[CHECKPOINT_PATH] = checkpoint if checkpoint.is_file() else checkpoint / "ckpt.pt"
    return files


def _contents(files: dict[str, Path]) -> str:
    lines = []
    for inside, path in files.items():
        size = path.stat().st_size
        shown = f"{size / 1024**2:.1f} MB" if size >= 1024**2 else f"{size / 1024:.0f} kB"
        lines.append(f"- `{inside}` ({shown})")
    return "\n".join(lines)


def make_bundle(out: str | Path, checkpoint: str | Path | None = None, with_deps: bool = False) -> Path:
    """Write the offline bundle to `out` (a .zip), atomically; return its path."""
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"the bundle is a zip file: name it something.zip, not {out.name}")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and not checkpoint.exists():
        raise ValueError(f"no checkpoint at {checkpoint}; train one first (python -m helpers.train --out DIR)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gptfs-bundle-") as tmp:
        files = bundle_files(checkpoint, wheel_dir=Path(tmp) / "wheels", with_deps=with_deps)
        readme = README.format(zip_name=out.name, folder=FOLDER, contents=_contents(files))
        sums = "".join(f"{sha256_of(path)}  {inside}\n" for inside, path in files.items())
        with atomic_write(out) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{FOLDER}/README.md", readme)
            archive.writestr(f"{FOLDER}/SHA256SUMS", sums)
            for inside, path in files.items():
                archive.write(path, f"{FOLDER}/{inside}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.bundle", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[6:20]))
    parser.add_argument("out", metavar="OUT.zip", help="the zip file to write")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="a trained checkpoint (ckpt.pt or its run folder) to include as " + CHECKPOINT_PATH)
    parser.add_argument("--with-deps", action="store_true",
                        help="also put wheels of the dependencies (all but torch) in wheels/, for this OS and Python; "
                             "needs the network while building")
    args = parser.parse_args(argv)
    try:
        path = make_bundle(args.out, args.checkpoint, args.with_deps)
    except (ValueError, BundleError, CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1024**2:.1f} MB, {count} files); see {FOLDER}/README.md inside")
    return 0


if __name__ == "__main__":
    sys.exit(main())
