"""The offline bundle: build it, install the course from it into a fresh virtual environment with the
network cut off, and run a lesson's first cells there from the bundle's files alone, with no setting.
--with-deps: the wheels of the dependencies and the [notebooks] extra, for every platform and Python."""

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
from helpers.bootstrap import find_bundles, install_attempts, notebook_cell
from helpers.downloads import ASSETS

ROOT = Path(__file__).resolve().parent.parent

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

# A lesson's first cells, run from the bundle's notebooks/ folder with no GPTFS_OFFLINE_DIR: the bootstrap cell,
# then the data and the reference tokenizer, then the bundle's checkpoint (as lesson 09 finds it).
LESSON_START = notebook_cell() + '''
import json, os, helpers
from helpers import fetch, gpt2_tiktoken, load_trained
from helpers.bootstrap import bundle_checkpoint
text = fetch("tinyshakespeare").read_text(encoding="utf-8")
enc = gpt2_tiktoken()
model, tokenizer = load_trained(bundle_checkpoint())
print("RESULT " + json.dumps({"helpers": helpers.__file__, "chars": len(text), "hello": enc.encode("Hello world"),
                              "data": os.listdir(os.environ["GPTFS_DATA_DIR"]), "vocab": len(tokenizer.chars),
                              "offline": os.environ["GPTFS_OFFLINE_DIR"], "checkpoint": str(bundle_checkpoint())}))
'''


class _Venv(venv.EnvBuilder):
    def post_setup(self, context):
        self.python = context.env_exe  # bin/python, or Scripts\python.exe on Windows


def tiny_checkpoint(path: Path, text: str) -> Path:
    """A small checkpoint in train()'s format, standing in for a trained Shakespeare model."""
    from helpers.attention import GPTConfig
    from helpers.checkpoint import FORMAT, save_checkpoint
    from helpers.model import GPT

    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    chars = sorted(set(text))
    return save_checkpoint(path, {"format": FORMAT, "model": GPT(config).state_dict(),
                                  "model_config": dataclasses.asdict(config), "tokenizer": {"kind": "char", "chars": chars}})


def offline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "PYTHONPATH", "GPTFS_DEVICE",
                                                                 "GPTFS_OFFLINE_DIR", "GPTFS_DATA_DIR")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env.update(HTTP_PROXY=closed, HTTPS_PROXY=closed, http_proxy=closed, https_proxy=closed,
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", **extra)
    return env


def run(args, cwd, env, timeout=120):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_bundle_installs_and_runs_a_lesson_with_no_network(tmp_path, offline_dir):
    checkpoint = tiny_checkpoint(tmp_path / "run" / "ckpt.pt", (offline_dir / "data" / "tinyshakespeare.txt").read_text())
    zip_path = tmp_path / "out" / "bundle.zip"
    run([sys.executable, "-m", "helpers.bundle", zip_path, "--checkpoint", checkpoint], ROOT,
        offline_env(GPTFS_OFFLINE_DIR=str(offline_dir), GPTFS_DATA_DIR=str(tmp_path / "build-data")))
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
    assert 'pip install --find-links wheels "gpt-from-scratch[notebooks]"' in readme  # made without --with-deps
    for command in ("python3 -m venv", "source ~/gptfs-env/bin/activate", "Activate.ps1", "Expand-Archive",
                    "unzip bundle.zip", '$env:GPTFS_OFFLINE_DIR = "$PWD"', "Add Input", "mount Drive"):
        assert command in readme, command

    # The layout is what the bootstrap cell looks for on Colab and Kaggle, wherever the bundle was put.
    (wheel,) = (folder / "wheels").glob("gpt_from_scratch-*.whl")
    assert find_bundles([(str(unzipped), 0)]) == [str(folder)]
    assert install_attempts(str(folder))[0][1] == ["--no-index", "--find-links", str(folder / "wheels"), str(wheel)]

    # A fresh venv that sees the machine's torch (as on a laptop with torch installed) and has no network.
    builder = _Venv(system_site_packages=True, with_pip=False)
    builder.create(tmp_path / "venv")
    python = builder.python
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, offline_env()).strip())
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    # This machine has the course installed editable; --force-reinstall --no-deps makes pip put the bundle's
    # wheel into the venv rather than answer "already satisfied" (on a laptop without it, the README's plain
    # command does the same). The doctor below then checks that the dependencies are all there.
    env = offline_env()
    run([python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", *install_attempts(str(folder))[0][1]],
        tmp_path, env)
    shown = run([python, "-m", "pip", "show", "-f", "gpt-from-scratch"], tmp_path, env)
    assert f"Location: {site}" in shown and "helpers/bundle.py" in shown

    data = tmp_path / "empty-data"
    data.mkdir()
    env = offline_env(GPTFS_DATA_DIR=str(data))  # no GPTFS_OFFLINE_DIR: the notebook finds the bundle around it
    blocked = subprocess.run([python, "-c", "import urllib.request; urllib.request.urlopen('http://example.com', timeout=5)"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0 and "network disabled" in blocked.stderr + blocked.stdout

    (folder / "notebooks" / "lesson_start.py").write_text(LESSON_START)
    out = run([python, "lesson_start.py"], folder / "notebooks", env)  # Jupyter runs a notebook in its folder
    result = json.loads(out.split("RESULT ", 1)[1])
    assert Path(result["helpers"]).is_relative_to(site), result["helpers"]
    assert result["chars"] == 1_115_394 and result["hello"] == [15496, 995] and result["vocab"] == 65
    assert "tinyshakespeare.txt" in result["data"] and "tiktoken_cache" in result["data"]
    assert result["offline"] == str(folder) and result["checkpoint"] == str(folder / bundle.CHECKPOINT_PATH)

    env = offline_env(GPTFS_OFFLINE_DIR=str(folder), GPTFS_DATA_DIR=str(data))  # the README's doctor line
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


def test_with_deps_refuses_an_unknown_platform_or_python(tmp_path, capsys):
    assert bundle.main([str(tmp_path / "b.zip"), "--with-deps", "--platforms", "linux-x86_64,amiga"]) == 2
    assert capsys.readouterr().err == ("error: unknown platform amiga; choose from linux-x86_64, linux-aarch64, "
                                       "macos-arm64, macos-x86_64, windows-x86_64\n")
    assert bundle.main([str(tmp_path / "b.zip"), "--with-deps", "--pythons", "3.11,python3"]) == 2
    assert "3.11, not python3" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def fake_wheel(path: Path, requires: list[str], extras: list[str]) -> Path:
    """A wheel holding only the METADATA that setuptools writes: Requires-Dist and Provides-Extra lines."""
    lines = ["Metadata-Version: 2.1", "Name: gpt-from-scratch", "Version: 0.1.0"]
    lines += [f"Provides-Extra: {extra}" for extra in extras] + [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("gpt_from_scratch-0.1.0.dist-info/METADATA", "\n".join(lines) + "\n")
    return path


def test_with_deps_packs_the_notebooks_extra_but_not_torch_or_the_tests(tmp_path):
    wheel = fake_wheel(tmp_path / "gpt_from_scratch-0.1.0-py3-none-any.whl", [
        "torch>=2.3.0", "tiktoken>=0.6.0", "numpy>=1.24.0", 'jupyterlab>=4.0.0; extra == "notebooks"',
        'ipykernel>=6.0.0; extra == "notebooks"', 'transformers>=4.40.0; extra == "notebooks"',
        'pytest>=8.0.0; extra == "test"', 'ipykernel>=6.0.0; extra == "test"'], ["notebooks", "test"])
    assert bundle.bundle_requirements(wheel) == ["tiktoken>=0.6.0", "numpy>=1.24.0", "jupyterlab>=4.0.0",
                                                 "ipykernel>=6.0.0", "transformers>=4.40.0"]
    older_setuptools = fake_wheel(tmp_path / "older.whl", [  # writes a space, or parentheses, before the version
        "torch >=2.3.0", "tiktoken >=0.6.0", 'numpy (>=1.24.0)', 'jupyterlab >=4.0.0 ; extra == "notebooks"'], ["notebooks"])
    assert bundle.bundle_requirements(older_setuptools) == ["tiktoken>=0.6.0", "numpy>=1.24.0", "jupyterlab>=4.0.0"]
    old = fake_wheel(tmp_path / "old.whl", ["torch>=2.2", 'pytest>=8; extra == "test"'], ["test"])
    with pytest.raises(bundle.BundleError, match=r"declares no \[notebooks\] extra"):
        bundle.bundle_requirements(old)


def test_the_real_wheel_asks_for_the_notebooks_extra(tmp_path):
    wheel = bundle.build_wheel(tmp_path)
    requirements = bundle.bundle_requirements(wheel)
    assert {r.split(">")[0] for r in requirements} >= {"tiktoken", "numpy", "jupyterlab", "ipykernel", "transformers"}
    assert not any(r.startswith(("torch", "pytest", "nbval", "ruff")) for r in requirements)


def test_with_deps_runs_one_pip_download_per_platform_and_python(tmp_path):
    """pip download needs the network: a stand-in records the commands and writes the wheels pip would."""
    commands = []

    def fake_pip(args, **kwargs):
        commands.append(args)
        dest = Path(args[args.index("--dest") + 1])
        python = args[args.index("--python-version") + 1].replace(".", "")
        platform = args[args.index("--platform") + 1]
        for name in (f"numpy-2.0.0-cp{python}-cp{python}-{platform}.whl", "regex-2024.1.1-py3-none-any.whl"):
            if not (dest / name).exists():  # as pip does: a file already downloaded is not fetched again
                (dest / name).write_bytes(b"")
        return subprocess.CompletedProcess(args, 0, "", "")

    out = tmp_path / "wheels"
    wheels = bundle.download_dependencies(out, ["tiktoken>=0.6.0", "jupyterlab>=4.0.0"], run=fake_pip)
    head = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(out)]
    linux = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
             "--platform", "manylinux2014_x86_64"]
    expected = []
    for platform in (["--platform", "win_amd64"], ["--platform", "macosx_12_0_arm64"], linux):
        for python in ("3.10", "3.11", "3.12"):
            abi = "cp" + python.replace(".", "")
            expected.append([*head, *platform, "--python-version", python, "--implementation", "cp", "--abi", abi,
                             "tiktoken>=0.6.0", "jupyterlab>=4.0.0"])
    assert commands == expected
    assert len(wheels) == 9 + 1 and [w.name for w in wheels].count("regex-2024.1.1-py3-none-any.whl") == 1

    commands.clear()
    bundle.download_dependencies(tmp_path / "other", ["numpy"], platforms=("macos-x86_64",), pythons=("3.12",),
                                 run=fake_pip)
    assert [c[c.index("--platform"):] for c in commands] == [
        ["--platform", "macosx_10_13_x86_64", "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
         "numpy"]]

    def failing_pip(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "Could not find a version that satisfies tiktoken")

    with pytest.raises(bundle.BundleError, match="for win_amd64, Python 3.10 failed .this step needs the network"):
        bundle.download_dependencies(tmp_path / "failing", ["tiktoken"], run=failing_pip)


def test_with_deps_puts_the_downloaded_wheels_in_the_bundle(tmp_path, offline_dir, monkeypatch):
    monkeypatch.setenv("GPTFS_OFFLINE_DIR", str(offline_dir))
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path / "data"))
    calls = []

    def fake_download(out_dir, requirements, platforms, pythons):
        calls.append((requirements, platforms, pythons))
        (out_dir / "numpy-2.0.0-cp311-cp311-win_amd64.whl").write_bytes(b"numpy")
        return [out_dir / "numpy-2.0.0-cp311-cp311-win_amd64.whl"]

    monkeypatch.setattr(bundle, "download_dependencies", fake_download)
    zip_path = bundle.make_bundle(tmp_path / "b.zip", with_deps=True, platforms=("windows-x86_64",), pythons=("3.11",))
    ((requirements, platforms, pythons),) = calls
    assert any(r.startswith("transformers>=") for r in requirements)  # the [notebooks] extra's, at its lower bound
    assert platforms == ("windows-x86_64",) and pythons == ("3.11",)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.read(f"{bundle.FOLDER}/wheels/numpy-2.0.0-cp311-cp311-win_amd64.whl") == b"numpy"
        readme = archive.read(f"{bundle.FOLDER}/README.md").decode()
    assert 'pip install --no-index --find-links wheels "gpt-from-scratch[notebooks]"' in readme
    assert "for windows-x86_64 with Python 3.11" in readme
