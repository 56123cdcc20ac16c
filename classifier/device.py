"""Resolve a device setting (`auto` | `cpu` | `cuda` | `cuda:N`) to a torch device string."""

from __future__ import annotations

from classifier.errors import ClassifierError


class DeviceError(ClassifierError):
    """A device setting that is malformed or names a GPU this machine does not have."""

    exit_code = 1


def resolve_device(spec: str | None = "auto") -> str:
    """`auto` → `cuda` when torch sees a GPU, else `cpu`; `cuda[:N]` is checked to exist."""
    import torch

    value = (spec or "auto").strip().lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return "cpu"
    if value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(f"DEVICE={spec}: no CUDA GPU is available here (use auto or cpu)")
        index = int(value[5:]) if ":" in value else 0
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise DeviceError(f"DEVICE={spec}: only {count} CUDA device(s) present")
        return value
    raise DeviceError(f"DEVICE={spec!r}: expected auto, cpu, cuda or cuda:N")
