"""The offline bundle: build it, install the course from it into a fresh virtual environment with the
network cut off, and run a lesson's first cells there from the bundle's files alone."""

import dataclasses
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from helpers import bundle
from helpers.bootstrap import find_bundle_data, install_args, notebook_cell
from helpers.downloads import ASSETS

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = ROOT.parent / "shared" / "offline"

# Loaded by the venv's python before anything else: no TCP/IP connection can be opened.
NO_NETWORK = '''\
import socket
_connect = socket.socket.connect
def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network disabled by the bundle test (tried {address})")
    return _connect(self, address)
socket.socket.connect = _refuse
'''

# A lesson's first cells: the bootstrap cell, then the data and the reference tokenizer, then the checkpoint.
LESSON_START = notebook_cell() + '''
import json, os, helpers
from helpers import fetch, gpt2_tiktoken, load_trained
text = fetch("tinyshakespeare").read_text(encoding="utf-8")
enc = gpt2_tiktoken()
model, tokenizer = load_trained(os.path.join(os.environ["GPTFS_OFFLINE_DIR"], "runs", "shakespeare"))
print("RESULT " + json.dumps({"helpers": helpers.__file__, "chars": len(text), "hello": enc.encode("Hello world"),
                              "data": os.listdir(os.environ["GPTFS_DATA_DIR"]), "vocab": len(tokenizer.chars)}))
'''


def tiny_checkpoint(path: Path) -> Path:
    """A small checkpoint in train()'s format, standing in for a trained Shakespeare model."""
    from helpers.attention import GPTConfig
    from helpers.model import GPT
    from helpers.training import FORMAT, save_checkpoint

    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    chars = sorted(set((OFFLINE / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")))
    return save_checkpoint(path, {"format": FORMAT, "model": GPT(config).state_dict(),
                                  "model_config": dataclasses.asdict(config), "tokenizer": {"kind": "char", "chars": chars}})


def offline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "PYTHONPATH", "GPTFS_DEVICE")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env.update(HTTP_PROXY=closed, HTTPS_PROXY=closed, http_proxy=closed, https_proxy=closed,
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", **extra)
    return env


def run(args, cwd, env, timeout=120):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_bundle_installs_and_runs_a_lesson_with_no_network(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "ckpt.pt")
    zip_path = tmp_path / "out" / "bundle.zip"
    run([sys.executable, "-m", "helpers.bundle", zip_path, "--checkpoint", checkpoint], ROOT,
        offline_env(GPTFS_OFFLINE_DIR=str(OFFLINE), GPTFS_DATA_DIR=str(tmp_path / "build-data")))
    assert [p.name for p in zip_path.parent.iterdir()] == ["bundle.zip"]  # no temporary file left beside it

    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        archive.extractall(unzipped)
    folder = unzipped / bundle.FOLDER
    expected = {f"{bundle.FOLDER}/{p}" for p in ("README.md", "SHA256SUMS", "data/tinyshakespeare.txt",
                                                 "notebooks/01_tokenization.ipynb", "notebooks/solutions/09_generation.ipynb",
                                                 bundle.CHECKPOINT_PATH)}
    assert expected <= names
    for name in ("gpt2-vocab.bpe", "gpt2-encoder.json"):
        assert f"{bundle.FOLDER}/tiktoken_cache/{ASSETS[name].tiktoken_cache_name}" in names
        assert f"{bundle.FOLDER}/data/{ASSETS[name].filename}" in names
    readme = (folder / "README.md").read_text()
    assert "pip install --no-index --find-links wheels gpt-from-scratch" in readme and "GPTFS_OFFLINE_DIR" in readme

    # The layout is what the bootstrap cell looks for on Kaggle, with the bundle attached under the input folder.
    wheels = folder / "wheels"
    assert install_args(str(unzipped)) == ["--no-index", "--find-links", str(wheels), "gpt-from-scratch"]
    assert find_bundle_data(str(unzipped)) == str(folder / "data")

    # A fresh venv that sees the machine's torch (as on a laptop with torch installed) and has no network.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, offline_env()).strip())
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    # This machine has the course installed editable; --force-reinstall --no-deps makes pip put the bundle's
    # wheel into the venv rather than answer "already satisfied" (on a laptop without it, the README's plain
    # command does the same). The doctor below then checks that the dependencies are all there.
    env = offline_env()
    run([python, "-m", "pip", "install", "-q", *install_args(str(unzipped))[:-1], "--force-reinstall", "--no-deps",
         "gpt-from-scratch"], tmp_path, env)
    shown = run([python, "-m", "pip", "show", "-f", "gpt-from-scratch"], tmp_path, env)
    assert f"Location: {site}" in shown and "helpers/bundle.py" in shown

    data = tmp_path / "empty-data"
    data.mkdir()
    env = offline_env(GPTFS_OFFLINE_DIR=str(folder), GPTFS_DATA_DIR=str(data))
    blocked = subprocess.run([python, "-c", "import urllib.request; urllib.request.urlopen('http://example.com', timeout=5)"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0 and "network disabled" in blocked.stderr + blocked.stdout

    (tmp_path / "lesson_start.py").write_text(LESSON_START)
    out = run([python, "lesson_start.py"], tmp_path, env)
    result = json.loads(out.split("RESULT ", 1)[1])
    assert Path(result["helpers"]).is_relative_to(site), result["helpers"]
    assert result["chars"] == 1_115_394 and result["hello"] == [15496, 995] and result["vocab"] == 65
    assert "tinyshakespeare.txt" in result["data"] and "tiktoken_cache" in result["data"]

    report = json.loads(run([python, "-m", "helpers.doctor", "--json", "--no-network"], tmp_path, env))
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"], report
    assert checks["package torch"]["status"] == "OK" and checks["data tinyshakespeare"]["status"] == "OK"
    assert "skipped" in checks["notebooks in sync"]["detail"]  # an installed package has no notebooks to compare


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="zip"):
        bundle.make_bundle(tmp_path / "bundle.tar")
    with pytest.raises(ValueError, match="no checkpoint"):
        bundle.make_bundle(tmp_path / "bundle.zip", checkpoint=tmp_path / "missing.pt")
    with pytest.raises(bundle.BundleError, match="not a checkout"):
        bundle.build_wheel(tmp_path / "wheels", source=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_with_deps_downloads_every_dependency_but_torch_into_the_wheels(tmp_path):
    """The pip download itself needs the network, so a stand-in writes the wheels pip would."""
    commands = []

    def fake_pip(args, **kwargs):
        commands.append(args)
        dest = Path(args[args.index("--dest") + 1])
        for name in ("tiktoken-0.9.0-cp311-cp311-manylinux_2_17_x86_64.whl", "regex-2024.1.1-py3-none-any.whl"):
            (dest / name).write_bytes(b"")
        return subprocess.CompletedProcess(args, 0, "", "")

    wheels = bundle.download_dependencies(tmp_path / "wheels", run=fake_pip)
    assert [w.name for w in wheels] == ["regex-2024.1.1-py3-none-any.whl",
                                        "tiktoken-0.9.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    (command,) = commands
    assert command[1:5] == ["-m", "pip", "download", "--only-binary=:all:"]
    requirements = command[command.index("--dest") + 2:]
    assert {r.split(">")[0] for r in requirements} >= {"tiktoken", "regex", "numpy", "matplotlib", "tqdm", "safetensors"}
    assert not any(r.startswith("torch") for r in requirements)  # the room already has torch
    assert not any(r.startswith(("pytest", "transformers")) for r in requirements)  # no test extras

    def failing_pip(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "Could not find a version that satisfies tiktoken")

    with pytest.raises(bundle.BundleError, match="needs the network"):
        bundle.download_dependencies(tmp_path / "other", run=failing_pip)
