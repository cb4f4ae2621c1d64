"""The one PyTorch training loop behind every network here (classifiers, autoencoders, flows).

Reproducibility lives in the details (which generator shuffles, which one draws noise, when
the global RNG is touched, how validation losses are summed, which epoch's weights are kept),
so they are written once, here, and every network gets the same rules.

How a network uses it:

1. Build the network inside ``with seeded(seed):`` so its initial weights depend on the seed
   alone (the global RNG is restored afterwards); networks that standardise their input keep
   ``mean``/``scale`` buffers and call :func:`set_standardisation`.
2. Write a *per-event* loss, ``loss(batch, generator) -> Tensor of shape (len(batch[0]),)``,
   where ``batch`` holds the same rows of every array in ``train`` (or ``valid``) and
   ``generator`` is the one to draw any noise from (a VAE's reparametrisation, say).
3. Call :func:`train_network`. It minimises the (weighted) mean loss with Adam on shuffled
   mini-batches, measures the (weighted) mean validation loss after each epoch, stops after
   ``patience`` epochs without an improvement larger than ``min_delta`` (or at the first
   non-finite validation loss) and leaves the network holding the best epoch's weights, in
   eval mode.

Seeding: the batch order comes from a CPU generator seeded with ``seed``; training noise from
a generator on the device seeded with ``derive_seed(seed, "noise")``; validation noise from one
seeded afresh with ``derive_seed(seed, "val")`` every epoch, so every epoch is judged on the
same draws. The global RNG is never used, so equal seeds (and thread counts) give equal models.
Validation losses are summed in float64: ``min_delta`` is far below the rounding of a float32
sum over many events.

With ``checkpoint``, the loop's whole state (weights, optimiser, generators, early stopping,
history) is written there after every epoch; a later call with the same network, initial weights,
data and settings continues from it and ends with exactly the weights an uninterrupted run gives.
The file is removed when training ends.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.torchio import load_payload, save_payload, state_dict_cpu

log = logging.getLogger(__name__)

#: Events per forward pass when scoring or validating (no gradients, so memory is no concern).
EVAL_BATCH = 65536
CHECKPOINT_FORMAT = "anomalyhunt.training-checkpoint/1"

#: ``loss(batch, generator)``: one loss per event of the batch (the loop takes the mean).
LossFn = Callable[[tuple[Any, ...], Any], Any]


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the previous state afterwards.

    For what only the global RNG can drive: a network's initial weights, a library's sampler.
    """
    import torch

    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) % (2**63))
        yield


def set_standardisation(net: Any, X: np.ndarray) -> None:
    """Store ``X``'s per-feature mean and spread in the network's ``mean``/``scale`` buffers.

    Kept in the network, so a saved model carries its own preprocessing; a constant feature
    gets scale 1 rather than a division by zero.
    """
    import torch

    mean = X.mean(axis=0, dtype=np.float64)
    scale = X.std(axis=0, dtype=np.float64)
    scale[scale <= 0] = 1.0
    net.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
    net.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` events, chosen reproducibly.

    Caps the training set of the slow (CPU-bound) networks: beyond about 1e5 events the
    background shape they learn no longer improves, while the time per epoch keeps growing.
    """
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def cap_events(n_train: int, n_valid: int, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices keeping at most ``limit`` training and ``limit // 4`` validation events."""
    keep = subsample(n_train, limit, derive_seed(seed, "subsample", "train"))
    keep_val = subsample(n_valid, max(1, limit // 4), derive_seed(seed, "subsample", "valid"))
    return keep, keep_val


class EarlyStopping:
    """Keep the weights of the best validation epoch and say when patience has run out."""

    def __init__(self, patience: int, min_delta: float = 1e-7) -> None:
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best = math.inf
        self.best_epoch: int | None = None
        self.state: dict[str, Any] | None = None
        self.bad = 0

    def step(self, epoch: int, val_loss: float, net: Any) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad = val_loss, epoch, 0
            self.state = copy.deepcopy(net.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, net: Any) -> bool:
        """Load the best epoch's weights into ``net``; False when no epoch ever improved."""
        if self.state is None:
            return False
        net.load_state_dict(self.state)
        return True


@dataclass
class TrainingResult:
    """What a training run did: ``history`` has one dict (epoch, train_loss, val_loss) per epoch."""

    best_epoch: int
    best_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "epochs"  # "epochs", "patience" or "non-finite"
    seconds: float = 0.0


def _as_tensor(a: Any, device: Any) -> Any:
    import torch

    return a.to(device) if isinstance(a, torch.Tensor) else torch.as_tensor(a, device=device)


def batched(
    fn: LossFn,
    arrays: Sequence[Any],
    *,
    device: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
) -> np.ndarray:
    """``fn`` applied without gradients to chunks of the rows of ``arrays``, as float64.

    ``fn(batch, generator)`` returns one value per row; ``generator`` (on ``device``, seeded with
    ``seed``) is for any randomness, so results are reproducible. ``threads`` sets torch's CPU
    threads first (unchanged when None).
    """
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    n = len(arrays[0])
    out = np.empty(n, dtype=np.float64)
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    with torch.no_grad():
        for s in range(0, n, EVAL_BATCH):
            batch = tuple(_as_tensor(a[s : s + EVAL_BATCH], dev) for a in arrays)
            out[s : s + len(batch[0])] = fn(batch, gen).double().cpu().numpy()
    return out


def _weighted_mean(values: np.ndarray, weight: np.ndarray | None) -> float:
    if weight is None:
        return float(values.mean())
    return float(np.sum(values * weight) / np.sum(weight))


def _fingerprint(net: Any, arrays: Sequence[Any], settings: dict[str, Any]) -> str:
    """Hash of the settings, the data and the initial weights: what makes a run the same run."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    tensors = [*arrays, *(v for _, v in sorted(net.state_dict().items()))]
    for a in tensors:
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def train_network(
    net: Any,
    loss: LossFn,
    train: Sequence[Any],
    valid: Sequence[Any],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    weight: np.ndarray | None = None,
    valid_weight: np.ndarray | None = None,
    min_delta: float = 1e-7,
    device: str = "cpu",
    threads: int | None = None,
    label: str = "train",
    checkpoint: str | os.PathLike | None = None,
) -> TrainingResult:
    """Train ``net`` to minimise ``loss`` with Adam and early stopping (see the module docstring).

    Parameters
    ----------
    net : torch.nn.Module
        The network, already initialised (under :func:`seeded`); moved to ``device``.
    loss : callable
        ``loss(batch, generator)``: per-event losses of a batch (a tuple holding the same rows
        of each array in ``train`` or ``valid``).
    train, valid : sequence of arrays or tensors
        Training and validation inputs, all arrays of one sequence with the same length.
    epochs : int
        Most passes over the training set.
    batch_size : int
        Events per optimiser step.
    learning_rate : float
        Adam's step size.
    patience : int
        Epochs without an improvement larger than ``min_delta`` before training stops.
    seed : int
        Seeds the batch order and the noise generators (module docstring).
    weight, valid_weight : array, optional
        Per-event weights of the training and validation losses (default: plain means).
    min_delta : float, default 1e-7
        Smallest drop of the validation loss that counts as an improvement.
    device : str, default "cpu"
        Where to train ("cpu", "cuda", "cuda:1").
    threads : int, optional
        Torch CPU threads (unchanged when None).
    label : str, default "train"
        Names the run in the progress bar, the log and errors.
    checkpoint : path, optional
        File for the loop's state after every epoch, resumed from when it matches.

    Returns
    -------
    TrainingResult
        The best epoch, its validation loss, the per-epoch history and why training stopped.

    Raises
    ------
    AnomalyHuntError
        When no epoch had a finite validation loss (training diverged).
    """
    import torch
    from tqdm.auto import tqdm

    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = torch.device(device)
    n = len(train[0])
    if n == 0 or len(valid[0]) == 0:
        raise AnomalyHuntError(f"{label}: no training or no validation events")
    settings = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "patience": int(patience),
        "learning_rate": float(learning_rate),
        "min_delta": float(min_delta),
        "seed": int(seed),
        "label": label,
        "device": str(device),
    }
    key = None
    if checkpoint is not None:
        extra = [w for w in (weight, valid_weight) if w is not None]
        key = _fingerprint(net, [*train, *valid, *extra], settings)
    net.to(dev)
    xs = tuple(_as_tensor(a, dev) for a in train)
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=dev)
    w_val = None if valid_weight is None else np.asarray(valid_weight, dtype=np.float64)
    opt = torch.optim.Adam(net.parameters(), lr=float(learning_rate))
    order = torch.Generator().manual_seed(int(seed))
    noise = torch.Generator(device=dev).manual_seed(derive_seed(seed, "noise"))
    stopper = EarlyStopping(patience, min_delta)
    result = TrainingResult(best_epoch=-1, best_loss=math.inf)
    start = 0
    if key is not None and Path(checkpoint).exists():
        start = _resume(checkpoint, key, dev, net, opt, order, noise, stopper, result, label)
    if result.stopped != "epochs":  # resumed from a run that had stopped early
        start = int(epochs)

    t0 = time.perf_counter()
    bs = int(batch_size)
    bar = tqdm(
        range(start, int(epochs)),
        desc=label,
        unit="epoch",
        leave=False,
        disable=not sys.stderr.isatty(),
    )
    for epoch in bar:
        net.train()
        perm = torch.randperm(n, generator=order).to(dev)
        total = 0.0
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            each = loss(tuple(x[idx] for x in xs), noise)
            batch_loss = each.mean() if w is None else (each * w[idx]).sum() / w[idx].sum()
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            total += float(batch_loss.detach()) * len(idx)
        net.eval()
        per_event = batched(loss, valid, device=device, seed=derive_seed(seed, "val"))
        val = _weighted_mean(per_event, w_val)
        result.history.append({"epoch": epoch, "train_loss": total / n, "val_loss": val})
        bar.set_postfix(val_loss=f"{val:.4f}")
        if not np.isfinite(val):
            log.warning("%s: non-finite validation loss at epoch %d; stopping", label, epoch)
            result.stopped = "non-finite"
        elif stopper.step(epoch, val, net):
            result.stopped = "patience"
        if key is not None:
            _save(checkpoint, key, epoch + 1, net, opt, order, noise, stopper, result)
        if result.stopped != "epochs":
            break
    bar.close()
    if not stopper.restore(net):
        raise AnomalyHuntError(f"{label} training diverged: no epoch had a finite validation loss")
    net.eval()
    result.best_epoch, result.best_loss = int(stopper.best_epoch), float(stopper.best)
    result.seconds = time.perf_counter() - t0
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)
    log.debug(
        "%s: %d train events, %d epochs (best %d, validation loss %.5f) in %.1f s",
        label,
        n,
        len(result.history),
        result.best_epoch,
        result.best_loss,
        result.seconds,
    )
    return result


def _save(
    path: Any,
    key: str,
    next_epoch: int,
    net: Any,
    opt: Any,
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
        "optimizer": opt.state_dict(),
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


def _resume(
    path: Any,
    key: str,
    dev: Any,
    net: Any,
    opt: Any,
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
    if payload.get("key") != key:
        log.info(
            "%s: checkpoint %s is of another run (settings, data or weights); not resumed",
            label,
            path,
        )
        return 0
    net.load_state_dict(payload["net"])
    opt.load_state_dict(payload["optimizer"])
    order.set_state(payload["order_rng"])
    noise.set_state(payload["noise_rng"])
    st = payload["stopper"]
    stopper.best, stopper.best_epoch, stopper.bad = st["best"], st["best_epoch"], st["bad"]
    stopper.state = None if st["state"] is None else {k: v.to(dev) for k, v in st["state"].items()}
    result.history = list(payload["history"])
    result.stopped = payload["stopped"]
    log.info("%s: resumed from %s after epoch %d", label, path, payload["next_epoch"] - 1)
    return int(payload["next_epoch"])
