"""The device and dtype decision, tested on CPU by faking the machine's capabilities."""

import pytest
import torch

from helpers.device import Capabilities, choose_device, detect_capabilities

A100 = Capabilities(cuda=True, cuda_name="NVIDIA A100-SXM4-40GB", cuda_capability=(8, 0), cuda_count=1, triton=True)
H100 = Capabilities(cuda=True, cuda_name="NVIDIA H100", cuda_capability=(9, 0), cuda_count=1, triton=True)
T4 = Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=1, triton=True)
TWO_T4 = Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=2, triton=True)
P100 = Capabilities(cuda=True, cuda_name="Tesla P100-PCIE-16GB", cuda_capability=(6, 0), cuda_count=1, triton=True)
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
    choice = choose_device(caps=detect_capabilities())
    x = torch.randn(4, 4, device=choice.device)
    with choice.autocast():
        assert torch.isfinite(x @ x).all()
    assert choice.device in str(choice)
