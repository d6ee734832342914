"""Torch CPU thread settings: multi-threaded LAPACK stalls on small shared machines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_threaded() -> Iterator[None]:
    """torch (OpenMP / MKL) at one thread inside, the caller's setting restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
