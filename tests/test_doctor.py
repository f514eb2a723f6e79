"""The environment doctor: each check's OK/WARN/FAIL on faked inputs, and the real run in a subprocess.

No check here touches the network: the probe is a fake, or the files are found offline first. The course's
files themselves come from the `offline_dir` fixture (tests/conftest.py), found the way the course finds them.
"""

import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from packaging.version import Version

from helpers import device, doctor
from helpers.doctor import FAIL, OFFLINE_FIX, OK, WARN, Needed
from helpers.downloads import ASSETS

ROOT = Path(__file__).resolve().parent.parent
Usage = namedtuple("Usage", "total used free")


def no_network(url):
    raise AssertionError(f"a test tried to reach {url}")


def test_requirements_are_parsed_with_their_lower_bounds_and_extras():
    lines = ["torch>=2.3.0", "tiktoken >= 0.6, <1", 'ipywidgets>=8.0.0; extra == "notebooks"',
             'transformers>=4.40.0; extra == "notebooks"', 'transformers>=4.40.0; extra == "test"',
             'pytest>=8; extra == "test"', 'tomli>=2; python_version < "3"', 'sphinx>=7; extra == "docs"', "rich"]
    assert doctor.parse_requirements(lines) == [
        Needed("torch", "2.3.0"), Needed("tiktoken", "0.6"), Needed("ipywidgets", "8.0.0", ("notebooks",)),
        Needed("transformers", "4.40.0", ("notebooks", "test")), Needed("pytest", "8", ("test",)), Needed("rich", ""),
    ]


def test_the_real_requirements_are_read_from_pyproject():
    requirements, source = doctor.course_requirements()
    assert source == "pyproject.toml"
    by_name = {n.name: n for n in requirements}
    assert by_name["torch"].extras == () and by_name["packaging"].extras == ()
    assert by_name["pytest"].extras == ("test",) and by_name["ipywidgets"].extras == ("notebooks",)
    assert set(by_name["transformers"].extras) == {"notebooks", "test"}  # lessons 02 and 09 import it


def test_the_torch_bound_is_what_the_code_needs_and_an_older_torch_fails():
    minimum = next(n.minimum for n in doctor.course_requirements()[0] if n.name == "torch")
    assert Version(minimum) >= Version("2.3")  # torch.amp.GradScaler(device), torch.compiler.is_compiling()
    check = doctor.check_package("torch", minimum, version_of=lambda name: "2.2.2")
    assert check.status == FAIL and f"2.2.2 is older than {minimum}" in check.detail
    assert check.fix.startswith(f'pip install --upgrade "torch>={minimum}"') and "pytorch.org" in check.fix
    assert doctor.torch_requirement() == f"torch>={minimum}"


@pytest.mark.parametrize("installed, minimum, status", [
    ("2.13.0+cpu", "2.3.0", OK),  # a local build tag is not a problem
    ("2.10.0", "2.3.0", OK),  # numbers, not strings: 10 > 3
    ("0.10.0", "0.6", OK),
    ("2.3.0", "2.3", OK),
    ("2.3.0rc1", "2.3.0", FAIL),  # a release candidate comes before its release
    ("2.2.2", "2.3.0", FAIL),
    ("2023.10.3", "2023.3.22", OK),
])
def test_versions_are_compared_as_pip_compares_them(installed, minimum, status):
    assert doctor.check_package("torch", minimum, version_of=lambda name: installed).status == status


def test_a_version_that_cannot_be_compared_warns():
    check = doctor.check_package("tiktoken", "0.6", version_of=lambda name: "not-a-version")
    assert check.status == WARN and "not a version that can be compared" in check.detail and "--force-reinstall" in check.fix


def test_an_old_package_fails_with_the_pip_command():
    check = doctor.check_package("tiktoken", "0.6", version_of=lambda name: "0.5.2")
    assert check.status == FAIL
    assert "0.5.2 is older than 0.6" in check.detail
    assert check.fix == 'pip install --upgrade "tiktoken>=0.6"'


def test_a_missing_package_fails_and_one_only_an_extra_wants_warns():
    missing = doctor.check_package("tiktoken", "0.6", version_of=lambda name: None)
    assert (missing.status, missing.fix) == (FAIL, 'pip install "tiktoken>=0.6"')
    tool = doctor.check_package("pytest", "8", version_of=lambda name: None, extras=("test",))
    assert tool.status == WARN and "needed only for the tests" in tool.detail
    both = doctor.check_package("transformers", "4.40.0", version_of=lambda name: None, extras=("notebooks", "test"))
    assert both.status == WARN and "needed only for the notebooks and the tests" in both.detail
    old = doctor.check_package("ipywidgets", "8.0.0", version_of=lambda name: "7.8.1", extras=("notebooks",))
    assert old.status == WARN and old.fix == 'pip install --upgrade "ipywidgets>=8.0.0"'


def test_without_packaging_the_version_checks_say_to_install_it():
    checks = doctor.check_packages([Needed("torch", "2.3.0")], version_of=lambda name: "2.13.0", packaging_found=False)
    assert [(c.name, c.status) for c in checks] == [("package packaging", FAIL)]
    assert checks[0].fix.startswith('pip install "packaging>=')


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


def test_a_gpu_that_torch_has_no_kernels_for_warns_with_the_fix(monkeypatch):
    """Kaggle's P100 with a torch built for Volta and newer: the course runs on the CPU, and the doctor says why."""
    p100 = device.Capabilities(cuda=True, cuda_name="Tesla P100-PCIE-16GB", cuda_capability=(6, 0), cuda_count=1,
                               cuda_arch_list=("sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "compute_90"))
    monkeypatch.setattr(device, "detect_capabilities", lambda: p100)
    monkeypatch.delenv("GPTFS_DEVICE", raising=False)
    checks = doctor.check_device()
    assert [c.status for c in checks] == [WARN, OK]  # the tiny step runs, on the CPU
    assert "no kernels for the Tesla P100" in checks[0].detail and "runs on cpu" in checks[0].detail
    assert "T4" in checks[0].fix and "torch built for sm_60" in checks[0].fix
    assert "fix: pick a T4" in doctor.report(checks)


def test_data_in_the_data_folder_is_ok(tmp_path, offline_dir):
    asset = ASSETS["tinyshakespeare"]
    (tmp_path / asset.filename).write_bytes((offline_dir / "data" / asset.filename).read_bytes())
    assert doctor.check_asset(asset, tmp_path, None, no_network).status == OK


def test_an_offline_copy_is_ok_even_when_the_data_folder_is_empty(tmp_path, offline_dir):
    checks = doctor.check_data(no_network, data_folder=tmp_path, offline_dir=str(offline_dir))
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


def test_the_real_doctor_on_this_machine(tmp_path, offline_dir):
    env = dict(GPTFS_OFFLINE_DIR=str(offline_dir), GPTFS_DATA_DIR=str(tmp_path))
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


def test_the_doctor_without_packaging_says_to_install_it(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "packaging.py").write_text("raise ImportError('No module named packaging (faked by the test)')\n")
    result = _run(str(ROOT / "helpers" / "doctor.py"), "--json", "--no-network", PYTHONPATH=str(fake))
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["package packaging"]["status"] == FAIL and "pip install" in checks["package packaging"]["fix"]
    assert checks["torch import"]["status"] == OK  # the other checks still run
