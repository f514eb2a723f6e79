"""Run the unit tests against the lowest versions that pyproject.toml allows.

    python .ci/lowest_versions.py                       # this Python
    python .ci/lowest_versions.py --python python3.10   # the oldest Python the course supports
    python .ci/lowest_versions.py -- -k doctor          # arguments after -- go to pytest

Every dependency in pyproject.toml (the run-time ones and every extra) must have a lower bound `name>=X`,
with X a real release. This script copies the working tree into a temporary folder, makes a fresh venv
there, installs the course with each dependency pinned to `name==X` (wheels only; the dependencies of the
dependencies resolve as usual), and runs `pytest tests` (the unit tests, not the notebooks). It prints the
pins and the result, and exits with pytest's status. Set GPTFS_OFFLINE_DIR as for any test run.

PyPI's Linux torch wheels pull their CUDA libraries (nvidia-*, some GB) along; pip's cache keeps them.
The machine-wide pip constraint file, if any, is ignored here: it caps versions for CI, not for this check.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def lowest_pins(pyproject: Path) -> list[str]:
    """`name==X` for each `name>=X` in pyproject.toml's dependencies and extras, in order, without repeats."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    pins: dict[str, str] = {}
    for line in lines:
        requirement = Requirement(line)
        lower = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if not lower:
            sys.exit(f"pyproject.toml: {line!r} has no lower bound; write it as {requirement.name}>=X")
        pins.setdefault(requirement.name.lower(), f"{requirement.name}=={lower[0]}")
    return list(pins.values())


def copy_working_tree(target: Path) -> None:
    """The files git tracks or would track (not data/, runs/ or other ignored files), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run(command: list[str], **kwargs) -> int:
    print("$", " ".join(map(str, command)), flush=True)
    return subprocess.run(command, **kwargs).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the Python to make the venv with")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    pins = lowest_pins(ROOT / "pyproject.toml")
    work = Path(tempfile.mkdtemp(prefix="gptfs-lowest-"))
    try:
        tree, venv = work / "course", work / "venv"
        copy_working_tree(tree)
        if run([args.python, "-m", "venv", str(venv)]):
            return 2
        python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
        env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        install = [python, "-m", "pip", "install", "-q", "--only-binary=:all:", "-e", f"{tree}[notebooks,test]", *pins]
        if run(install, env=env):
            print(f"LOWEST VERSIONS: could not install {' '.join(pins)}")
            return 2
        installed = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                                   text=True, env=env).stdout
        print("Installed:", " ".join(installed.split()))
        started = time.monotonic()
        status = run([python, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                     cwd=tree, env=env)
        python_version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                        capture_output=True, text=True).stdout.strip()
        verdict = "PASSED" if status == 0 else f"FAILED (pytest exit status {status})"
        print(f"LOWEST VERSIONS on Python {python_version}: {' '.join(pins)}: unit tests {verdict} "
              f"in {time.monotonic() - started:.0f} s")
        return status
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
