"""The GAN that amplifies: a small generator and critic, trained with the project's one loop.

The networks see standardised coordinates (the training sample's mean and one common spread, kept
as buffers so a saved model carries them). A training sample of N events is repeated so that every
epoch holds about ``batches_per_epoch`` batches whatever N is: the number of optimiser steps, not
N, sets the training time.

What makes a GAN of 100 events behave:

* the generator's loss adds ``mmd_weight`` times the MMD^2 between its batch and the true batch
  (Gaussian kernels of 0.1, 0.3 and 1 standard deviations, as arXiv:1907.03764 adds one on the
  masses). Without it the game oscillated, on 100 camel events, at quantile MSEs above the
  training sample's own;
* the generator that is judged and sampled is an average of its weights over the epochs
  (decay ``average_decay`` per epoch; Yazici et al., arXiv:1806.04498), which irons out the
  game's last oscillations;
* early stopping judges the MMD^2 between 500 generated events and the N events, or a held-out
  fraction of them (``holdout``) that the GAN never trains on. The truth is never consulted, or
  the amplification would be borrowed from it; judged on its training events, though, a GAN that
  memorises them looks best (see the schema's ``ganplify.holdout``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from anomalyhunt.gan import gan_players, gaussian_noise, mlp, mmd2
from anomalyhunt.scores.training import TrainingResult, seeded, train_network

#: Kernel widths of the generator's MMD term, in units of the standardised coordinates.
MMD_WIDTHS = (0.1, 0.3, 1.0)
#: Kernel widths of the monitor's MMD (a few held-out events resolve no finer structure).
MONITOR_WIDTHS = (0.3, 1.0)
#: Generated (and at most as many training) events per monitor evaluation.
MONITOR_EVENTS = 500
#: Events per forward pass when sampling.
SAMPLE_CHUNK = 1 << 17


def _module(dim: int, latent_dim: int, hidden: Sequence[int]) -> Any:
    import torch
    from torch import nn

    class GanModel(nn.Module):
        """Generator and critic in one module, so the loop keeps and restores both."""

        def __init__(self) -> None:
            super().__init__()
            self.latent_dim = int(latent_dim)
            self.gen = mlp(latent_dim, hidden, dim, activation="leaky_relu")
            self.gen_average = copy.deepcopy(self.gen).requires_grad_(False)
            self.critic = mlp(dim, hidden, 1, activation="leaky_relu")
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("scale", torch.ones(dim))
            self.register_buffer("averaged", torch.zeros((), dtype=torch.long))

        def generate(self, n: int, generator: Any) -> Any:
            """``n`` generated events in standardised coordinates."""
            return self.gen(gaussian_noise(n, self.latent_dim, generator))

        def generate_average(self, n: int, generator: Any) -> Any:
            """``n`` events of the weight-averaged generator, standardised."""
            return self.gen_average(gaussian_noise(n, self.latent_dim, generator))

        def update_average(self, decay: float) -> None:
            """Move the averaged generator's weights towards the current ones."""
            first = int(self.averaged) == 0
            with torch.no_grad():
                for avg, now in zip(
                    self.gen_average.parameters(), self.gen.parameters(), strict=True
                ):
                    avg.copy_(now if first else decay * avg + (1 - decay) * now)
            self.averaged += 1

    return GanModel()


def build_gan(x: np.ndarray, *, latent_dim: int, hidden: Sequence[int], seed: int) -> Any:
    """A fresh GAN for events like ``x`` (shape (n, dim)), weights fixed by ``seed``.

    Parameters
    ----------
    x : array of shape (n, dim)
        The training events (set the standardisation).
    latent_dim : int
        Dimension of the generator's Gaussian noise.
    hidden : sequence of int
        Hidden layer widths of generator and critic.
    seed : int
        Seeds the initial weights.
    """
    import torch

    with seeded(seed):
        net = _module(x.shape[1], latent_dim, hidden)
    mean = x.mean(axis=0)
    scale = np.full(x.shape[1], max(float(x.std(axis=0).mean()), 1e-6))  # one scale: keep shapes
    net.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
    net.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
    return net


def sample(net: Any, n: int, seed: int, device: str = "cpu") -> np.ndarray:
    """``n`` generated events in physical coordinates, reproducible from ``seed``."""
    import torch

    gen = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
    out = []
    net.eval()
    with torch.no_grad():
        for s in range(0, int(n), SAMPLE_CHUNK):
            z = net.generate_average(min(SAMPLE_CHUNK, int(n) - s), gen)
            out.append((z * net.scale + net.mean).double().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, len(net.mean)))


def _mmd_term(weight: float) -> Callable[..., Any]:
    def term(batch: tuple[Any, ...], fake: Any, generator: Any) -> Any:
        return weight * mmd2(fake, batch[0], MMD_WIDTHS)

    return term


def train_gan(
    net: Any,
    x: np.ndarray,
    *,
    epochs: int,
    batches_per_epoch: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    average_decay: float,
    mmd_weight: float,
    holdout: float,
    seed: int,
    device: str = "cpu",
    label: str = "ganplify",
    checkpoint: Any = None,
    watch: Callable[[Any], None] | None = None,
) -> TrainingResult:
    """Train ``net`` (from :func:`build_gan`) on the events ``x`` with the one training loop.

    Parameters
    ----------
    net : torch.nn.Module
        The GAN.
    x : array of shape (n, dim)
        The N training events.
    epochs, batches_per_epoch, batch_size, learning_rate, patience : int, float
        Training length, the repeated sample's batches per epoch, Adam's step, early stopping.
    average_decay : float
        Per-epoch decay of the generator's weight average (0: the current weights).
    mmd_weight : float
        Weight of the MMD^2 term of the generator's loss (0: a plain GAN).
    holdout : float
        Fraction of ``x`` (its last events) that only judges the epochs (0: judge on ``x``).
    seed : int
        Seeds batch order and noise.
    device, label, checkpoint
        As in :func:`anomalyhunt.scores.training.train_network`.
    watch : callable, optional
        ``watch(net)`` after each epoch's monitor (diagnostics only; it must not draw noise
        from the loop's generators).
    """
    import torch

    mean = net.mean.cpu().numpy()
    scale = net.scale.cpu().numpy()
    xs = ((x - mean) / scale).astype(np.float32)
    n_judge = int(round(float(holdout) * len(xs)))
    fit, judge = (xs[: len(xs) - n_judge], xs[len(xs) - n_judge :]) if n_judge else (xs, xs)
    reps = max(1, round(int(batches_per_epoch) * int(batch_size) / len(fit)))
    train = np.tile(fit, (reps, 1))
    real = torch.as_tensor(judge[:MONITOR_EVENTS], device=torch.device(device))

    def fake(batch: tuple[Any, ...], generator: Any) -> Any:
        return net.generate(len(batch[0]), generator)

    players = gan_players(
        net.gen.parameters(),
        net.critic,
        fake,
        lambda batch: batch[0],
        kind="bce",
        extra=None if mmd_weight <= 0 else _mmd_term(mmd_weight),
    )

    def monitor(generator: Any) -> float:
        net.update_average(average_decay)
        fake_avg = net.generate_average(MONITOR_EVENTS, generator)
        value = float(mmd2(fake_avg, real, MONITOR_WIDTHS))
        if watch is not None:
            watch(net)
        return value

    return train_network(
        net,
        players,
        (train,),
        (judge,),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label=label,
        checkpoint=checkpoint,
        monitor=monitor,
    )
