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
