"""helpers.runs: where the lessons keep their runs (runs/, Google Drive on Colab, GPTFS_RUNS_DIR) and find a model."""

import sys
import types

import pytest

from helpers import bootstrap, runs
from helpers.runs import find_checkpoint, runs_dir


@pytest.fixture(autouse=True)
def no_runs_setting(monkeypatch):
    monkeypatch.delenv(runs.RUNS_ENV, raising=False)
    monkeypatch.setattr(bootstrap, "bundle_checkpoint", lambda: None)  # no bundle around the tests


@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """google.colab.drive.mount, as Colab has it: mounting makes MyDrive appear at the mount point."""
    mounted = []

    def mount(path):
        mounted.append(path)
        (tmp_path / "drive" / "MyDrive").mkdir(parents=True)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return mounted


def make_checkpoint(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a checkpoint")
    return path


def test_runs_go_beside_the_notebook_unless_a_setting_says_otherwise(tmp_path, monkeypatch):
    assert runs_dir() == runs.Path("runs")
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "elsewhere"))
    assert runs_dir() == tmp_path / "elsewhere"
    assert runs_dir(keep_on_drive=True) == tmp_path / "elsewhere"  # the explicit folder wins


def test_keep_on_drive_mounts_google_drive_on_colab(tmp_path, fake_colab):
    folder = runs_dir(keep_on_drive=True, mount_point=tmp_path / "drive")
    assert fake_colab == [str(tmp_path / "drive")]
    assert folder == tmp_path / "drive" / "MyDrive" / "gpt-from-scratch" / "runs" and folder.is_dir()
    runs_dir(keep_on_drive=True, mount_point=tmp_path / "drive")
    assert len(fake_colab) == 1  # mounted once


def test_keep_on_drive_off_colab_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Colab only.*GPTFS_RUNS_DIR"):
        runs_dir(keep_on_drive=True, mount_point=tmp_path / "drive")


def test_find_checkpoint_looks_in_order(tmp_path, monkeypatch):
    here, drive = tmp_path / "runs", tmp_path / "drive"
    monkeypatch.setattr(runs, "CHECKOUT", tmp_path / "clone")
    assert find_checkpoint(["lesson08-gpu", "lesson08-cpu"], here, mount_point=drive) is None

    cli = make_checkpoint(tmp_path / "clone" / "runs" / "cpu" / "ckpt.pt")
    assert find_checkpoint(["lesson08-cpu"], here, mount_point=drive) == cli
    bundled = make_checkpoint(tmp_path / "bundle" / "runs" / "shakespeare" / "ckpt.pt")
    monkeypatch.setattr(bootstrap, "bundle_checkpoint", lambda: bundled)
    assert find_checkpoint(["lesson08-cpu"], here, mount_point=drive) == bundled
    on_drive = make_checkpoint(drive / "MyDrive" / "gpt-from-scratch" / "runs" / "lesson08-cpu" / "ckpt.pt")
    assert find_checkpoint(["lesson08-cpu"], here, mount_point=drive) == on_drive
    cpu = make_checkpoint(here / "lesson08-cpu" / "ckpt.pt")
    assert find_checkpoint(["lesson08-gpu", "lesson08-cpu"], here, mount_point=drive) == cpu
    gpu = make_checkpoint(here / "lesson08-gpu" / "ckpt.pt")
    assert find_checkpoint(["lesson08-gpu", "lesson08-cpu"], here, mount_point=drive) == gpu
