"""One GANplifying experiment: a toy, its N-event training samples, a GAN, a fit and the sample.

For each toy a pool of true events is drawn once. Training samples of N events are disjoint
slices of it (one per replica); the whole pool, cut into chunks, measures the 1/n law. Each
replica's GAN is trained on its N events and sampled in disjoint chunks of every generated-sample
size; the chunks' mean quantile MSE, turned into an equivalent number of true events, gives the
amplification factor against the number of generated events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomalyhunt.ganplify import metrics as m
from anomalyhunt.ganplify import model
from anomalyhunt.ganplify.fit import fit_cell_probabilities
from anomalyhunt.ganplify.toy import Toy

log = logging.getLogger("anomalyhunt.ganplify")

#: Most disjoint chunks whose MSE is averaged per generated-sample size.
MAX_CHUNKS = 50


@dataclass
class Replica:
    """One training sample of N events and what was learnt from it."""

    sample_mse: float
    fit_mse: float
    fit_parameters: dict[str, Any]
    gan_mse: dict[int, float]
    best_epoch: int
    epochs: int
    stopped: str
    seconds: float


def gan_mse_curve(cells: np.ndarray, n_cells: int, sizes: Sequence[int]) -> dict[int, float]:
    """Mean quantile MSE of disjoint chunks of generated events, per chunk size."""
    curve = m.sample_mse_curve(cells, n_cells, list(sizes), max_samples=MAX_CHUNKS)
    return {n: mse for n, (mse, _) in curve.items()}


def run_replica(
    toy: Toy,
    x: np.ndarray,
    *,
    n_generated: Sequence[int],
    gan: dict[str, Any],
    seed: Callable[..., int],
    device: str,
    label: str,
    checkpoint: Any = None,
) -> tuple[Replica, np.ndarray]:
    """Fit and GAN for one training sample ``x``; also returns some GAN events for figures.

    Parameters
    ----------
    toy : Camel or Shell
        The toy (its cells).
    x : array of shape (N, dim)
        The training events.
    n_generated : sequence of int
        Generated-sample sizes at which the GAN's MSE is measured.
    gan : dict
        Keyword arguments of :func:`model.build_gan` (latent_dim, hidden) and
        :func:`model.train_gan` (kind, critic_steps, epochs, ...).
    seed : callable
        ``seed(*labels)``, the branch's seed of one random step of this replica.
    device, label, checkpoint
        Passed to the training loop.
    """
    k = toy.n_cells
    sample_mse = m.quantile_mse(m.cell_fractions(toy.cells(x), k))
    fit_probs, fit_par = fit_cell_probabilities(toy, x)
    train = {key: v for key, v in gan.items() if key not in ("latent_dim", "hidden")}
    latent = max(int(gan["latent_dim"]), toy.dim)
    net = model.build_gan(x, latent_dim=latent, hidden=gan["hidden"], seed=seed("init"))
    result = model.train_gan(
        net, x, seed=seed("train"), device=device, label=label, checkpoint=checkpoint, **train
    )
    events = model.sample(net, max(n_generated), seed("sample"), device=device)
    curve = gan_mse_curve(toy.cells(events), k, n_generated)
    replica = Replica(
        sample_mse=sample_mse,
        fit_mse=m.quantile_mse(fit_probs),
        fit_parameters=fit_par,
        gan_mse=curve,
        best_epoch=result.best_epoch,
        epochs=len(result.history),
        stopped=result.stopped,
        seconds=round(result.seconds, 2),
    )
    log.info(
        "%s: sample MSE %.3g, fit %.3g, GAN(%d) %.3g after %d epochs (best %d) in %.0f s",
        label,
        sample_mse,
        replica.fit_mse,
        max(curve),
        curve[max(curve)],
        replica.epochs,
        replica.best_epoch,
        result.seconds,
    )
    return replica, events[:20000]


def summarise(toy: Toy, n: int, replicas: list[Replica]) -> dict[str, Any]:
    """The numbers of one toy and N, averaged over the replicas (MSEs first, then inverted)."""
    k = toy.n_cells
    sizes = sorted(replicas[0].gan_mse)
    gan_mse = {s: float(np.mean([r.gan_mse[s] for r in replicas])) for s in sizes}
    fit_mse = float(np.mean([r.fit_mse for r in replicas]))
    largest = sizes[-1]
    per_replica = [m.equivalent_events(r.gan_mse[largest], k) / n for r in replicas]
    return {
        "toy": toy.name,
        "dimension": toy.dim,
        "n_cells": k,
        "n_train": n,
        "replicas": len(replicas),
        "mse_expected_true_sample": m.expected_sample_mse(k, n),
        "mse_training_sample": float(np.mean([r.sample_mse for r in replicas])),
        "mse_fit": fit_mse,
        "mse_gan_by_n_generated": {str(s): gan_mse[s] for s in sizes},
        "amplification_by_n_generated": {
            str(s): m.equivalent_events(gan_mse[s], k) / n for s in sizes
        },
        "n_generated_largest": largest,
        "n_equivalent_gan": m.equivalent_events(gan_mse[largest], k),
        "amplification_gan": m.equivalent_events(gan_mse[largest], k) / n,
        "amplification_gan_replicas": per_replica,
        "n_equivalent_fit": m.equivalent_events(fit_mse, k),
        "amplification_fit": m.equivalent_events(fit_mse, k) / n,
        "fit_parameters": [r.fit_parameters for r in replicas],
        "training": [
            {
                "best_epoch": r.best_epoch,
                "epochs": r.epochs,
                "stopped": r.stopped,
                "seconds": r.seconds,
            }
            for r in replicas
        ],
    }
