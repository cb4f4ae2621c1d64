"""Saving and loading the PyTorch models of every scorer, in one place.

Models are plain dicts of tensors and numbers read back with ``torch.load(weights_only=True)``, so a
model file can never run code; the ``format`` tag makes loading the wrong kind of file a clear error.
"""

from __future__ import annotations

import os
from typing import Any

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path


def state_dict_cpu(net: Any) -> dict[str, Any]:
    """The network's weights on the CPU, so a model saved on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def save_payload(payload: dict[str, Any], path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_payload(
    path: str | os.PathLike, fmt: str, what: str, device: str = "cpu"
) -> dict[str, Any]:
    """Read a payload written by :func:`save_payload`; ``fmt`` must match its ``format`` tag."""
    import torch

    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise AnomalyHuntError(f"{path}: {what} file not found") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise AnomalyHuntError(f"{path}: not an anomalyhunt {what}")
    return payload
