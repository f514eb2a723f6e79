"""Check that this machine can run the course, and say how to fix what it cannot.

    python -m helpers.doctor          # one line per check (OK, WARN or FAIL), each problem with its fix
    python -m helpers.doctor --json   # the same as JSON, to paste into a bug report
    python helpers/doctor.py          # the same, when `import helpers` itself fails (torch missing, say)

A tool, not taught in a lesson. It checks the Python and package versions (the lower bounds of
requirements.txt, or of the installed package), that torch imports, the device and precision the course
will pick with one tiny forward and backward pass of a GPT there, that Tiny Shakespeare and GPT-2's BPE
files are in the data folder or can be obtained, that helpers/ matches the notebooks, and the free disk
space. It exits 0 when nothing FAILs. It changes nothing, downloads nothing.

Every check is a function of its inputs (versions, folders, a network probe), so the tests run each
one on faked inputs and never touch the network.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python helpers/doctor.py): make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages in an installed package
PACKAGE = "gpt-from-scratch"
MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python
TEST_ONLY = {"pytest", "nbval", "ruff"}  # needed to run the tests, not the lessons
COURSE_ASSETS = ("tinyshakespeare", "gpt2-vocab.bpe", "gpt2-encoder.json")  # what the lessons download
DISK_WARN = 2 * 1024**3  # bytes free in the data folder below which the doctor warns
DISK_FAIL = 200 * 1024**2  # ... and below which it fails
OFFLINE_FIX = "export GPTFS_OFFLINE_DIR=/path/to/unzipped/bundle  # made by: python -m helpers.bundle bundle.zip"

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass
class Check:
    """The outcome of one check: its status, what was found, and the command that fixes a problem."""

    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""


# ----------------------------------------------------------------------------- versions


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: "2.13.0+cpu" -> (2, 13, 0), "0.7rc1" -> (0, 7)."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
        if match.end() < len(part):  # "7rc1": a pre-release or local tag ends the numbers
            break
    return tuple(numbers)


def parse_requirements(text: str) -> list[tuple[str, str]]:
    """(name, lower bound) for each `name>=version` line; comments, `-e .`, options and extras are skipped."""
    requirements = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        if ";" in line:  # an environment marker, e.g. `extra == "test"` in package metadata
            requirement, marker = line.split(";", 1)
            if "extra" in marker:
                continue
            line = requirement.strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*(?:>=\s*([0-9][^,\s]*))?.*", line)
        if match:
            requirements.append((re.sub(r"\[.*\]", "", match.group(1)), match.group(2) or ""))
    return requirements


def course_requirements() -> tuple[list[tuple[str, str]], str]:
    """The course's requirements and where they come from: requirements.txt in a checkout, else the
    installed package's metadata (its runtime dependencies only)."""
    path = ROOT / "requirements.txt"
    if path.is_file():
        return parse_requirements(path.read_text(encoding="utf-8")), "requirements.txt"
    try:
        requires = importlib.metadata.requires(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    return parse_requirements("\n".join(requires)), f"the {PACKAGE} package"


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python itself must be at least MIN_PYTHON."""
    shown = ".".join(map(str, version))
    needed = ".".join(map(str, MIN_PYTHON))
    if tuple(version[:2]) < MIN_PYTHON:
        return Check("python", FAIL, f"Python {shown}, the course needs >= {needed}",
                     f"install Python {needed} or newer (python.org, conda or pyenv), then reinstall the course in it")
    return Check("python", OK, f"Python {shown} (needs >= {needed})")


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_package(name: str, minimum: str, version_of: Callable[[str], str | None] = _installed_version) -> Check:
    """A package must be installed, at `minimum` or newer. Test-only tools WARN instead of FAIL."""
    bound = f">={minimum}" if minimum else ""
    fix = f'pip install "{name}{bound}"'
    severity = WARN if name.lower() in TEST_ONLY else FAIL
    purpose = " (needed only to run the tests)" if severity == WARN else ""
    installed = version_of(name)
    if installed is None:
        return Check(f"package {name}", severity, f"{name} is not installed{purpose}", fix)
    if minimum and version_tuple(installed) < version_tuple(minimum):
        return Check(f"package {name}", severity, f"{name} {installed} is older than {minimum}{purpose}",
                     f'pip install --upgrade "{name}{bound}"')
    return Check(f"package {name}", OK, f"{name} {installed}" + (f" (needs {bound})" if bound else ""))


def check_packages(requirements: list[tuple[str, str]],
                   version_of: Callable[[str], str | None] = _installed_version) -> list[Check]:
    return [check_package(name, minimum, version_of) for name, minimum in requirements]


# ----------------------------------------------------------------------------- torch and the device


def check_torch_import(importer: Callable[[str], object] = importlib.import_module) -> Check:
    """torch must import (a broken install or a missing CUDA library shows here)."""
    try:
        torch = importer("torch")
    except Exception as error:  # ImportError, OSError from a missing shared library, ...
        return Check("torch import", FAIL, f"import torch failed: {type(error).__name__}: {str(error)[:200]}",
                     'pip install --force-reinstall "torch>=2.2"  # see pytorch.org for the command for your GPU')
    cuda = getattr(getattr(torch, "version", None), "cuda", None)
    return Check("torch import", OK, f"torch {torch.__version__}" + (f", built for CUDA {cuda}" if cuda else ", CPU build"))


def tiny_step(choice) -> float:
    """One forward and backward pass of a 2-block GPT on the chosen device, under its autocast; the loss."""
    import torch

    from helpers.attention import GPTConfig
    from helpers.model import GPT

    generator = torch.Generator().manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)).to(choice.device)
    x = torch.randint(0, 65, (2, 16), generator=generator).to(choice.device)
    y = torch.randint(0, 65, (2, 16), generator=generator).to(choice.device)
    scaler = choice.grad_scaler()
    with choice.autocast():
        _, loss = model(x, y)
    scaler.scale(loss).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads or not all(torch.isfinite(g).all() for g in grads):
        raise FloatingPointError("the gradients are missing or not finite")
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss.item()}")
    return loss.item()


def check_device(choose: Callable[[], object] | None = None, step: Callable[[object], float] = tiny_step) -> list[Check]:
    """The device and precision the course will use, and one training step of a tiny GPT there."""
    try:
        if choose is None:
            from helpers.device import choose_device as choose
        choice = choose()
    except Exception as error:
        return [Check("device", FAIL, f"cannot choose a device: {type(error).__name__}: {error}",
                      "unset GPTFS_DEVICE  # or: export GPTFS_DEVICE=cpu")]
    checks = [Check("device", OK, str(choice))]
    try:
        loss = step(choice)
    except Exception as error:
        fix = "export GPTFS_DEVICE=cpu  # run on the CPU while you fix the GPU driver or torch install"
        if getattr(choice, "device_type", "cpu") == "cpu":
            fix = 'pip install --force-reinstall "torch>=2.2"'
        checks.append(Check("tiny training step", FAIL,
                            f"forward and backward on {choice.device} failed: {type(error).__name__}: {str(error)[:200]}",
                            fix))
    else:
        checks.append(Check("tiny training step", OK, f"forward and backward on {choice.device}: loss {loss:.2f}"))
    return checks


# ----------------------------------------------------------------------------- data


def probe_url(url: str, timeout: float = 3.0) -> bool:
    """Whether `url` answers a HEAD request within `timeout` seconds (the real network probe)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            return 200 <= response.status < 400
    except Exception:
        return False


def check_asset(asset, data_folder: Path, offline_dir: str | None, probe: Callable[[str], bool] | None) -> Check:
    """A course file must be verified in the data folder, or verifiable from GPTFS_OFFLINE_DIR, or downloadable.

    `probe` is the network probe (None: do not use the network)."""
    from helpers.downloads import sha256_of

    name = f"data {asset.name}"
    target = data_folder / asset.filename
    damaged = ""
    if target.is_file():
        if sha256_of(target) == asset.sha256:
            return Check(name, OK, f"verified in {data_folder}")
        damaged = f"the copy in {data_folder} fails its checksum (it will be replaced); "
    if offline_dir:
        folder = Path(offline_dir)
        candidates = [folder / asset.filename, folder / "data" / asset.filename,
                      folder / "tiktoken_cache" / asset.tiktoken_cache_name, folder / asset.tiktoken_cache_name]
        local = next((path for path in candidates if path.is_file()), None)
        if local is not None and sha256_of(local) == asset.sha256:
            return Check(name, OK, f"{damaged}a verified offline copy is at {local}")
        if local is not None:
            return Check(name, FAIL, f"{damaged}the offline copy {local} fails its checksum (sha256 {asset.sha256})",
                         f"rm {local}  # then unzip a fresh bundle: python -m helpers.bundle bundle.zip")
        damaged += f"GPTFS_OFFLINE_DIR={offline_dir} holds no copy; "
    if probe is not None and probe(asset.url):
        return Check(name, OK, f"{damaged}not downloaded yet; {asset.url} is reachable")
    reached = "the network was not probed" if probe is None else f"{asset.url} cannot be reached"
    return Check(name, FAIL, f"{damaged}not in {data_folder}, no offline copy, and {reached}", OFFLINE_FIX)


def check_data(probe: Callable[[str], bool] | None = probe_url, data_folder: Path | None = None,
               offline_dir: str | None = None) -> list[Check]:
    """check_asset for the files the lessons download, in the course's data folder."""
    from helpers.downloads import ASSETS, OFFLINE_ENV, data_dir

    data_folder = data_folder or data_dir()
    offline_dir = offline_dir if offline_dir is not None else os.environ.get(OFFLINE_ENV)
    return [check_asset(ASSETS[name], data_folder, offline_dir, probe) for name in COURSE_ASSETS]


# ----------------------------------------------------------------------------- notebooks and disk


def check_sync(drift: Callable[[], list[str]] | None = None, notebooks_folder: Path | None = None) -> Check:
    """helpers/ must match the notebooks (in a checkout; an installed package has no notebooks to compare)."""
    notebooks_folder = notebooks_folder or ROOT / "notebooks"
    if not notebooks_folder.is_dir():
        return Check("notebooks in sync", OK, "skipped: an installed package, without the notebooks to compare")
    if drift is None:
        from helpers.notebooks import drift
    problems = drift()
    if not problems:
        return Check("notebooks in sync", OK, "helpers/ matches the notebooks")
    commands = []
    if any("export" in problem for problem in problems):
        commands.append("python -m helpers.notebooks export")
    if any("bootstrap" in problem for problem in problems):
        commands.append("python -m helpers.notebooks bootstrap")
    detail = f"{len(problems)} problem(s): " + "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
    return Check("notebooks in sync", FAIL, detail, " && ".join(commands) or "python -m helpers.notebooks check")


def check_disk(folder: Path | None = None, usage: Callable[[str], object] = shutil.disk_usage) -> Check:
    """Free space in the data folder: WARN under DISK_WARN, FAIL under DISK_FAIL."""
    if folder is None:
        from helpers.downloads import data_dir

        folder = data_dir()
    free = usage(str(folder)).free
    shown = f"{free / 1024**3:.1f} GB free in {folder}"
    fix = "free some disk space, or: export GPTFS_DATA_DIR=/a/folder/on/a/bigger/disk"
    if free < DISK_FAIL:
        return Check("disk space", FAIL, f"{shown}; the course needs at least {DISK_FAIL // 1024**2} MB", fix)
    if free < DISK_WARN:
        return Check("disk space", WARN, f"{shown}; training runs and GPT-2's weights want {DISK_WARN // 1024**3} GB", fix)
    return Check("disk space", OK, shown)


# ----------------------------------------------------------------------------- the whole run


def versions() -> dict[str, str]:
    """What a bug report needs to know about this machine."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in (PACKAGE, "torch", "tiktoken", "numpy", "matplotlib"):
        found[name] = _installed_version(name) or "not installed"
    try:
        import torch

        found["cuda"] = torch.version.cuda or "none"
        if torch.cuda.is_available():
            found["gpu"] = f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return found


def _helpers_importable() -> Check | None:
    """None if `import helpers` works, else a FAIL saying why (the checks that need it cannot run)."""
    try:
        importlib.import_module("helpers")
    except Exception as error:
        return Check("import helpers", FAIL, f"the course package does not import: {type(error).__name__}: {error}",
                     "pip install -r requirements.txt  # in a checkout; elsewhere: pip install gpt-from-scratch")
    return None


def run_checks(probe: Callable[[str], bool] | None = probe_url) -> list[Check]:
    """Every check, in order."""
    requirements, _ = course_requirements()
    checks = [check_python(), *check_packages(requirements), check_torch_import()]
    broken = _helpers_importable()
    if broken is not None:
        return [*checks, broken]
    checks += check_device()
    checks += check_data(probe)
    checks.append(check_sync())
    checks.append(check_disk())
    return checks


def verdict(checks: list[Check]) -> str:
    failed = [c for c in checks if c.status == FAIL]
    warned = [c for c in checks if c.status == WARN]
    if failed:
        return f"NOT READY: {len(failed)} check(s) failed ({', '.join(c.name for c in failed)}); run the fixes above"
    note = f" ({len(warned)} warning(s))" if warned else ""
    return f"READY: the course can run here{note}"


def report(checks: list[Check]) -> str:
    """One line per check, each problem followed by its fix, then the verdict."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    lines.append(f"Verdict: {verdict(checks)}")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"checks": [asdict(c) for c in checks], "verdict": verdict(checks),
                       "ok": not any(c.status == FAIL for c in checks), "versions": versions()}, indent=2)


def main(argv: list[str] | None = None, probe: Callable[[str], bool] | None = probe_url) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.doctor", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:5]))
    parser.add_argument("--json", action="store_true", help="print the checks as JSON (for a bug report)")
    parser.add_argument("--no-network", action="store_true",
                        help="do not probe the download URLs (a file not found locally then FAILs)")
    args = parser.parse_args(argv)
    checks = run_checks(None if args.no_network else probe)
    print(as_json(checks) if args.json else report(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
