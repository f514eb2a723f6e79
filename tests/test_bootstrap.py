"""The bootstrap cell: it installs from a Kaggle bundle, builds the Colab pip command, and does nothing locally."""

import os
import subprocess

import pytest

from helpers import bootstrap
from helpers.bootstrap import INSTALL_SOURCE, badges, install_args, notebook_cell


def test_colab_installs_from_the_single_install_source(tmp_path):
    assert install_args(str(tmp_path / "no-kaggle-here")) == [INSTALL_SOURCE]
    assert INSTALL_SOURCE.startswith("git+https://github.com/")


def test_kaggle_installs_from_an_attached_bundle(tmp_path):
    wheel_dir = tmp_path / "gpt-from-scratch-bundle" / "wheels"
    wheel_dir.mkdir(parents=True)
    (wheel_dir / "gpt_from_scratch-0.1.0-py3-none-any.whl").write_bytes(b"")
    args = install_args(str(tmp_path))
    assert args == ["--no-index", "--find-links", str(wheel_dir), "gpt-from-scratch"]


def test_the_cell_names_the_install_source_once_and_defines_the_same_logic():
    cell = notebook_cell()
    assert cell.count(INSTALL_SOURCE) == 1
    namespace = {}
    exec(cell.split("if importlib.util.find_spec(\"helpers\") is None:\n    subprocess")[0], namespace)
    assert namespace["install_args"]("/nonexistent") == [INSTALL_SOURCE]


def test_locally_the_cell_installs_nothing_and_prints_the_device(monkeypatch, capsys):
    def no_pip(*args, **kwargs):
        raise AssertionError(f"the bootstrap cell tried to run {args}")

    monkeypatch.setattr(subprocess, "run", no_pip)
    namespace = {}
    exec(notebook_cell(), namespace)
    assert "Device: cpu" in capsys.readouterr().out or namespace["device"].device in ("cuda", "mps")


def test_setup_uses_an_attached_bundle_for_data(monkeypatch, tmp_path):
    data = tmp_path / "bundle" / "data"
    data.mkdir(parents=True)
    (data / "tinyshakespeare.txt").write_text("x")
    monkeypatch.setattr(bootstrap, "KAGGLE_INPUT", str(tmp_path))
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", "")
    bootstrap.setup_notebook()
    assert os.environ["GPTFS_OFFLINE_DIR"] == str(tmp_path / "bundle")


@pytest.mark.parametrize("notebook", ["notebooks/01_tokenization.ipynb"])
def test_badges_point_at_the_notebook(notebook):
    text = badges(notebook)
    assert f"colab.research.google.com/github/{bootstrap.REPO}/blob/main/{notebook}" in text
    assert f"kaggle.com/kernels/welcome?src=https://github.com/{bootstrap.REPO}/blob/main/{notebook}" in text


def test_every_lesson_opens_with_its_own_badges():
    from helpers.notebooks import ROOT, _read, lesson_notebooks

    lessons = lesson_notebooks()
    assert len(lessons) == 9
    for path in lessons:
        first = next(c for c in _read(path)["cells"] if c["cell_type"] == "markdown")
        assert badges(path.relative_to(ROOT).as_posix()) in "".join(first["source"]), path.name


# The notebook cell itself, executed as Colab or Kaggle would run it (pip captured, never run).


def _exec_cell_without_helpers(monkeypatch, tmp_path, input_root):
    """Run the bootstrap cell as on a fresh hosted machine: helpers not installed, pip captured, and the
    cell's default Kaggle input folder (/kaggle/input) redirected to `input_root`. Returns the pip commands."""
    import glob
    import importlib.util

    real_find_spec, real_glob = importlib.util.find_spec, glob.glob
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "helpers" else real_find_spec(name, *a))
    monkeypatch.setattr(glob, "glob", lambda pattern, **kw: real_glob(
        pattern.replace("/kaggle/input", str(input_root), 1), **kw))
    monkeypatch.setattr(bootstrap, "KAGGLE_INPUT", str(input_root))
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", "")
    monkeypatch.chdir(tmp_path)
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: commands.append(list(args)))
    namespace = {}
    exec(notebook_cell(), namespace)
    assert namespace["device"].device in ("cpu", "cuda", "mps")
    return commands


def test_on_kaggle_the_cell_installs_from_the_attached_bundle(monkeypatch, tmp_path):
    import sys

    bundle_folder = tmp_path / "input" / "gptfs-offline" / "gpt-from-scratch-bundle"  # as Kaggle unzips a dataset
    (bundle_folder / "wheels").mkdir(parents=True)
    (bundle_folder / "wheels" / "gpt_from_scratch-0.1.0-py3-none-any.whl").write_bytes(b"")
    (bundle_folder / "data").mkdir()
    (bundle_folder / "data" / "tinyshakespeare.txt").write_text("x")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    commands = _exec_cell_without_helpers(monkeypatch, tmp_path, tmp_path / "input")
    assert commands == [[sys.executable, "-m", "pip", "install", "-q",
                         "--no-index", "--find-links", str(bundle_folder / "wheels"), "gpt-from-scratch"]]
    assert os.environ["GPTFS_OFFLINE_DIR"] == str(bundle_folder)  # the data then comes from the bundle too


def test_on_colab_the_cell_installs_from_the_single_install_source(monkeypatch, tmp_path):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    (tmp_path / "input").mkdir()  # no Kaggle input here: nothing attached
    commands = _exec_cell_without_helpers(monkeypatch, tmp_path, tmp_path / "input")
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", INSTALL_SOURCE]]
    assert os.environ["GPTFS_OFFLINE_DIR"] == ""  # no bundle: the files will be downloaded
