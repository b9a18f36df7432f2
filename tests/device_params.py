"""The devices every device-dependent unit test runs on: CPU always, CUDA when torch sees a GPU."""

import pytest
import torch

DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                    reason="torch sees no CUDA device"))]
