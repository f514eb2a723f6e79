"""The notebooks' GPU branch, walked on the CPU.

nbval runs every notebook as a CPU learner does. A learner on a GPU (or anyone who sets GPTFS_PROFILE=gpu)
takes the other branch of lessons 08 and 09: the gpu profile, a run folder of its own, and lesson 09 loading
that run. Here that branch runs on the CPU. The gpu profile keeps its context of 256 and its dropout, but its
steps, evaluation batches, batch size and width are capped, so that both lessons take about two minutes
instead of hours (lesson 09 alone generates for 20 minutes with the full 10.7M model on 2 cores); every cell
runs on the path a GPU learner takes.
"""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.checkpoint import load_checkpoint

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
pytestmark = pytest.mark.usefixtures("offline_dir")  # the lessons read the course's files: without them, one line
CAP = dict(max_iters=2, eval_interval=2, eval_iters=2, log_interval=1, warmup_iters=1, batch_size=8)
CAP_MODEL = dict(n_layer=2, n_head=2, n_embd=64)


def run_notebook(path: Path) -> nbformat.NotebookNode:
    """Execute a notebook in its folder, with the gpu profile capped by a cell after the bootstrap cell."""
    nb = nbformat.read(path, as_version=4)
    cap = (f"import helpers.engine  # test only: a few steps of a narrower model\n"
           f"helpers.engine.PROFILES['gpu']['train'].update({CAP!r})\n"
           f"helpers.engine.PROFILES['gpu']['model'].update({CAP_MODEL!r})")
    nb.cells.insert(2, nbformat.v4.new_code_cell(cap))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def test_lessons_08_and_09_take_the_gpu_profile_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFS_PROFILE", "gpu")
    monkeypatch.delenv("GPTFS_RUNS_DIR", raising=False)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("08_training.ipynb", "09_generation.ipynb"):
        shutil.copy(NOTEBOOKS / name, folder / name)

    lesson08 = printed(run_notebook(folder / "08_training.ipynb"))  # raises CellExecutionError on any error
    run = folder / "runs" / "lesson08-gpu"
    state = load_checkpoint(run)
    assert state["step"] == CAP["max_iters"]
    assert (state["model_config"]["block_size"], state["model_config"]["dropout"]) == (256, 0.2)  # the gpu profile's
    assert not (folder / "runs" / "lesson08-cpu").exists()
    assert "restored model gives the same logits: True" in lesson08

    lesson09 = printed(run_notebook(folder / "09_generation.ipynb"))
    assert f"using the checkpoint {Path('runs') / 'lesson08-gpu' / 'ckpt.pt'}" in lesson09
    assert "block_size=256" in lesson09  # the gpu profile's model is the one generating
