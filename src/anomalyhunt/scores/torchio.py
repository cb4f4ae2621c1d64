"""Saving and loading the PyTorch models of every scorer, in one place.

Models are plain dicts of tensors and numbers read back with ``torch.load(weights_only=True)``, so a
model file can never run code; the ``format`` tag makes loading the wrong kind of file a clear error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def save_network(model: Any, path: str | os.PathLike) -> None:
    """Save a fitted one-network model (``net`` with a standardisation ``mean``, ``best_epoch``,
    ``seed``, ``get_params()``, a ``FORMAT`` tag): the MLP classifier and the autoencoders."""
    if model.net is None:
        raise RuntimeError(f"{type(model).__name__}: nothing to save before fit()")
    payload = {
        "format": model.FORMAT,
        "params": model.get_params(),
        "seed": model.seed,
        "n_features": int(model.net.mean.numel()),
        "best_epoch": -1 if model.best_epoch is None else int(model.best_epoch),
        "state_dict": state_dict_cpu(model.net),
    }
    save_payload(payload, path)


def load_network(
    cls: Any,
    path: str | os.PathLike,
    build: Callable[[Any, int], Any],
    what: str,
    device: str = "cpu",
    threads: int = 1,
) -> Any:
    """Inverse of :func:`save_network`: ``build(model, n_features)`` makes the empty network."""
    import torch

    payload = load_payload(path, cls.FORMAT, what, device)
    model = cls.from_config(payload["params"], seed=payload["seed"], device=device, threads=threads)
    model.net = build(model, payload["n_features"])
    model.net.load_state_dict(payload["state_dict"])
    model.net.to(torch.device(device)).eval()
    model.best_epoch = None if payload["best_epoch"] < 0 else payload["best_epoch"]
    return model
