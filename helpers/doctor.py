"""Check that this machine can run the course, and say how to fix what it cannot.

    python -m helpers.doctor          # one line per check (OK, WARN or FAIL), each problem with its fix
    python -m helpers.doctor --json   # the same as JSON, to paste into a bug report
    python helpers/doctor.py          # the same, when `import helpers` itself fails (torch missing, say)

A tool, not taught in a lesson. It checks the Python and package versions (the lower bounds of
pyproject.toml, or of the installed package), that torch imports, the device and precision the course
will pick (and a GPU that this torch has no kernels for) with one tiny forward and backward pass of a GPT
there, that Tiny Shakespeare and GPT-2's BPE files are in the data folder or can be obtained, that helpers/
matches the notebooks, and the free disk space. It exits 0 when nothing FAILs. It changes nothing,
downloads nothing.

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
import shutil
import sys
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a file (python helpers/doctor.py): make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version
except ImportError:  # the version checks need it: check_packages says so, and the other checks still run
    Requirement = Version = None

ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages in an installed package
PACKAGE = "gpt-from-scratch"
MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python
PACKAGING = "packaging>=22.0"  # what the version checks need (pyproject.toml's bound)
EXTRA_PURPOSES = {"notebooks": "the notebooks", "test": "the tests"}  # pyproject.toml's extras
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


class Needed(NamedTuple):
    """A dependency of the course: its name, lower bound ("" for none) and the extras that want it
    (none: the course itself needs it)."""

    name: str
    minimum: str
    extras: tuple[str, ...] = ()


def parse_requirements(lines: Iterable[str], extras: Iterable[str] = EXTRA_PURPOSES) -> list[Needed]:
    """A Needed for each requirement, in order and once per name, from PEP 508 lines as package metadata
    writes them (`transformers>=4.40; extra == "test"`). A requirement whose marker does not hold for
    this Python, nor for any of `extras`, is left out."""
    needed: dict[str, Needed] = {}
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        wanted_by: tuple[str, ...] = ()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            wanted_by = tuple(extra for extra in extras if requirement.marker.evaluate({"extra": extra}))
            if not wanted_by:
                continue
        minimum = next((spec.version for spec in requirement.specifier if spec.operator == ">="), "")
        key = requirement.name.lower()
        if key in needed:  # in two extras, or in one extra and the course itself
            known = needed[key]
            both = () if not known.extras or not wanted_by else tuple(dict.fromkeys(known.extras + wanted_by))
            needed[key] = known._replace(extras=both)
        else:
            needed[key] = Needed(requirement.name, minimum, wanted_by)
    return list(needed.values())


def pyproject_requirements(text: str) -> list[str]:
    """pyproject.toml's dependencies and extras as PEP 508 lines, the way package metadata writes them."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads(text)["project"]
    lines = list(project.get("dependencies", []))
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines += [f'{line}; extra == "{extra}"' for line in requirements]
    return lines


def course_requirements() -> tuple[list[Needed], str]:
    """The course's requirements and where they come from: pyproject.toml in a checkout, else the
    installed package's metadata."""
    path = ROOT / "pyproject.toml"
    if path.is_file():
        try:
            return parse_requirements(pyproject_requirements(path.read_text(encoding="utf-8"))), "pyproject.toml"
        except ImportError:  # Python 3.10 without tomli: the metadata of `pip install -e .` says the same
            pass
    try:
        requires = importlib.metadata.requires(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    return parse_requirements(requires), f"the {PACKAGE} package"


def torch_requirement() -> str:
    """`torch>=X`, with the course's lower bound for torch."""
    try:
        minimum = next((n.minimum for n in course_requirements()[0] if n.name == "torch"), "")
    except Exception:  # packaging missing: the package checks report it
        minimum = ""
    return f"torch>={minimum}" if minimum else "torch"


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


def check_package(name: str, minimum: str, version_of: Callable[[str], str | None] = _installed_version,
                  extras: tuple[str, ...] = ()) -> Check:
    """A package must be installed, at `minimum` or newer (compared as `packaging` does, as pip does).
    One that only an extra wants (the notebooks, the tests) WARNs instead of FAILing."""
    bound = f">={minimum}" if minimum else ""
    fix = f'pip install "{name}{bound}"'
    if name == "torch":
        fix += "  # see pytorch.org for the command for your GPU"
    severity = WARN if extras else FAIL
    purpose = " and ".join(EXTRA_PURPOSES.get(extra, f"the {extra} extra") for extra in extras)
    purpose = f" (needed only for {purpose})" if purpose else ""
    installed = version_of(name)
    if installed is None:
        return Check(f"package {name}", severity, f"{name} is not installed{purpose}", fix)
    if minimum:
        try:
            too_old = Version(installed) < Version(minimum)
        except InvalidVersion:
            return Check(f"package {name}", WARN, f"{name} {installed}: not a version that can be compared "
                         f"with {minimum}", fix.replace("pip install", "pip install --force-reinstall", 1))
        if too_old:
            return Check(f"package {name}", severity, f"{name} {installed} is older than {minimum}{purpose}",
                         fix.replace("pip install", "pip install --upgrade", 1))
    return Check(f"package {name}", OK, f"{name} {installed}" + (f" (needs {bound})" if bound else ""))


def check_packages(requirements: list[Needed], version_of: Callable[[str], str | None] = _installed_version,
                   packaging_found: bool | None = None) -> list[Check]:
    """check_package for each requirement; without `packaging`, one FAIL that says to install it."""
    if not (Version is not None if packaging_found is None else packaging_found):
        return [Check("package packaging", FAIL, "packaging is not installed: the version checks need it",
                      f'pip install "{PACKAGING}"')]
    return [check_package(n.name, n.minimum, version_of, n.extras) for n in requirements]


# ----------------------------------------------------------------------------- torch and the device


def check_torch_import(importer: Callable[[str], object] = importlib.import_module) -> Check:
    """torch must import (a broken install or a missing CUDA library shows here)."""
    try:
        torch = importer("torch")
    except Exception as error:  # ImportError, OSError from a missing shared library, ...
        return Check("torch import", FAIL, f"import torch failed: {type(error).__name__}: {str(error)[:200]}",
                     f'pip install --force-reinstall "{torch_requirement()}"  # see pytorch.org for the command for your GPU')
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
    problem = getattr(choice, "problem", "")
    if problem:  # a GPU that this torch cannot use: the course runs, on the CPU
        checks = [Check("device", WARN, f"{problem}, so the course runs on {choice.device}", choice.fix)]
    else:
        checks = [Check("device", OK, str(choice))]
    try:
        loss = step(choice)
    except Exception as error:
        fix = "export GPTFS_DEVICE=cpu  # run on the CPU while you fix the GPU driver or torch install"
        if getattr(choice, "device_type", "cpu") == "cpu":
            fix = f'pip install --force-reinstall "{torch_requirement()}"'
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
    requirements = course_requirements()[0] if Version is not None else []
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
