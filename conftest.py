"""Fixtures and hooks shared by the tests and the notebooks (nbval).

`offline_dir`: the course's data files, found the way the course finds them (helpers.downloads.fetch:
the data folder, then GPTFS_OFFLINE_DIR, then the verified download), laid out as an offline folder is.
"""

import os
import shutil
from pathlib import Path

import pytest

from helpers.downloads import ASSETS, OFFLINE_ENV, DownloadError, fetch

# No one sees the notebooks' widgets under pytest (nbval's kernels inherit this): they print instead.
os.environ["GPTFS_HEADLESS"] = "1"

# Under pytest-xdist each worker gets its share of the cores (nbval's kernels inherit OMP_NUM_THREADS): small
# models on few threads are overhead-bound, so two workers of one thread do more than one worker of two.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

COURSE_FILES = ("tinyshakespeare", "gpt2-vocab.bpe", "gpt2-encoder.json")  # what the lessons download
TIKTOKEN_FILES = ("gpt2-vocab.bpe", "gpt2-encoder.json")  # what tiktoken reads from its cache


@pytest.fixture(autouse=True)
def environment_restored():
    """Undo whatever a test leaves in os.environ (setup_notebook() sets GPTFS_OFFLINE_DIR, for one), so that
    no test depends on the order the tests run in."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


def offline_path(name: str) -> Path:
    """Where an offline folder (an unzipped bundle) keeps a file: GPT-2's BPE files under tiktoken's cache
    name, the others in data/."""
    asset = ASSETS[name]
    return Path("tiktoken_cache", asset.tiktoken_cache_name) if name in TIKTOKEN_FILES else Path("data", asset.filename)


def obtain(name: str) -> Path:
    """fetch(name), or the test stops with one line naming the file and GPTFS_OFFLINE_DIR: it fails when
    GPTFS_OFFLINE_DIR is set (the copy should be there), and is skipped when it is not (no network)."""
    try:
        return fetch(name)
    except DownloadError as error:
        reason = str(error)
    # Outside the except clause, so that the report holds this line only, not the chain of errors behind it.
    stop_without(reason, ASSETS[name].filename)


def stop_without(reason: str, filename: str) -> None:
    """End the test with one line saying which file is missing and how to provide it: a failure when
    GPTFS_OFFLINE_DIR is set (the copy should be there), a skip when it is not (no network, no copies)."""
    if os.environ.get(OFFLINE_ENV):
        pytest.fail(missing_message(reason, filename), pytrace=False)
    pytest.skip(missing_message(reason, filename))


def missing_message(reason: str, filename: str) -> str:
    """One line: why a file could not be had (the first line of the DownloadError), and the setting that fixes it."""
    folder = os.environ.get(OFFLINE_ENV)
    where = f"{OFFLINE_ENV}={folder} holds no good copy" if folder else f"{OFFLINE_ENV} is not set"
    return (f"{reason.splitlines()[0].rstrip('.')}; {where}. Set {OFFLINE_ENV} to a folder that holds "
            f"{filename} (an unzipped offline bundle)")


def one_line_on_download_error():
    """The body of the two hook wrappers below: a DownloadError ends the test with stop_without's line."""
    try:
        return (yield)
    except DownloadError as error:
        reason = str(error)
    stop_without(reason, "the course's files")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """A fixture that needs a course file this machine cannot get stops the test with one line."""
    return (yield from one_line_on_download_error())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """So does the test itself: one line, never a traceback deep inside helpers.downloads."""
    return (yield from one_line_on_download_error())


@pytest.fixture(scope="session")
def offline_dir(tmp_path_factory) -> Path:
    """A folder laid out as the course's offline folder, holding verified copies of the files the lessons
    download: data/tinyshakespeare.txt and GPT-2's BPE files under tiktoken_cache/<sha1 of their URL>."""
    folder = tmp_path_factory.mktemp("offline")
    for name in COURSE_FILES:
        target = folder / offline_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obtain(name), target)
    return folder


LESSON08_RUN = ("08_training", "09_generation")  # lesson 08 writes runs/lesson08-*; lesson 09 and the solutions read it


def group_for_workers(items) -> None:
    """Under pytest-xdist (`--dist loadgroup`): a notebook's cells share one kernel, so each notebook goes to one
    worker whole; lessons 08 and 09 and their solutions share lesson 08's run folder, so they go to one worker,
    in order. Unit tests are spread one by one."""
    for item in items:
        if item.path.suffix != ".ipynb":
            continue
        group = "lesson08-run" if item.path.stem in LESSON08_RUN else str(item.path)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """The notebooks read the course's files: where none can be had (no network, no copies, GPTFS_OFFLINE_DIR
    unset), each notebook is skipped with the one line saying so, instead of failing cell after cell."""
    group_for_workers(items)
    notebooks = [item for item in items if item.path.suffix == ".ipynb"]
    if not notebooks or os.environ.get(OFFLINE_ENV):
        return  # with GPTFS_OFFLINE_DIR set, a missing copy must fail loudly
    for name in COURSE_FILES:
        try:
            fetch(name)
        except DownloadError as error:
            reason = missing_message(str(error), ASSETS[name].filename)
            for item in notebooks:
                item.add_marker(pytest.mark.skip(reason=reason))
            return


@pytest.fixture(scope="session")
def shakespeare() -> Path:
    """Tiny Shakespeare's verified copy, for tests that train in a subprocess (where a DownloadError would be
    one more line of stderr): without it the test stops at once with the one line of obtain()."""
    return obtain("tinyshakespeare")
