"""Where the models run: ``QA_DEVICE=auto|cpu|cuda`` resolved to ``"cpu"`` or ``"cuda"``.

* ``auto``: CUDA when ``torch.cuda.is_available()``, else the CPU;
* ``cpu``: the CPU;
* ``cuda``: CUDA; without a usable GPU the service falls back to the CPU and logs a warning (it never
  refuses to start for want of a GPU).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install answers like no GPU
        return False


def resolve_device(requested: str | None) -> str:
    """``"cpu"`` or ``"cuda"`` for a ``QA_DEVICE`` value (None means ``auto``). ValueError: not a device name."""
    name = (requested or "auto").strip().lower()
    if name not in DEVICES:
        raise ValueError(f"device must be one of auto, cpu, cuda; not {requested!r}")
    if name == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if name == "cuda":
        logger.warning("QA_DEVICE=cuda but no CUDA GPU is available (torch.cuda.is_available() is False): "
                       "running on the CPU")
    return "cpu"
