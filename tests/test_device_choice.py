"""GPU precision choice: bf16 where the GPU computes in it, fp16 autocast on older GPUs, fp32 on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dialc_runtime.models import loading
from dialc_runtime.train import trainer


def _gpu(monkeypatch: pytest.MonkeyPatch, *, available: bool, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize(("available", "bf16", "expected"), [
    (False, False, None), (True, True, torch.bfloat16), (True, False, torch.float16)])
def test_cuda_half(monkeypatch: pytest.MonkeyPatch, available: bool, bf16: bool, expected: object) -> None:
    _gpu(monkeypatch, available=available, bf16=bf16)
    assert loading.cuda_half() == expected


def test_pick_device(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpu(monkeypatch, available=False, bf16=False)
    assert loading.pick_device() == (torch.device("cpu"), torch.float32)
    _gpu(monkeypatch, available=True, bf16=False)  # a V100 / T4: no bf16 units
    assert loading.pick_device() == (torch.device("cuda"), torch.float16)
    _gpu(monkeypatch, available=True, bf16=True)
    assert loading.pick_device() == (torch.device("cuda"), torch.bfloat16)


def test_training_precision_on_cpu(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    args = trainer.training_args(trainer.TrainConfig(), tmp_path)
    assert not args.bf16 and not args.fp16 and args.use_cpu
