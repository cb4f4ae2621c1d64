"""The training loop's checkpoints: its whole state after an epoch, and resuming from it.

A checkpoint is resumed only by the same run (a hash of the settings, the data and the initial
weights), so a stale file from another configuration is ignored rather than continued.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.torchio import load_payload, save_payload, state_dict_cpu

if TYPE_CHECKING:
    from anomalyhunt.scores.training import EarlyStopping, TrainingResult

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "anomalyhunt.training-checkpoint/2"


def fingerprint(net: Any, arrays: Sequence[Any], settings: dict[str, Any]) -> str:
    """Hash of the settings, the data and the initial weights: what makes a run the same run."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    tensors = [*arrays, *(v for _, v in sorted(net.state_dict().items()))]
    for a in tensors:
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_state(
    path: Any,
    key: str,
    next_epoch: int,
    net: Any,
    optimizers: Sequence[Any],
    order: Any,
    noise: Any,
    stopper: EarlyStopping,
    result: TrainingResult,
) -> None:
    """Write the loop's state after an epoch (atomically: a kill leaves the previous one)."""
    best = (
        None if stopper.state is None else {k: v.detach().cpu() for k, v in stopper.state.items()}
    )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "key": key,
        "next_epoch": next_epoch,
        "net": state_dict_cpu(net),
        "optimizers": [opt.state_dict() for opt in optimizers],
        "order_rng": order.get_state(),
        "noise_rng": noise.get_state(),
        "stopper": {
            "best": stopper.best,
            "best_epoch": stopper.best_epoch,
            "bad": stopper.bad,
            "state": best,
        },
        "history": result.history,
        "stopped": result.stopped,
    }
    save_payload(payload, path)


def resume_state(
    path: Any,
    key: str,
    dev: Any,
    net: Any,
    optimizers: Sequence[Any],
    order: Any,
    noise: Any,
    stopper: EarlyStopping,
    result: TrainingResult,
    label: str,
) -> int:
    """Load a matching checkpoint into the loop's objects; the epoch to continue from (0: none)."""
    try:
        payload = load_payload(path, CHECKPOINT_FORMAT, "training checkpoint", "cpu")
    except (AnomalyHuntError, OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        log.info("%s: ignoring unreadable checkpoint %s (%s)", label, path, exc)
        return 0
    if payload.get("key") != key or len(payload["optimizers"]) != len(optimizers):
        log.info(
            "%s: checkpoint %s is of another run (settings, data or weights); not resumed",
            label,
            path,
        )
        return 0
    net.load_state_dict(payload["net"])
    for opt, opt_state in zip(optimizers, payload["optimizers"], strict=True):
        opt.load_state_dict(opt_state)
    order.set_state(payload["order_rng"])
    noise.set_state(payload["noise_rng"])
    st = payload["stopper"]
    stopper.best, stopper.best_epoch, stopper.bad = st["best"], st["best_epoch"], st["bad"]
    stopper.state = None if st["state"] is None else {k: v.to(dev) for k, v in st["state"].items()}
    result.history = list(payload["history"])
    result.stopped = payload["stopped"]
    log.info("%s: resumed from %s after epoch %d", label, path, payload["next_epoch"] - 1)
    return int(payload["next_epoch"])
