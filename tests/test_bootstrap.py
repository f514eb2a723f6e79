"""The bootstrap cell and setup_notebook: the course installs on Colab and Kaggle (from an offline bundle in
every place one may be, else from GitHub at this release), says what to do when nothing works, installs
nothing on your own machine, and a notebook inside an unzipped bundle finds its files with no setting.

The cell itself runs in a fresh Python that cannot import helpers, with a stand-in for pip (it records its
arguments, and fails or "installs" a stand-in course), and with Colab's and Kaggle's folders moved to tmp_path.
"""

import json
import os
import re
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

from helpers import bootstrap, notebooks
from helpers.bootstrap import (
    BUNDLE_FOLDER,
    CELL_METADATA,
    REPO,
    TAG,
    badges,
    bundle_checkpoint,
    find_bundles,
    install_attempts,
    install_source,
    newest_wheel,
    notebook_cell,
)

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
PLATFORM_ENV = ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE", "GPTFS_OFFLINE_DIR", "GPTFS_REPO",
                "GPTFS_COLAB_ROOT", "GPTFS_KAGGLE_INPUT")

# pip, as the cell calls it (python -m pip install ...): records its arguments, then fails with FAKE_PIP_FAILS's
# message, or "installs" a course whose setup_notebook prints where the data will come from.
FAKE_PIP = '''\
import json, os, sys, sysconfig
from pathlib import Path
with open(os.environ["FAKE_PIP_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_PIP_FAILS"):
    sys.exit("ERROR: " + os.environ["FAKE_PIP_FAILS"])
package = Path(sysconfig.get_paths()["purelib"], "helpers")
package.mkdir()
(package / "__init__.py").write_text(
    "import os\\n"
    "def setup_notebook():\\n"
    "    print('setup_notebook: GPTFS_OFFLINE_DIR=' + os.environ.get('GPTFS_OFFLINE_DIR', ''))\\n"
    "    return 'cpu'\\n")
'''

# Runs the cell's text as Jupyter does: an exception with _render_traceback_ shows only those lines.
RUN_AS_JUPYTER = '''\
import sys
source = open(sys.argv[1], encoding="utf-8").read()
try:
    exec(compile(source, "<bootstrap cell>", "exec"), {"__name__": "__main__"})
except Exception as error:
    if not hasattr(error, "_render_traceback_"):
        raise
    print("\\n".join(error._render_traceback_()), file=sys.stderr)
    sys.exit(1)
'''


class _Venv(venv.EnvBuilder):
    def post_setup(self, context):
        self.python = context.env_exe  # bin/python, or Scripts\python.exe on Windows


def fresh_kernel(folder: Path) -> str:
    """A Python with no site packages (so no helpers) whose pip is FAKE_PIP. Returns its interpreter."""
    builder = _Venv(with_pip=False, symlinks=os.name != "nt")
    builder.create(folder)
    purelib = subprocess.run([builder.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "pip").mkdir()
    (Path(purelib) / "pip" / "__init__.py").write_text("")
    (Path(purelib) / "pip" / "__main__.py").write_text(FAKE_PIP)
    return builder.python


def make_bundle_folder(parent: Path, version: str = VERSION, checkpoint: bool = False) -> Path:
    """An unzipped bundle's layout (helpers/bundle.py): SHA256SUMS beside data/, the course's wheel in wheels/."""
    folder = parent / BUNDLE_FOLDER
    for inside, text in bundle_entries(version, checkpoint).items():
        (folder / inside).parent.mkdir(parents=True, exist_ok=True)
        (folder / inside).write_text(text)
    return folder


def make_bundle_zip(path: Path, version: str = VERSION) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for inside, text in bundle_entries(version).items():
            archive.writestr(f"{BUNDLE_FOLDER}/{inside}", text)
    return path


def bundle_entries(version: str, checkpoint: bool = False) -> dict[str, str]:
    entries = {"SHA256SUMS": "", "data/tinyshakespeare.txt": "First Citizen:",
               f"wheels/gpt_from_scratch-{version}-py3-none-any.whl": "", "notebooks/01_tokenization.ipynb": "{}"}
    if checkpoint:
        entries[bootstrap.CHECKPOINT_PATH] = "a checkpoint"
    return entries


@pytest.fixture
def machine(tmp_path):
    """Run the bootstrap cell on a simulated machine: run(platform, **env) -> (result, pip calls)."""
    python = fresh_kernel(tmp_path / "kernel")
    content, kaggle_input, temp, work = (tmp_path / "content", tmp_path / "kaggle" / "input", tmp_path / "tmp",
                                         tmp_path / "work")
    for folder in (content, kaggle_input, temp, work):
        folder.mkdir(parents=True)
    (tmp_path / "cell.py").write_text(notebook_cell(), encoding="utf-8")
    (tmp_path / "run_as_jupyter.py").write_text(RUN_AS_JUPYTER, encoding="utf-8")
    log = tmp_path / "pip.log"

    def run(platform, cwd=work, **env):
        environ = {k: v for k, v in os.environ.items() if k not in PLATFORM_ENV and k != "PYTHONPATH"}
        environ.update(GPTFS_COLAB_ROOT=str(content), GPTFS_KAGGLE_INPUT=str(kaggle_input), TMPDIR=str(temp),
                       TEMP=str(temp), TMP=str(temp), FAKE_PIP_LOG=str(log), **env)
        if platform == "colab":
            environ["COLAB_RELEASE_TAG"] = "release-colab-test"
        elif platform == "kaggle":
            environ["KAGGLE_KERNEL_RUN_TYPE"] = "Interactive"
        result = subprocess.run([python, str(tmp_path / "run_as_jupyter.py"), str(tmp_path / "cell.py")], cwd=cwd,
                                env=environ, capture_output=True, text=True, timeout=60)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return result, calls

    run.python, run.content, run.kaggle_input, run.temp = python, content, kaggle_input, temp
    return run


# Where a learner's bundle may be: (platform, where the zip or folder goes, relative to tmp_path, and how).
BUNDLE_PLACES = {
    "uploaded to Colab": ("colab", "content/gptfs-bundle.zip"),
    "in Google Drive": ("colab", "content/drive/MyDrive/Colab Notebooks/gptfs-bundle.zip"),
    "unzipped on Colab": ("colab", "content"),
    "a Kaggle dataset, unzipped by Kaggle": ("kaggle", "kaggle/input/gptfs-bundle"),
    "a Kaggle dataset, kept as a zip": ("kaggle", "kaggle/input/gptfs-bundle/gptfs-bundle.zip"),
}


@pytest.mark.parametrize("place", BUNDLE_PLACES)
def test_the_cell_installs_from_a_bundle_wherever_it_is(machine, tmp_path, place):
    platform, where = BUNDLE_PLACES[place]
    if where.endswith(".zip"):
        make_bundle_zip(tmp_path / where)
    else:
        make_bundle_folder(tmp_path / where)
    result, calls = machine(platform)
    assert result.returncode == 0, result.stderr
    (call,) = calls
    assert call[:5] == ["install", "-q", "--no-index", "--find-links", call[4]]
    wheels = Path(call[4])
    assert wheels.name == "wheels" and call[5:] == [str(wheels / f"gpt_from_scratch-{VERSION}-py3-none-any.whl")]
    folder = wheels.parent
    assert bootstrap.is_bundle(str(folder))
    if where.endswith(".zip"):  # unzipped into a writable temporary folder, since /kaggle/input is read-only
        assert folder.is_relative_to(machine.temp)
    else:
        assert folder == tmp_path / where / BUNDLE_FOLDER
    assert f"setup_notebook: GPTFS_OFFLINE_DIR={folder}\n" in result.stdout  # the data comes from the bundle too


def test_a_bundle_zip_is_unzipped_once(machine, tmp_path):
    zip_path = make_bundle_zip(machine.content / "gptfs-bundle.zip")
    stale = machine.temp / f"gptfs-bundle.zip-{zip_path.stat().st_size}" / BUNDLE_FOLDER / "data"
    stale.mkdir(parents=True)  # an unzip that was interrupted: no SHA256SUMS
    folder = bootstrap.unzip_bundle(str(machine.content / "gptfs-bundle.zip"), str(machine.temp))
    (Path(folder) / "data" / "marker").write_text("kept")
    assert bootstrap.unzip_bundle(str(machine.content / "gptfs-bundle.zip"), str(machine.temp)) == folder
    assert (Path(folder) / "data" / "marker").read_text() == "kept"
    assert [p.name for p in machine.temp.iterdir()] == [Path(folder).parent.name]  # no partial folder left


@pytest.mark.parametrize("platform", ["colab", "kaggle"])
def test_with_no_source_the_cell_says_what_it_tried_and_the_two_ways_forward(machine, platform):
    result, calls = machine(platform, FAKE_PIP_FAILS="Repository not found (git clone exited with 128)")
    assert result.returncode == 1
    assert calls == [["install", "-q", install_source()]]
    message = result.stderr
    assert "Traceback" not in message and "CalledProcessError" not in message
    assert message.startswith("The course could not be installed. Tried:")
    assert f"{install_source()}: pip failed (ERROR: Repository not found (git clone exited with 128))" in message
    assert "an offline bundle" in message and "none found" in message
    assert str(machine.content if platform == "colab" else machine.kaggle_input) in message
    assert "Two ways forward" in message and "%env GPTFS_REPO=OWNER/NAME" in message
    assert ("Files pane" if platform == "colab" else "Add Input") in message


def test_a_fork_sets_its_address_in_the_environment(machine):
    result, calls = machine("colab", GPTFS_REPO="someone/their-fork@main")
    assert result.returncode == 0, result.stderr
    assert calls == [["install", "-q", "git+https://github.com/someone/their-fork.git@main"]]


def test_on_your_own_machine_a_kernel_without_the_course_installs_nothing_and_says_how(machine):
    result, calls = machine("local")
    assert result.returncode == 1
    assert calls == []  # pip never ran
    message = result.stderr
    assert "Traceback" not in message
    assert f"The kernel runs {machine.python}" in message
    assert "-m pip install -e ." in message and "nothing was installed" in message


def test_on_your_own_machine_inside_an_unzipped_bundle_it_names_the_bundles_wheels(machine, tmp_path):
    folder = make_bundle_folder(tmp_path / "unzipped")
    result, calls = machine("local", cwd=folder / "notebooks")
    assert result.returncode == 1 and calls == []
    assert f"--find-links \"{folder / 'wheels'}\" \"gpt-from-scratch[notebooks]\"" in result.stderr


def test_a_newer_bundle_wins_by_version_not_by_string_order(tmp_path):
    assert newest_wheel(["w/gpt_from_scratch-0.9.0-py3-none-any.whl", "w/gpt_from_scratch-0.10.0-py3-none-any.whl",
                         "w/numpy-2.0.0-cp311-cp311-win_amd64.whl"]) == "w/gpt_from_scratch-0.10.0-py3-none-any.whl"
    old = make_bundle_folder(tmp_path / "input" / "old", version="0.9.0")
    new = make_bundle_zip(tmp_path / "input" / "new" / "bundle.zip", version="0.10.0")
    assert find_bundles([(str(tmp_path / "input"), 2)]) == [str(new), str(old)]
    same = make_bundle_folder(tmp_path / "input" / "unzipped", version="0.10.0")
    assert find_bundles([(str(tmp_path / "input"), 2)])[0] == str(same)  # at the same version, no unzipping


def test_a_bundle_is_tried_offline_then_with_pypi_then_github(tmp_path):
    folder = make_bundle_folder(tmp_path)
    wheels = folder / "wheels"
    wheel = str(wheels / f"gpt_from_scratch-{VERSION}-py3-none-any.whl")
    attempts = [args for _, args in install_attempts(str(folder))]
    assert attempts == [["--no-index", "--find-links", str(wheels), wheel], ["--find-links", str(wheels), wheel],
                        [install_source()]]


def test_the_install_source_is_this_release_on_github(monkeypatch):
    monkeypatch.delenv("GPTFS_REPO", raising=False)
    assert TAG == f"v{VERSION}"
    assert install_source() == f"git+https://github.com/{REPO}.git@v{VERSION}"


def test_the_cell_is_a_folded_form_that_names_the_address_once():
    cell = notebook_cell()
    assert cell.startswith("#@title Setup")
    assert cell.count(REPO) == 1 and cell.count(f"'{TAG}'") == 1
    assert cell.endswith("ensure_course()\nfrom helpers import setup_notebook\ndevice = setup_notebook()")
    assert CELL_METADATA["jupyter"] == {"source_hidden": True}
    compile(cell, "cell", "exec")


def test_jupyter_shows_a_setup_error_as_its_message_alone(capsys, tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    shell.user_ns["SetupError"] = bootstrap.SetupError
    shell.run_cell("raise SetupError('The course could not be installed. Tried:\\n  - nothing')")
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "The course could not be installed. Tried:\n  - nothing" in shown
    assert "Traceback" not in shown and "SetupError" not in shown


def test_locally_the_cell_installs_nothing_and_prints_the_device(monkeypatch, capsys):
    def no_pip(*args, **kwargs):
        raise AssertionError(f"the bootstrap cell tried to run {args}")

    monkeypatch.setattr(subprocess, "run", no_pip)
    namespace = {}
    exec(notebook_cell(), namespace)
    assert "Device: cpu" in capsys.readouterr().out or namespace["device"].device in ("cuda", "mps")


# setup_notebook and bundle_checkpoint: a notebook inside an unzipped bundle, or with one attached.


@pytest.fixture
def no_bundle_settings(monkeypatch, tmp_path):
    for name in PLATFORM_ENV:
        monkeypatch.setenv(name, "")  # recorded first, so that what setup_notebook() sets is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("GPTFS_COLAB_ROOT", str(tmp_path / "no-content"))
    monkeypatch.setenv("GPTFS_KAGGLE_INPUT", str(tmp_path / "no-input"))


def test_a_notebook_inside_an_unzipped_bundle_uses_its_files(monkeypatch, tmp_path, no_bundle_settings):
    folder = make_bundle_folder(tmp_path / "Downloads")
    (folder / "notebooks" / "solutions").mkdir(parents=True)
    for where in (folder / "notebooks", folder / "notebooks" / "solutions"):
        monkeypatch.delenv("GPTFS_OFFLINE_DIR", raising=False)
        monkeypatch.chdir(where)  # Jupyter starts a kernel in the notebook's folder
        bootstrap.setup_notebook()
        assert os.environ["GPTFS_OFFLINE_DIR"] == str(folder)


def test_outside_a_bundle_setup_sets_nothing(monkeypatch, tmp_path, no_bundle_settings):
    (tmp_path / "data").mkdir()  # a data/ folder alone is not a bundle
    monkeypatch.chdir(tmp_path)
    bootstrap.setup_notebook()
    assert "GPTFS_OFFLINE_DIR" not in os.environ


def test_setup_keeps_an_offline_folder_that_is_set(monkeypatch, tmp_path, no_bundle_settings):
    folder = make_bundle_folder(tmp_path)
    monkeypatch.chdir(folder / "notebooks")
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(tmp_path / "elsewhere"))
    bootstrap.setup_notebook()
    assert os.environ["GPTFS_OFFLINE_DIR"] == str(tmp_path / "elsewhere")


def test_setup_on_kaggle_uses_an_attached_bundle(monkeypatch, tmp_path, no_bundle_settings):
    folder = make_bundle_folder(tmp_path / "no-input" / "gptfs-bundle")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.chdir(tmp_path)
    bootstrap.setup_notebook()
    assert os.environ["GPTFS_OFFLINE_DIR"] == str(folder)


def test_bundle_checkpoint_is_the_bundles_trained_model(monkeypatch, tmp_path, no_bundle_settings):
    with_checkpoint = make_bundle_folder(tmp_path / "a", checkpoint=True)
    without = make_bundle_folder(tmp_path / "b")
    monkeypatch.chdir(with_checkpoint / "notebooks")
    assert bundle_checkpoint() == with_checkpoint / "runs" / "shakespeare" / "ckpt.pt"
    monkeypatch.chdir(without / "notebooks")
    assert bundle_checkpoint() is None  # a bundle made without --checkpoint
    monkeypatch.chdir(tmp_path)
    assert bundle_checkpoint() is None  # no bundle at all
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(with_checkpoint))
    assert bundle_checkpoint() == with_checkpoint / "runs" / "shakespeare" / "ckpt.pt"


def test_bundle_checkpoint_on_kaggle_and_colab(monkeypatch, tmp_path, no_bundle_settings):
    attached = make_bundle_folder(tmp_path / "no-input" / "gptfs-bundle", checkpoint=True)
    monkeypatch.chdir(tmp_path)
    assert bundle_checkpoint() is None  # not on Kaggle: /kaggle/input is not looked at
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert bundle_checkpoint() == attached / "runs" / "shakespeare" / "ckpt.pt"
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile reads TMPDIR again
    (tmp_path / "no-content").mkdir()
    with zipfile.ZipFile(tmp_path / "no-content" / "bundle.zip", "w") as archive:
        for inside, text in bundle_entries(VERSION, checkpoint=True).items():
            archive.writestr(f"{BUNDLE_FOLDER}/{inside}", text)
    found = bundle_checkpoint()
    assert found is not None and found.is_relative_to(tmp_path / "tmp") and found.read_text() == "a checkpoint"


# Badges, and `python -m helpers.notebooks bootstrap` / `check` on copies of the notebooks.


def test_badges_open_the_notebook_at_this_release():
    notebook = "notebooks/01_tokenization.ipynb"
    text = badges(notebook)
    assert f"colab.research.google.com/github/{REPO}/blob/v{VERSION}/{notebook}" in text
    assert f"kaggle.com/kernels/welcome?src=https://github.com/{REPO}/blob/v{VERSION}/{notebook}" in text


def test_every_lesson_opens_with_its_own_badges():
    lessons = notebooks.lesson_notebooks()
    assert [path.name[:2] for path in lessons] == [f"{n:02d}" for n in range(1, 11)]  # lessons 01 to 10
    for path in lessons:
        first = next(c for c in notebooks._read(path)["cells"] if c["cell_type"] == "markdown")
        assert badges(path.relative_to(ROOT).as_posix()) in "".join(first["source"]), path.name


@pytest.fixture
def notebook_copies(tmp_path, monkeypatch):
    """Lesson 01 and its solutions, copied into a checkout-like tmp_path with an old first cell and old badges."""
    (tmp_path / "notebooks" / "solutions").mkdir(parents=True)
    copies = []
    for rel in ("notebooks/01_tokenization.ipynb", "notebooks/solutions/01_tokenization.ipynb"):
        nb = json.loads((ROOT / rel).read_text(encoding="utf-8"))
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        first["source"], first["metadata"] = ["# an old setup cell\n", "import helpers"], {}
        intro = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
        intro["source"] = [line.replace(f"/blob/{TAG}/", "/blob/main/") for line in intro["source"]]
        (tmp_path / rel).write_text(json.dumps(nb), encoding="utf-8")
        copies.append(tmp_path / rel)
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path / "notebooks")
    return copies


def _bootstrap_problems():
    return [p for p in notebooks.drift() if "bootstrap" in p]


def test_bootstrap_writes_the_folded_cell_and_the_lessons_badges(notebook_copies):
    lesson, solution = notebook_copies
    assert len(_bootstrap_problems()) == 2
    assert notebooks.main(["bootstrap"]) == 0
    assert _bootstrap_problems() == []
    for path in (lesson, solution):
        nb = notebooks._read(path)
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert notebooks._source(first) == notebook_cell()
        assert first["metadata"]["jupyter"] == {"source_hidden": True} and first["metadata"]["cellView"] == "form"
    intro = notebooks._source(next(c for c in notebooks._read(lesson)["cells"] if c["cell_type"] == "markdown"))
    assert intro.split("\n")[:3] == ["# Lesson 01: Tokenization", "", badges("notebooks/01_tokenization.ipynb")]
    assert "/blob/main/" not in intro and intro.count("colab-badge.svg") == 1
    solution_intro = next(c for c in notebooks._read(solution)["cells"] if c["cell_type"] == "markdown")
    assert "colab-badge.svg" not in notebooks._source(solution_intro)  # solutions carry no badges
    assert notebooks.write_bootstrap_cells() == []  # nothing left to change


def test_check_fails_when_the_badges_or_the_folding_drift(notebook_copies, capsys):
    lesson, _ = notebook_copies
    notebooks.write_bootstrap_cells()
    nb = notebooks._read(lesson)
    intro = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    intro["source"] = [line.replace(f"/blob/{TAG}/", "/blob/v0.0.1/") for line in intro["source"]]
    lesson.write_text(json.dumps(nb), encoding="utf-8")
    assert [p.split(":")[0] for p in _bootstrap_problems()] == ["notebooks/01_tokenization.ipynb"]
    notebooks.write_bootstrap_cells()
    nb = notebooks._read(lesson)
    next(c for c in nb["cells"] if c["cell_type"] == "code")["metadata"] = {}
    lesson.write_text(json.dumps(nb), encoding="utf-8")
    assert len(_bootstrap_problems()) == 1
    assert notebooks.main(["check"]) == 1
    assert "python -m helpers.notebooks bootstrap" in capsys.readouterr().err


def test_running_a_notebook_keeps_the_cells_folding():
    nb = {"cells": [{"cell_type": "code", "metadata": {**CELL_METADATA, "collapsed": False}, "source": ""}],
          "metadata": {}}
    assert notebooks.clean(nb)["cells"][0]["metadata"] == CELL_METADATA
