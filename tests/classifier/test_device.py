"""Device setting resolution."""

import pytest
import torch

from classifier.device import DeviceError, resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")


def test_bad_values():
    with pytest.raises(DeviceError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda:0")
