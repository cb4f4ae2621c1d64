"""The one PyTorch training loop behind every network here (classifiers, autoencoders, flows, GANs).

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
4. A game (a GAN, an adversary) passes :class:`Player` objects instead of one loss: each has its
   own parameters, loss, optimiser and steps per batch, and a ``monitor`` judges each epoch
   (a distance between generated and true events), since a game's losses do not fall.

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
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError

log = logging.getLogger(__name__)

#: Events per forward pass when scoring or validating (no gradients, so memory is no concern).
EVAL_BATCH = 65536

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


@dataclass
class Player:
    """One optimiser of the loop: the only one for most networks, one side of a GAN's game.

    Parameters
    ----------
    params : iterable of torch parameters
        What this player's Adam optimiser moves (a generator's, a critic's).
    loss : callable
        ``loss(batch, generator)``: per-event losses of the batch, or a 0-d tensor for a
        batch-level term (an MMD between batches), which is used as it is.
    steps : int, default 1
        Optimiser steps per batch, each with fresh noise (a WGAN critic takes 5).
    learning_rate : float, optional
        Adam's step size (default: the loop's ``learning_rate``).
    betas : tuple of float, default (0.9, 0.999)
        Adam's moment decays (GANs train better with (0.5, 0.9)).
    """

    params: Any
    loss: LossFn
    steps: int = 1
    learning_rate: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)


def _batch_loss(each: Any, w: Any, idx: Any) -> Any:
    if each.ndim == 0 or w is None:
        return each.mean()
    return (each * w[idx]).sum() / w[idx].sum()


def train_network(
    net: Any,
    loss: LossFn | Sequence[Player],
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
    monitor: Callable[[Any], float] | None = None,
) -> TrainingResult:
    """Train ``net`` to minimise ``loss`` with Adam and early stopping (see the module docstring).

    Parameters
    ----------
    net : torch.nn.Module
        The network, already initialised (under :func:`seeded`); moved to ``device``. In a game
        (a GAN) it holds every player's module, so early stopping and checkpoints keep them all.
    loss : callable or sequence of Player
        ``loss(batch, generator)``: per-event losses of a batch (a tuple holding the same rows
        of each array in ``train`` or ``valid``), minimised over all of ``net``'s parameters.
        Or the players of a game, each with its own parameters, loss and optimiser, taking
        their steps on every batch in the order given.
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
    monitor : callable, optional
        ``monitor(generator) -> float``, the figure of merit judged after each epoch instead of
        the mean validation loss (lower is better; called without gradients, in eval mode,
        with a generator seeded afresh each epoch). A game needs one: its losses are not a
        measure of quality (a GAN's judge is a distance between generated and true events).

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

    from anomalyhunt.scores.checkpoint import fingerprint, resume_state, save_state

    if threads is not None:
        torch.set_num_threads(int(threads))
    dev = torch.device(device)
    n = len(train[0])
    if n == 0 or len(valid[0]) == 0:
        raise AnomalyHuntError(f"{label}: no training or no validation events")
    players = [Player(net.parameters(), loss)] if callable(loss) else list(loss)
    if len(players) > 1 and monitor is None:
        raise ValueError(f"{label}: a game of {len(players)} players needs a monitor")
    settings = {
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "patience": int(patience),
        "learning_rate": float(learning_rate),
        "min_delta": float(min_delta),
        "seed": int(seed),
        "label": label,
        "device": str(device),
        "players": [[p.steps, p.learning_rate, list(p.betas)] for p in players[1:]],
    }
    key = None
    if checkpoint is not None:
        extra = [w for w in (weight, valid_weight) if w is not None]
        key = fingerprint(net, [*train, *valid, *extra], settings)
    net.to(dev)
    xs = tuple(_as_tensor(a, dev) for a in train)
    w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32, device=dev)
    w_val = None if valid_weight is None else np.asarray(valid_weight, dtype=np.float64)
    opts = [
        torch.optim.Adam(
            list(p.params),
            lr=float(learning_rate if p.learning_rate is None else p.learning_rate),
            betas=tuple(p.betas),
        )
        for p in players
    ]
    order = torch.Generator().manual_seed(int(seed))
    noise = torch.Generator(device=dev).manual_seed(derive_seed(seed, "noise"))
    stopper = EarlyStopping(patience, min_delta)
    result = TrainingResult(best_epoch=-1, best_loss=math.inf)
    start = 0
    if key is not None and Path(checkpoint).exists():
        start = resume_state(checkpoint, key, dev, net, opts, order, noise, stopper, result, label)
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
        totals = [0.0] * len(players)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            batch = tuple(x[idx] for x in xs)
            for i, (player, opt) in enumerate(zip(players, opts, strict=True)):
                for _ in range(int(player.steps)):
                    batch_loss = _batch_loss(player.loss(batch, noise), w, idx)
                    opt.zero_grad(set_to_none=True)
                    batch_loss.backward()
                    opt.step()
                totals[i] += float(batch_loss.detach()) * len(idx)
        net.eval()
        if monitor is None:
            per_event = batched(
                players[0].loss, valid, device=device, seed=derive_seed(seed, "val")
            )
            val = _weighted_mean(per_event, w_val)
        else:
            with torch.no_grad():
                val = float(
                    monitor(torch.Generator(device=dev).manual_seed(derive_seed(seed, "val")))
                )
        entry = {"epoch": epoch, "train_loss": totals[0] / n, "val_loss": val}
        if len(players) > 1:
            entry["player_losses"] = [t / n for t in totals]
        result.history.append(entry)
        bar.set_postfix(val_loss=f"{val:.4f}")
        if not np.isfinite(val):
            log.warning("%s: non-finite validation loss at epoch %d; stopping", label, epoch)
            result.stopped = "non-finite"
        elif stopper.step(epoch, val, net):
            result.stopped = "patience"
        if key is not None:
            save_state(checkpoint, key, epoch + 1, net, opts, order, noise, stopper, result)
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
