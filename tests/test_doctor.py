"""The environment doctor: each check's OK/WARN/FAIL on faked inputs, and the real run in a subprocess.

No test here touches the network: the probe is a fake, or the files are found offline first.
"""

import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from helpers import doctor
from helpers.doctor import FAIL, OFFLINE_FIX, OK, WARN
from helpers.downloads import ASSETS

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = ROOT.parent / "shared" / "offline"
Usage = namedtuple("Usage", "total used free")


def no_network(url):
    raise AssertionError(f"a test tried to reach {url}")


def test_requirements_are_parsed_with_their_lower_bounds():
    text = "# a comment\ntorch>=2.2\ntiktoken>=0.6  # why\n\n-e .\ntransformers>=4.40; extra == \"test\"\nrich\n"
    assert doctor.parse_requirements(text) == [("torch", "2.2"), ("tiktoken", "0.6"), ("rich", "")]


def test_the_real_requirements_file_is_read():
    requirements, source = doctor.course_requirements()
    assert source == "requirements.txt"
    names = [name for name, _ in requirements]
    assert "torch" in names and "tiktoken" in names and "." not in names


@pytest.mark.parametrize("version, expected", [("2.13.0+cpu", (2, 13, 0)), ("0.7rc1", (0, 7)), ("2023.10.3", (2023, 10, 3))])
def test_version_tuple(version, expected):
    assert doctor.version_tuple(version) == expected


def test_an_old_package_fails_with_the_pip_command():
    check = doctor.check_package("tiktoken", "0.6", version_of=lambda name: "0.5.2")
    assert check.status == FAIL
    assert "0.5.2 is older than 0.6" in check.detail
    assert check.fix == 'pip install --upgrade "tiktoken>=0.6"'


def test_a_missing_package_fails_and_a_missing_test_tool_warns():
    missing = doctor.check_package("tiktoken", "0.6", version_of=lambda name: None)
    assert (missing.status, missing.fix) == (FAIL, 'pip install "tiktoken>=0.6"')
    tool = doctor.check_package("pytest", "8", version_of=lambda name: None)
    assert tool.status == WARN and "only to run the tests" in tool.detail


def test_a_new_enough_package_is_ok():
    assert doctor.check_package("torch", "2.2", version_of=lambda name: "2.10.0+cu121").status == OK
    assert doctor.check_package("torch", "2.2", version_of=lambda name: "2.1.2").status == FAIL


def test_old_python_fails():
    assert doctor.check_python((3, 9, 18)).status == FAIL
    assert doctor.check_python((3, 10, 0)).status == OK


def test_torch_that_does_not_import_fails():
    def broken(name):
        raise OSError("libcudnn.so.9: cannot open shared object file")

    check = doctor.check_torch_import(broken)
    assert check.status == FAIL and "libcudnn" in check.detail and "pip install" in check.fix


def test_the_device_check_runs_a_real_step_and_reports_a_broken_gpu():
    from helpers.device import choose_device

    checks = doctor.check_device(lambda: choose_device("cpu"))
    assert [c.status for c in checks] == [OK, OK]
    assert "loss" in checks[1].detail

    class FakeGPU:
        device, device_type = "cuda:0", "cuda"

    def cuda_error(choice):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    checks = doctor.check_device(lambda: FakeGPU(), step=cuda_error)
    assert checks[1].status == FAIL and checks[1].fix.startswith("export GPTFS_DEVICE=cpu")


def test_data_in_the_data_folder_is_ok(tmp_path):
    asset = ASSETS["tinyshakespeare"]
    (tmp_path / asset.filename).write_bytes((OFFLINE / "data" / asset.filename).read_bytes())
    assert doctor.check_asset(asset, tmp_path, None, no_network).status == OK


def test_an_offline_copy_is_ok_even_when_the_data_folder_is_empty(tmp_path):
    checks = doctor.check_data(no_network, data_folder=tmp_path, offline_dir=str(OFFLINE))
    assert [c.status for c in checks] == [OK, OK, OK]
    assert "tiktoken_cache" in checks[1].detail  # the BPE files are found under their tiktoken cache names


def test_no_offline_copy_and_no_network_fails_with_the_export_command(tmp_path):
    probed = []
    checks = doctor.check_data(lambda url: probed.append(url) or False, data_folder=tmp_path, offline_dir="")
    assert [c.status for c in checks] == [FAIL, FAIL, FAIL]
    assert checks[0].fix == OFFLINE_FIX and checks[0].fix.startswith("export GPTFS_OFFLINE_DIR=")
    assert probed == [ASSETS[name].url for name in doctor.COURSE_ASSETS]


def test_a_reachable_network_is_ok(tmp_path):
    assert doctor.check_asset(ASSETS["tinyshakespeare"], tmp_path, None, lambda url: True).status == OK


def test_a_damaged_offline_copy_fails(tmp_path):
    asset = ASSETS["tinyshakespeare"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / asset.filename).write_text("not Shakespeare")
    (tmp_path / "empty").mkdir()
    check = doctor.check_asset(asset, tmp_path / "empty", str(tmp_path), no_network)
    assert check.status == FAIL and "fails its checksum" in check.detail


def test_drift_fails_with_the_export_command(tmp_path):
    problems = ["helpers/model.py differs from notebooks/06_gpt_model.ipynb: edit the notebook, "
                "then run `python -m helpers.notebooks export`"]
    check = doctor.check_sync(lambda: problems, notebooks_folder=tmp_path)
    assert check.status == FAIL and check.fix == "python -m helpers.notebooks export"
    assert doctor.check_sync(lambda: [], notebooks_folder=tmp_path).status == OK


def test_an_installed_package_without_notebooks_skips_the_sync_check(tmp_path):
    check = doctor.check_sync(no_network, notebooks_folder=tmp_path / "no-notebooks")
    assert check.status == OK and "skipped" in check.detail


@pytest.mark.parametrize("free, status", [(50 * 2**30, OK), (2**30, WARN), (100 * 2**20, FAIL)])
def test_disk_space(tmp_path, free, status):
    check = doctor.check_disk(tmp_path, usage=lambda path: Usage(0, 0, free))
    assert check.status == status
    assert bool(check.fix) == (status != OK)


def test_the_exit_code_is_non_zero_when_a_check_fails(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "run_checks", lambda probe: [doctor.Check("a", OK, "fine"), doctor.Check("b", WARN, "meh", "do x")])
    assert doctor.main([]) == 0
    assert "READY" in capsys.readouterr().out
    monkeypatch.setattr(doctor, "check_disk", lambda: doctor.Check("disk space", FAIL, "0.1 GB free", "free space"))
    monkeypatch.setattr(doctor, "run_checks", lambda probe: [doctor.Check("a", OK, "fine"), doctor.check_disk()])
    assert doctor.main([]) == 1
    out = capsys.readouterr().out
    assert "fix: free space" in out and out.strip().splitlines()[-1].startswith("Verdict: NOT READY")


def _run(*args, **env):
    environment = {key: value for key, value in os.environ.items() if key != "TIKTOKEN_CACHE_DIR"}
    environment.update(env, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120)


def test_the_real_doctor_on_this_machine(tmp_path):
    env = dict(GPTFS_OFFLINE_DIR=str(OFFLINE), GPTFS_DATA_DIR=str(tmp_path))
    text = _run("-m", "helpers.doctor", **env)
    assert text.returncode == 0, text.stdout + text.stderr
    lines = text.stdout.strip().splitlines()
    assert lines[-1].startswith("Verdict: READY")
    assert any(line.startswith("OK    data tinyshakespeare") for line in lines)
    result = _run("-m", "helpers.doctor", "--json", **env)
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["verdict"].startswith("READY")
    assert {c["name"] for c in report["checks"]} >= {"python", "package torch", "device", "tiny training step", "disk space"}
    assert report["versions"]["torch"].startswith("2.")
    assert list(tmp_path.iterdir()) == []  # the doctor downloads nothing


def test_the_doctor_as_a_file_reports_a_missing_torch(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text("raise ImportError('No module named torch (faked by the test)')\n")
    result = _run(str(ROOT / "helpers" / "doctor.py"), "--json", "--no-network", PYTHONPATH=str(fake))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["torch import"] == FAIL and statuses["import helpers"] == FAIL
