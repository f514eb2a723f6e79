"""Device and dtype choice: CUDA, then MPS, then CPU.

Infrastructure, not taught in a lesson. One function, `choose_device`, returns
the whole decision (device, autocast dtype, GradScaler, torch.compile), and every
notebook prints it in its first code cell.

The decision is a pure function of the machine's capabilities, so the GPU rules
are unit-tested on a CPU by passing fake `Capabilities`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass

import torch

DEVICE_ENV = "GPTFS_DEVICE"  # set to cpu, cuda or mps to override the automatic choice


@dataclass(frozen=True)
class Capabilities:
    """What the machine offers, as far as the choice is concerned."""

    cuda: bool = False
    cuda_name: str = ""
    cuda_capability: tuple[int, int] = (0, 0)
    cuda_count: int = 0
    cuda_arch_list: tuple[str, ...] = ()  # what torch was built for, e.g. ("sm_75", "sm_80", "compute_90"); () = unknown
    mps: bool = False
    triton: bool = False
    platform: str = sys.platform


@dataclass(frozen=True)
class DeviceChoice:
    """Where the course runs, and in which precision."""

    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype  # the autocast dtype: bfloat16, float16 or float32
    use_grad_scaler: bool  # fp16 needs loss scaling; bf16 and fp32 do not
    compile: bool  # whether torch.compile is expected to work here
    name: str  # a human-readable name of the device
    reason: str  # why this precision was chosen
    problem: str = ""  # a GPU that is there but cannot be used, and why ("" when none)
    fix: str = ""  # what to do about `problem`

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for the forward pass (a no-op in fp32)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only when fp16 needs it."""
        return torch.amp.GradScaler(self.device_type, enabled=self.use_grad_scaler)

    def __str__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        scaler = " + GradScaler" if self.use_grad_scaler else ""
        compiled = ", torch.compile on" if self.compile else ""
        problem = f" -- {self.problem}: {self.fix}" if self.problem else ""
        return f"{self.device} ({self.name}): {dtype}{scaler}{compiled} ({self.reason}){problem}"


def detect_capabilities() -> Capabilities:
    """Read the capabilities of this machine from torch."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    try:
        import triton  # noqa: F401

        has_triton = True
    except ImportError:
        has_triton = False
    return Capabilities(
        cuda=cuda,
        cuda_name=torch.cuda.get_device_name(0) if cuda else "",
        cuda_capability=torch.cuda.get_device_capability(0) if cuda else (0, 0),
        cuda_count=torch.cuda.device_count() if cuda else 0,
        cuda_arch_list=tuple(torch.cuda.get_arch_list()) if cuda else (),
        mps=mps,
        triton=has_triton,
    )


def torch_runs_on(capability: tuple[int, int], arch_list: tuple[str, ...]) -> bool:
    """Whether a torch built for `arch_list` has kernels for a GPU of compute `capability`.

    A kernel built for sm_XY also runs on later GPUs of the same major version (sm_80 on an 8.6);
    one built for sm_XYa runs only on X.Y; PTX (compute_XY) is compiled by the driver for any GPU
    from X.Y on. An empty list means unknown, and is trusted.
    """
    if not arch_list:
        return True
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch)
        if match is None:
            continue
        kind, built = match.group(1), (int(match.group(2)), int(match.group(3)))
        if kind == "compute" and built <= capability:
            return True
        if kind == "sm" and match.group(4) == "a" and built == capability:
            return True
        if kind == "sm" and match.group(4) != "a" and built[0] == capability[0] and built[1] <= capability[1]:
            return True
    return False


def unusable_gpu(caps: Capabilities) -> tuple[str, str]:
    """(why, what to do) when this machine's CUDA GPU has no kernels in this torch; ("", "") otherwise.

    Kaggle's image, for one, ships a torch without kernels for its P100 (compute capability 6.0):
    `torch.cuda.is_available()` says True, and the first operation on the GPU fails.
    """
    if not caps.cuda or torch_runs_on(caps.cuda_capability, caps.cuda_arch_list):
        return "", ""
    major, minor = caps.cuda_capability
    why = (f"this torch has no kernels for the {caps.cuda_name or 'CUDA GPU'} (compute capability {major}.{minor}; "
           f"torch {torch.__version__} was built for {' '.join(caps.cuda_arch_list)})")
    fix = (f"pick a T4 GPU (on Kaggle: Settings > Accelerator > GPU T4 x2), "
           f"or install a torch built for sm_{major}{minor} (see pytorch.org)")
    return why, fix


def choose_device(prefer: str | None = None, caps: Capabilities | None = None) -> DeviceChoice:
    """Pick the device and precision: CUDA, then MPS, then CPU.

    - CUDA with compute capability >= 8.0 (A100, H100, RTX 30xx and newer): bf16.
      `torch.cuda.is_bf16_supported()` is not used because it says True on a T4,
      where bf16 is only emulated and slow.
    - Older CUDA GPUs (T4 is 7.5, P100 is 6.0, V100 is 7.0): fp16 with a GradScaler.
    - MPS: fp32, since autocast on Apple GPUs is still partial.
    - CPU: fp32.

    A CUDA GPU that this torch has no kernels for (a P100 on Kaggle) is skipped, and the
    choice says why and what to do.

    `prefer` (or the GPTFS_DEVICE environment variable) forces a device type.
    """
    caps = caps if caps is not None else detect_capabilities()
    prefer = prefer or os.environ.get(DEVICE_ENV) or None
    problem, fix = unusable_gpu(caps)
    available = {"cuda": caps.cuda and not problem, "mps": caps.mps, "cpu": True}
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"unknown device {prefer!r}: use one of cuda, mps or cpu")
        if prefer == "cuda" and problem:
            raise ValueError(f"device 'cuda' was asked for, but {problem}; {fix}, or choose cpu")
        if not available[prefer]:
            raise ValueError(
                f"device {prefer!r} was asked for but is not available on this machine; "
                f"unset {DEVICE_ENV} or choose cpu"
            )
        device = prefer
    else:
        device = next(name for name in ("cuda", "mps", "cpu") if available[name])

    if device == "cuda":
        major, minor = caps.cuda_capability
        # Triton, and so torch.compile's GPU backend, needs compute capability 7.0 or newer.
        can_compile = caps.triton and major >= 7 and caps.platform.startswith("linux")
        name = caps.cuda_name or "CUDA GPU"
        if caps.cuda_count > 1:
            name = f"{caps.cuda_count}x {name}"
        if major >= 8:
            return DeviceChoice("cuda", torch.bfloat16, False, can_compile, name, f"bf16: compute capability {major}.{minor}")
        return DeviceChoice(
            "cuda", torch.float16, True, can_compile, name, f"fp16: no fast bf16 below compute capability 8.0 (this is {major}.{minor})"
        )
    if device == "mps":
        return DeviceChoice("mps", torch.float32, False, False, "Apple GPU", "fp32: autocast on MPS is partial",
                            problem, fix)
    return DeviceChoice("cpu", torch.float32, False, False, "CPU", "fp32 on CPU", problem, fix)
