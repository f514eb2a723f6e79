"""Where training runs are kept, and where a lesson finds a trained model.

Infrastructure, not taught in a lesson. A run is a folder holding ckpt.pt and metrics.jsonl (lesson 08).
Lessons keep their runs in runs/ beside the notebook. On Colab the VM's disk is wiped when the session
resets, so one setting keeps the runs on Google Drive instead; GPTFS_RUNS_DIR names any other folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from helpers import bootstrap

RUNS_ENV = "GPTFS_RUNS_DIR"  # a folder for the lessons' runs, instead of runs/ beside the notebook
COLAB_DRIVE = Path("/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = Path("MyDrive") / "gpt-from-scratch" / "runs"  # the runs' folder inside Drive
CHECKOUT = Path(__file__).resolve().parent.parent  # a clone of the course (where `python -m helpers train` runs)


def mount_drive(mount_point: Path = COLAB_DRIVE) -> Path:
    """Mount Google Drive on Colab (it asks for permission once) and return the mount point."""
    if (mount_point / "MyDrive").is_dir():
        return mount_point
    try:
        from google.colab import drive
    except ImportError:
        raise ValueError("keeping runs on Google Drive works on Colab only; elsewhere set the environment variable "
                         f"{RUNS_ENV} to the folder you want") from None
    drive.mount(str(mount_point))
    return mount_point


def runs_dir(keep_on_drive: bool = False, mount_point: Path = COLAB_DRIVE) -> Path:
    """The folder for the lessons' runs: GPTFS_RUNS_DIR if it is set; with keep_on_drive, gpt-from-scratch/runs
    on Google Drive (mounted now if it is not yet), which survives a Colab reset; else runs/ beside the notebook."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    if not keep_on_drive:
        return Path("runs")
    folder = mount_drive(mount_point) / DRIVE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find_checkpoint(run_names: Sequence[str], runs: Path | None = None,
                    mount_point: Path = COLAB_DRIVE) -> Path | None:
    """The first checkpoint that exists, looking in this order:
    - each named run in `runs` (default: runs_dir()), then in the runs on Google Drive if it is mounted;
    - the checkpoint of an offline bundle that this notebook runs in or has attached;
    - the runs `python -m helpers train --out runs/gpu` (or runs/cpu) made in the course's checkout."""
    folders = [runs if runs is not None else runs_dir()]
    if (mount_point / "MyDrive").is_dir():
        folders.append(mount_point / DRIVE_FOLDER)
    candidates = [folder / name / "ckpt.pt" for folder in folders for name in run_names]
    bundled = bootstrap.bundle_checkpoint()
    candidates += [Path(bundled)] if bundled else []
    candidates += [CHECKOUT / "runs" / name / "ckpt.pt" for name in ("gpu", "cpu")]
    return next((path for path in candidates if path.is_file()), None)
