"""The device of the work in progress, for an encoder's one-off work outside the training loop.

The trainer moves the model to its device itself. Work the core asks of an encoder before that,
such as a frozen pretrained encoder computing every input's features in
:meth:`automm.Encoder.prepare`, runs where :func:`compute_device` says: the fit's device (the
estimator's ``device`` resolved: ``"cpu"`` keeps it on the CPU even where a GPU is present), a
search trial's GPU (each trial thread has its own), the loaded model's device while it predicts.
Outside a scope (an encoder used on its own) it is None and the encoder chooses.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

__all__ = ["compute_device", "device_scope"]

_device: contextvars.ContextVar[torch.device | None] = contextvars.ContextVar("automm_device", default=None)


@contextlib.contextmanager
def device_scope(device: torch.device | str | None) -> Iterator[None]:
    """Run the block with ``device`` as the device of its work (None: no device set). Per thread:
    a thread started inside the block does not inherit it. A CUDA device with an index is also
    CUDA's current device in the block, so code that says only ``"cuda"`` (or ``.cuda()``) in a
    search trial's thread lands on that trial's GPU."""
    device = None if device is None else torch.device(device)
    token = _device.set(device)
    try:
        if device is not None and device.type == "cuda" and device.index is not None:
            with torch.cuda.device(device):
                yield
        else:
            yield
    finally:
        _device.reset(token)


def compute_device() -> torch.device | None:
    """The device the work in progress runs on, or None outside any :func:`device_scope`."""
    return _device.get()
