"""Make an offline bundle: everything a workshop needs, in one zip, for rooms without wifi.

    python -m helpers.bundle bundle.zip
    python -m helpers.bundle bundle.zip --checkpoint notebooks/runs/lesson08-cpu/ckpt.pt
    python -m helpers.bundle bundle.zip --with-deps   # also the dependencies' wheels (all but torch)
    python -m helpers.bundle bundle.zip --with-deps --platforms linux-x86_64 --pythons 3.11

A tool, not taught in a lesson; run it from a checkout, on a machine that has the files (or the network).
The zip holds one folder, gpt-from-scratch-bundle/, with:

    wheels/gpt_from_scratch-<version>-py3-none-any.whl   the course package
    wheels/*.whl                                          with --with-deps: its dependencies and those of its
                                                          [notebooks] extra (Jupyter, transformers) but torch,
                                                          for Windows x86-64, macOS arm64 and Linux x86-64 with
                                                          Python 3.10-3.12 (--platforms, --pythons change that)
    notebooks/NN_*.ipynb, notebooks/solutions/NN_*.ipynb the lessons and their solutions
    data/tinyshakespeare.txt, data/gpt2-*                 the course's files, under the names fetch() gives them
    tiktoken_cache/<sha1 of URL>                          GPT-2's BPE files, laid out as tiktoken's cache
    runs/shakespeare/ckpt.pt                              a trained checkpoint (with --checkpoint)
    README.md, SHA256SUMS                                 how to use it; every file's checksum

That layout is what the course looks for: a notebook opened from notebooks/ finds data/ beside it (and
lesson 09 the checkpoint) with no setting; GPTFS_OFFLINE_DIR=<the folder> does the same for any program;
on Colab and Kaggle the bootstrap cell installs from wheels/ and reads data/ (see helpers/bootstrap.py).
Every data file is a verified copy (helpers.fetch); the zip is written atomically.
"""

from __future__ import annotations

import argparse
import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from helpers.bootstrap import BUNDLE_FOLDER, CHECKPOINT_PATH
from helpers.checkpoint import CheckpointError, load_checkpoint
from helpers.downloads import ASSETS, fetch, sha256_of
from helpers.files import atomic_write
from helpers.notebooks import ROOT, all_notebooks

FOLDER = BUNDLE_FOLDER  # the one top-level folder in the zip
COURSE_ASSETS = ("tinyshakespeare", "gpt2-vocab.bpe", "gpt2-encoder.json")
TIKTOKEN_ASSETS = ("gpt2-vocab.bpe", "gpt2-encoder.json")
EXTRAS = ("notebooks",)  # the extras whose wheels --with-deps packs too: Jupyter and transformers
# Where --with-deps packs wheels for: pip's platform tags for each machine (newest first), and Python versions.
PLATFORMS = {
    "linux-x86_64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "linux-aarch64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "macos-arm64": ("macosx_12_0_arm64",),  # pip also takes wheels made for older macOS
    "macos-x86_64": ("macosx_10_13_x86_64",),
    "windows-x86_64": ("win_amd64",),
}
DEFAULT_PLATFORMS = ("windows-x86_64", "macos-arm64", "linux-x86_64")
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12")
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE")  # besides helpers/, what building the wheel reads

README = """\
# GPT from Scratch: offline bundle

Everything the course downloads, and the course itself, for machines with no network: the course's
wheel, the lessons, Tiny Shakespeare, GPT-2's BPE files{checkpoint_note}.
{wheels_note}
torch is not inside (it is large and differs per machine): install it before the day.

## On your own machine

Once, with internet (a week ahead): make a virtual environment (systems such as Debian, Ubuntu and
Homebrew refuse a bare `pip install`) and put torch in it.

Linux and macOS (Terminal):

```bash
python3 -m venv ~/gptfs-env
source ~/gptfs-env/bin/activate
pip install torch      # Linux without an NVIDIA GPU: add --index-url https://download.pytorch.org/whl/cpu
```

Windows (PowerShell):

```powershell
py -m venv $HOME\\gptfs-env
& $HOME\\gptfs-env\\Scripts\\Activate.ps1   # if refused: Set-ExecutionPolicy -Scope CurrentUser RemoteSigned
pip install torch
```

Then unzip the bundle and install the course from it, in the same terminal (activate the environment
again in a new one).

Linux and macOS:

```bash
unzip {zip_name}                     # makes the folder {folder}/
cd {folder}
{install}
GPTFS_OFFLINE_DIR="$PWD" python -m helpers.doctor    # every line should say OK
jupyter lab notebooks/
```

Windows (PowerShell):

```powershell
Expand-Archive {zip_name} -DestinationPath .     # makes the folder {folder}\\
cd {folder}
{install}
$env:GPTFS_OFFLINE_DIR = "$PWD"; python -m helpers.doctor    # every line should say OK
jupyter lab notebooks
```

The notebooks need no setting: opened from `notebooks/` here, they find `data/`, `tiktoken_cache/` and
`{checkpoint_path}` beside them (each file checked against its sha256). Other programs (the doctor,
`python -m helpers train`) use them when `GPTFS_OFFLINE_DIR` names this folder, as above.

## On Colab

Put `{zip_name}` in the session's files (the Files pane on the left → Upload), or in your Google
Drive (then mount Drive from the Files pane). Open a lesson (its badge, or File → Upload notebook with
one of `notebooks/`) and run its first cell: it unzips the bundle, installs the course from its wheel
and reads the data from it. Uploaded files last as long as the session; Drive keeps them.

## On Kaggle

Make `{zip_name}` a dataset (Datasets → New Dataset; whether Kaggle unzips it or not, both work).
Open a lesson (its badge, or File → Import notebook), attach the dataset (Add Input), and run the
first cell: it installs the course from the bundle's wheel and reads the data from it, with the
notebook's internet off.

## What is inside

{contents}

`SHA256SUMS` lists every file's checksum: `sha256sum -c SHA256SUMS` checks them (Windows:
`Get-FileHash FILE` shows one).
"""


def readme(zip_name: str, files: dict[str, Path], with_deps: bool, platforms: tuple[str, ...],
           pythons: tuple[str, ...]) -> str:
    """The bundle's README.md: how to install from it on each OS, on Colab and on Kaggle."""
    if with_deps:
        install = 'pip install --no-index --find-links wheels "gpt-from-scratch[notebooks]"'
        wheels_note = (f"`wheels/` also holds the wheels of every other dependency, Jupyter and transformers "
                       f"included, for {', '.join(platforms)} with Python {', '.join(pythons)}.")
    else:
        install = 'pip install --find-links wheels "gpt-from-scratch[notebooks]"   # the dependencies need internet'
        wheels_note = ("The other dependencies (tiktoken, numpy, Jupyter, transformers ...) are not inside: "
                       "install the course from it while you have internet.")
    return README.format(zip_name=zip_name, folder=FOLDER, install=install, wheels_note=wheels_note,
                         checkpoint_path=CHECKPOINT_PATH, contents=_contents(files),
                         checkpoint_note=" and a trained checkpoint" if CHECKPOINT_PATH in files else "")


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


def bundle_requirements(wheel: Path, extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """What the course's wheel requires, with its `extras` (not its test extra) and without torch, which the
    room has (from the wheel's METADATA, so the bundle packs what that wheel asks for)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))
    declared = set(metadata.get_all("Provides-Extra") or [])
    if missing := [extra for extra in extras if extra not in declared]:
        raise BundleError(f"{wheel.name} declares no [{', '.join(missing)}] extra (it has: {sorted(declared)})")
    requirements = []
    for line in metadata.get_all("Requires-Dist") or []:
        parsed = Requirement(line)  # setuptools writes "tiktoken>=0.6.0", "tiktoken >=0.6.0" or "tiktoken (>=0.6.0)"
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", str(parsed.marker or ""))
        wanted = extra.group(1) in extras if extra else True
        requirement = f"{parsed.name}{parsed.specifier}"
        if wanted and parsed.name.lower() != "torch" and requirement not in requirements:
            requirements.append(requirement)
    return requirements


def check_targets(platforms: tuple[str, ...], pythons: tuple[str, ...]) -> None:
    """Refuse a platform name that PLATFORMS does not know, or a Python version that is not 3.N."""
    if unknown := [p for p in platforms if p not in PLATFORMS]:
        raise ValueError(f"unknown platform {', '.join(unknown)}; choose from {', '.join(PLATFORMS)}")
    if bad := [p for p in pythons if not re.fullmatch(r"3\.\d+", p)]:
        raise ValueError(f"a Python version is written like 3.11, not {', '.join(bad)}")
    if not platforms or not pythons:
        raise ValueError("name at least one platform and one Python version")


def download_commands(out_dir: Path, requirements: list[str], platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
                      pythons: tuple[str, ...] = DEFAULT_PYTHONS) -> list[list[str]]:
    """One `pip download` per platform and Python version, all into out_dir: pip takes only wheels, and one
    already there (a pure-Python wheel that every platform shares) is not downloaded again."""
    check_targets(platforms, pythons)
    commands = []
    for platform in platforms:
        for python in pythons:
            tags = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
            abi = "cp" + python.replace(".", "")
            commands.append([sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(out_dir),
                             *tags, "--python-version", python, "--implementation", "cp", "--abi", abi,
                             *requirements])
    return commands


def download_dependencies(out_dir: Path, requirements: list[str], platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
                          pythons: tuple[str, ...] = DEFAULT_PYTHONS, run=subprocess.run) -> list[Path]:
    """Download wheels of `requirements` (and theirs) into out_dir for each platform and Python version, so that
    `pip install --no-index --find-links wheels "gpt-from-scratch[notebooks]"` needs only torch. Returns them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    for command in download_commands(out_dir, requirements, platforms, pythons):
        where = f"{command[command.index('--platform') + 1]}, Python {command[command.index('--python-version') + 1]}"
        result = run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BundleError(f"pip download of the dependencies for {where} failed (this step needs the network; "
                              f"--platforms and --pythons choose the machines):\n{result.stderr[-2000:]}")
    return sorted(set(out_dir.glob("*.whl")) - before)


def bundle_files(checkpoint: Path | None = None, wheel_dir: Path | None = None, with_deps: bool = False,
                 platforms: tuple[str, ...] = DEFAULT_PLATFORMS,
                 pythons: tuple[str, ...] = DEFAULT_PYTHONS) -> dict[str, Path]:
    """What goes into the bundle: its path inside the bundle folder -> the file on this machine."""
    files: dict[str, Path] = {}
    if wheel_dir is not None:
        wheel = build_wheel(wheel_dir)
        files[f"wheels/{wheel.name}"] = wheel
        if with_deps:
            for dependency in download_dependencies(wheel_dir, bundle_requirements(wheel), platforms, pythons):
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


def make_bundle(out: str | Path, checkpoint: str | Path | None = None, with_deps: bool = False,
                platforms: tuple[str, ...] = DEFAULT_PLATFORMS, pythons: tuple[str, ...] = DEFAULT_PYTHONS) -> Path:
    """Write the offline bundle to `out` (a .zip), atomically; return its path."""
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"the bundle is a zip file: name it something.zip, not {out.name}")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and not checkpoint.exists():
        raise ValueError(f"no checkpoint at {checkpoint}; train one first (python -m helpers train --out DIR)")
    if with_deps:
        check_targets(platforms, pythons)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gptfs-bundle-") as tmp:
        files = bundle_files(checkpoint, Path(tmp) / "wheels", with_deps, platforms, pythons)
        text = readme(out.name, files, with_deps, platforms, pythons)
        sums = "".join(f"{sha256_of(path)}  {inside}\n" for inside, path in files.items())
        with atomic_write(out) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{FOLDER}/README.md", text)
            archive.writestr(f"{FOLDER}/SHA256SUMS", sums)
            for inside, path in files.items():
                archive.write(path, f"{FOLDER}/{inside}")
    return out


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers bundle", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[6:20]))
    parser.add_argument("out", metavar="OUT.zip", help="the zip file to write")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="a trained checkpoint (ckpt.pt or its run folder) to include as " + CHECKPOINT_PATH)
    parser.add_argument("--with-deps", action="store_true",
                        help="also put wheels of the dependencies and of the [notebooks] extra (all but torch) in "
                             "wheels/; needs the network while building")
    parser.add_argument("--platforms", default=",".join(DEFAULT_PLATFORMS), type=_names,
                        help=f"with --with-deps, the machines to pack wheels for, from {', '.join(PLATFORMS)} "
                             "(default: %(default)s)")
    parser.add_argument("--pythons", default=",".join(DEFAULT_PYTHONS), type=_names,
                        help="with --with-deps, the Python versions to pack wheels for (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        path = make_bundle(args.out, args.checkpoint, args.with_deps, args.platforms, args.pythons)
    except (ValueError, BundleError, CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1024**2:.1f} MB, {count} files); see {FOLDER}/README.md inside")
    return 0


if __name__ == "__main__":
    sys.exit(main())
