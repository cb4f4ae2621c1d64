"""Training the BIB-AE (a game with its latent critic) and then its post-processor.

Both go through the project's one loop, :func:`anomalyhunt.scores.training.train_network`.
Neither has a loss that measures quality (the BIB-AE plays a game; the post-processor's loss is a
distance between random draws), so each is judged after every epoch by a monitor that generates
showers for the validation set and measures them against the toy with the paper's observables;
early stopping keeps the best epoch.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from anomalyhunt.scores.training import TrainingResult, seeded, set_standardisation, train_network
from anomalyhunt.showers import metrics
from anomalyhunt.showers.model import (
    BibAE,
    PostProcessor,
    a_to_mev,
    a_to_u,
    bibae_players,
    postprocessor_loss,
    reconstruct,
    to_a,
    to_mev,
    to_u,
)
from anomalyhunt.showers.toy import Calorimeter

#: Validation showers the monitors generate each epoch (more costs time, not accuracy).
MONITOR_SHOWERS = 500


def _condition(energy_gev: np.ndarray, energy_max: float) -> np.ndarray:
    return (np.asarray(energy_gev, dtype=np.float32) / np.float32(energy_max))[:, None]


def _shape_observables(cells: np.ndarray, calo: Calorimeter, energy_gev: np.ndarray) -> dict:
    obs = metrics.observables(cells, calo)
    obs["visible_per_gev"] = obs["visible_mev"] / energy_gev
    return obs


def train_bibae(
    calo: Calorimeter,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    *,
    energy_max: float,
    latent: int,
    hidden: list[int],
    critic_hidden: list[int],
    kl_weight: float,
    mmd_weight: float,
    critic_weight: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    init_seed: int,
    seed: int,
    device: str,
    checkpoint: str | os.PathLike | None = None,
) -> tuple[BibAE, TrainingResult]:
    """Train the BIB-AE on toy showers; return it (best epoch) and the loop's record.

    Parameters
    ----------
    calo : Calorimeter
        The grid the showers live on.
    train, valid : (cells, energies)
        Showers in MeV, shape (n, layers, x, y), and their incident energies (GeV).
    energy_max : float
        Scales the incident energy to the condition ``E / energy_max``.
    latent, hidden, critic_hidden
        Network sizes (see :class:`~anomalyhunt.showers.model.BibAE`).
    kl_weight, mmd_weight, critic_weight
        Weights of the latent regularisers (see :func:`~anomalyhunt.showers.model.bibae_players`).
    epochs, batch_size, learning_rate, patience
        The loop's settings; the monitor (a sum of Wasserstein distances of visible energy per
        GeV, centre of gravity and radial width over their spreads) picks the best epoch.
    init_seed, seed : int
        Seeds of the initial weights and of the loop (batch order, noise).
    device : str
        Where to train.
    checkpoint : path, optional
        The loop's resumable state.
    """
    (x, e_gev), (xv, ev_gev) = train, valid
    a, e = to_a(x), _condition(e_gev, energy_max)
    av, ev = to_a(xv), _condition(ev_gev, energy_max)
    with seeded(init_seed):
        net = BibAE(calo.n_cells, latent, hidden, critic_hidden)
    set_standardisation(net, a / np.sqrt(e))
    net.response.fill_(float(np.mean((a.astype(np.float64) ** 2).sum(axis=1) / e[:, 0])))
    k = min(MONITOR_SHOWERS, len(xv))
    truth = _shape_observables(xv[:k], calo, ev_gev[:k])
    cond = torch.as_tensor(ev[:k], device=device)

    def monitor(generator: Any) -> float:
        fake = a_to_mev(net.sample(cond, generator).cpu().numpy(), calo)
        return metrics.shape_distance(truth, _shape_observables(fake, calo, ev_gev[:k]))

    players = bibae_players(
        net,
        kl_weight=kl_weight,
        mmd_weight=mmd_weight,
        critic_weight=critic_weight,
        learning_rate=learning_rate,
    )
    result = train_network(
        net,
        players,
        (a, e),
        (av, ev),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label="showers BIB-AE",
        checkpoint=checkpoint,
        monitor=monitor,
    )
    return net, result


def train_postprocessor(
    net: BibAE,
    calo: Calorimeter,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    *,
    energy_max: float,
    seed: int,
    device: str,
    **settings: Any,
) -> tuple[PostProcessor, TrainingResult]:
    """Train the post-processor on the frozen BIB-AE's reconstructions of toy showers.

    ``train`` must be showers the BIB-AE did not train on: its reconstructions of those it
    learned are closer to them than a generated shower is to anything, and a post-processor
    learned on them would add too little. ``valid`` (cells, energies) judges each epoch;
    ``settings`` go to :func:`fit_postprocessor`.
    """
    (x, e_gev), (xv, ev_gev) = train, valid
    e, ev = _condition(e_gev, energy_max), _condition(ev_gev, energy_max)
    m = a_to_u(reconstruct(net, to_a(x), e, seed=seed, device=device))
    mv = a_to_u(reconstruct(net, to_a(xv), ev, seed=seed + 1, device=device))
    return fit_postprocessor(calo, (m, x, e), (mv, xv, ev), seed=seed, device=device, **settings)


def fit_postprocessor(
    calo: Calorimeter,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    hidden: list[int],
    cells: int,
    mmd_weight: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    init_seed: int,
    seed: int,
    device: str,
    checkpoint: str | os.PathLike | None = None,
) -> tuple[PostProcessor, TrainingResult]:
    """Train a post-processor to draw true cells around given smooth ones.

    Parameters
    ----------
    calo : Calorimeter
        The grid (for the readout threshold).
    train, valid : (m, cells, e)
        Smooth showers ``m`` in ``u = ln(1 + E / MIP)``, shape (n, n_cells), the true showers
        in MeV (n, layers, x, y) and the conditions ``E / energy_max`` (n, 1).
    hidden, cells, mmd_weight
        The per-cell MLP's widths and the loss's settings
        (:func:`~anomalyhunt.showers.model.postprocessor_loss`).
    epochs, batch_size, learning_rate, patience
        The loop's settings; the monitor is the Wasserstein distance of the validation showers'
        log10 hit energies plus that of their hit count over its spread.
    init_seed, seed : int
        Seeds of the initial weights and of the loop.
    device : str
        Where to train.
    checkpoint : path, optional
        The loop's resumable state.
    """
    (m, x, e), (mv, xv, ev) = train, valid
    with seeded(init_seed):
        pp = PostProcessor(hidden)
    k = min(MONITOR_SHOWERS, len(xv))
    true_hits = metrics.hit_energies(xv[:k])
    true_n = (xv[:k] > 0).sum(axis=(1, 2, 3))
    m_k = torch.as_tensor(mv[:k], device=device)
    e_k = torch.as_tensor(ev[:k], device=device)

    def monitor(generator: Any) -> float:
        out = to_mev(pp(m_k, e_k, generator).cpu().numpy(), calo)
        return metrics.spectrum_distance(true_hits, true_n, out)

    result = train_network(
        pp,
        postprocessor_loss(pp, cells=cells, mmd_weight=mmd_weight),
        (m, to_u(x), e),
        (mv, to_u(xv), ev),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label="showers post-processor",
        checkpoint=checkpoint,
        monitor=monitor,
    )
    return pp, result
