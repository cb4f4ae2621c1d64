"""Saving, loading and early stopping of the PyTorch models of every scorer, in one place.

Models are plain dicts of tensors and numbers read back with ``torch.load(weights_only=True)``, so a
model file can never run code; the ``format`` tag makes loading the wrong kind of file a clear error.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path


def state_dict_cpu(net: Any) -> dict[str, Any]:
    """The network's weights on the CPU, so a model saved on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def save_payload(payload: dict[str, Any], path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_payload(path: str | os.PathLike, fmt: str, what: str, device: str = "cpu") -> dict[str, Any]:
    """Read a payload written by :func:`save_payload`; ``fmt`` must match its ``format`` tag."""
    import torch

    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise AnomalyHuntError(f"{path}: {what} file not found") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise AnomalyHuntError(f"{path}: not an anomalyhunt {what}")
    return payload


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` events, chosen reproducibly.

    Caps the training set of the slow (CPU-bound) networks: beyond about 1e5 events the
    background shape they learn no longer improves, while the time per epoch keeps growing.
    """
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


class EarlyStopping:
    """Keep the weights of the best validation epoch and say when patience has run out."""

    def __init__(self, patience: int, min_delta: float = 1e-7) -> None:
        self.patience, self.min_delta = int(patience), min_delta
        self.best = math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, Any] | None = None
        self._bad = 0

    def step(self, epoch: int, val_loss: float, net: Any) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self._bad = val_loss, epoch, 0
            self._state = copy.deepcopy(net.state_dict())
            return False
        self._bad += 1
        return self._bad >= self.patience

    def restore(self, net: Any) -> bool:
        """Load the best epoch's weights into ``net``; False when no epoch ever improved."""
        if self._state is None:
            return False
        net.load_state_dict(self._state)
        return True
