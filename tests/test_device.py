"""The device and dtype decision, tested on CPU by faking the machine's capabilities."""

import pytest
import torch

from helpers.device import Capabilities, choose_device, detect_capabilities, torch_runs_on

A100 = Capabilities(cuda=True, cuda_name="NVIDIA A100-SXM4-40GB", cuda_capability=(8, 0), cuda_count=1, triton=True)
H100 = Capabilities(cuda=True, cuda_name="NVIDIA H100", cuda_capability=(9, 0), cuda_count=1, triton=True)
T4 = Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=1, triton=True)
TWO_T4 = Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=2, triton=True)
P100 = Capabilities(cuda=True, cuda_name="Tesla P100-PCIE-16GB", cuda_capability=(6, 0), cuda_count=1, triton=True)
# Kaggle's image: a torch built for Volta and newer, on a P100 (compute capability 6.0).
NEWER_TORCH = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120")
KAGGLE_P100 = Capabilities(**{**P100.__dict__, "cuda_arch_list": NEWER_TORCH})
MAC = Capabilities(mps=True, platform="darwin")
LAPTOP = Capabilities()


@pytest.mark.parametrize("caps", [A100, H100])
def test_ampere_and_newer_use_bf16_without_scaler(caps):
    choice = choose_device(caps=caps)
    assert (choice.device, choice.dtype, choice.use_grad_scaler) == ("cuda", torch.bfloat16, False)
    assert choice.compile


@pytest.mark.parametrize("caps", [T4, TWO_T4, P100])
def test_older_gpus_use_fp16_with_grad_scaler(caps):
    choice = choose_device(caps=caps)
    assert (choice.device, choice.dtype, choice.use_grad_scaler) == ("cuda", torch.float16, True)
    assert "fp16" in choice.reason


def test_compile_needs_triton_capability_7_and_linux():
    assert choose_device(caps=T4).compile
    assert not choose_device(caps=P100).compile  # Triton needs compute capability 7.0
    assert not choose_device(caps=Capabilities(**{**T4.__dict__, "triton": False})).compile
    assert not choose_device(caps=Capabilities(**{**A100.__dict__, "platform": "win32"})).compile


def test_two_gpus_are_named():
    assert choose_device(caps=TWO_T4).name.startswith("2x ")


def test_cuda_before_mps_before_cpu():
    both = Capabilities(**{**A100.__dict__, "mps": True})
    assert choose_device(caps=both).device == "cuda"
    mps = choose_device(caps=MAC)
    assert (mps.device, mps.dtype, mps.use_grad_scaler, mps.compile) == ("mps", torch.float32, False, False)
    cpu = choose_device(caps=LAPTOP)
    assert (cpu.device, cpu.dtype, cpu.use_grad_scaler, cpu.compile) == ("cpu", torch.float32, False, False)


def test_preference_and_environment_override(monkeypatch):
    assert choose_device("cpu", caps=A100).device == "cpu"
    monkeypatch.setenv("GPTFS_DEVICE", "cpu")
    assert choose_device(caps=A100).device == "cpu"


def test_unavailable_or_unknown_preference_is_a_clear_error():
    with pytest.raises(ValueError, match="'cuda' was asked for but is not available"):
        choose_device("cuda", caps=LAPTOP)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        choose_device("tpu", caps=LAPTOP)


def test_a_gpu_that_torch_has_no_kernels_for_falls_back_to_the_cpu_and_says_what_to_do():
    choice = choose_device(caps=KAGGLE_P100)
    assert (choice.device, choice.dtype, choice.use_grad_scaler) == ("cpu", torch.float32, False)
    line = str(choice)
    assert "\n" not in line
    assert "Tesla P100-PCIE-16GB" in line and "compute capability 6.0" in line and "sm_70" in line
    assert "T4" in line and "torch built for sm_60" in line
    assert choice.problem and choice.fix  # for the doctor


def test_asking_for_cuda_on_a_gpu_that_torch_has_no_kernels_for_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="no kernels for the Tesla P100.*T4.*torch built for sm_60"):
        choose_device("cuda", caps=KAGGLE_P100)
    monkeypatch.setenv("GPTFS_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no kernels for the Tesla P100"):
        choose_device(caps=KAGGLE_P100)


def test_a_gpu_that_torch_was_built_for_is_used():
    p100_build = Capabilities(**{**P100.__dict__, "cuda_arch_list": ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80")})
    assert choose_device(caps=p100_build).device == "cuda"
    assert choose_device(caps=Capabilities(**{**T4.__dict__, "cuda_arch_list": NEWER_TORCH})).device == "cuda"
    assert not choose_device(caps=p100_build).problem


@pytest.mark.parametrize("capability, arch_list, runs", [
    ((8, 6), ("sm_80",), True),  # a kernel for X.Y runs on X.Z, Z >= Y
    ((8, 0), ("sm_86",), False),  # ... but not on an earlier minor version
    ((9, 0), ("sm_80", "sm_86"), False),  # ... nor on another major version
    ((9, 0), ("sm_80", "compute_80"), True),  # PTX is compiled for any later GPU
    ((7, 5), ("sm_80", "compute_80"), False),  # ... but not for an earlier one
    ((9, 0), ("sm_90a",), True),  # an arch-specific kernel runs on its own GPU only
    ((10, 3), ("sm_100a",), False),
    ((12, 0), ("sm_100", "sm_120"), True),  # three-digit architectures
    ((6, 0), (), True),  # nothing known: trusted
])
def test_torch_runs_on(capability, arch_list, runs):
    assert torch_runs_on(capability, arch_list) == runs


def test_autocast_and_scaler_follow_the_choice():
    cpu = choose_device(caps=LAPTOP)
    with cpu.autocast():
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    assert not cpu.grad_scaler().is_enabled()
    bf16_cpu = cpu.__class__("cpu", torch.bfloat16, False, False, "CPU", "test")
    with bf16_cpu.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_this_machine_gets_a_working_choice():
    caps = detect_capabilities()
    if caps.cuda:
        assert caps.cuda_arch_list  # what torch was built for is read, so the choice can check it
    choice = choose_device(caps=caps)
    x = torch.randn(4, 4, device=choice.device)
    with choice.autocast():
        assert torch.isfinite(x @ x).all()
    assert choice.device in str(choice)
