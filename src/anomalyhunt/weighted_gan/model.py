"""The unweighting GAN (uwGAN): a GAN whose critic sees each true event with its weight.

A GAN's critic loss is an expectation over true events; for a weighted sample that expectation
is the weighted mean, -sum_i w_i log D(x_i) / sum_i w_i, while the generated events, which are
to come out unweighted, enter with weight one. The generator then learns the density the
weighted sample describes, f = w g, and can be sampled as often as one likes: every event it
makes is unweighted, none is thrown away (arXiv:2012.07873). With ``weighted=False`` the
same network ignores the weights and learns the proposal g: the baseline that shows the
weights are what carries the physics.

The critic's loss is written here as one batch-level (0-d) loss, not via the training loop's
``weight=`` argument, which would weight the generated events' term too.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from anomalyhunt.config import derive_seed
from anomalyhunt.gan import gaussian_noise, mlp
from anomalyhunt.scores.training import Player, TrainingResult, seeded, train_network
from anomalyhunt.weighted_gan.toy import GAMMA_Z, M_Z, WeightedSample

#: Adam's moment decays of both players (the usual GAN choice).
BETAS = (0.5, 0.9)


class UnweightingGan(nn.Module):
    """Generator and critic of events (mass [, cos theta*]) in standardised coordinates.

    The mass enters as u = asinh((m - M_Z) / Gamma_Z): linear across the resonance, logarithmic
    in its tails, so the Z peak and the falling continuum become one smooth bump (a fixed
    coordinate choice, like an event generator's Breit-Wigner mapping; the events and their
    weights are unchanged). The phase space's hard edges (the mass window, |cos theta*| = 1)
    are sent to infinity, logit of u's place in the window and atanh(cos theta*), so every
    generated event lies inside it. Both coordinates are then standardised with the weighted
    mean and spread of the training sample (buffers, so a saved model carries them).

    Parameters
    ----------
    dim : int
        1 (mass) or 2 (mass, cos theta*).
    mass_window : tuple of float
        The phase space's mass range (GeV).
    latent_dim : int
        Gaussian noise dimensions the generator maps from.
    hidden : sequence of int
        Hidden layer widths of generator and critic alike.
    seed : int
        Seeds the initial weights.
    """

    def __init__(
        self,
        dim: int,
        *,
        mass_window: tuple[float, float],
        latent_dim: int,
        hidden: Sequence[int],
        seed: int,
    ) -> None:
        super().__init__()
        self.dim, self.latent_dim = int(dim), int(latent_dim)
        with seeded(seed):
            self.generator = mlp(self.latent_dim, hidden, self.dim, activation="relu")
            self.critic = mlp(self.dim, hidden, 1, activation="leaky_relu")
        self.u_range = tuple(float(np.arcsinh((m - M_Z) / GAMMA_Z)) for m in mass_window)
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))

    def raw_features(self, x: np.ndarray) -> np.ndarray:
        """(mass, cos) -> (logit of asinh((m - M_Z) / Gamma_Z) in its range, atanh(cos))."""
        f = np.array(x, dtype=np.float64)
        lo, hi = self.u_range
        s = np.clip((np.arcsinh((f[:, 0] - M_Z) / GAMMA_Z) - lo) / (hi - lo), 1e-9, 1 - 1e-9)
        f[:, 0] = np.log(s / (1 - s))
        if self.dim == 2:
            f[:, 1] = np.arctanh(np.clip(f[:, 1], -1 + 1e-9, 1 - 1e-9))
        return f

    def standardise_with(self, sample: WeightedSample) -> None:
        """Set the standardisation from the weighted mean and spread of ``sample``."""
        f = self.raw_features(sample.x)
        w = sample.w / sample.w.sum()
        mean = (w[:, None] * f).sum(axis=0)
        scale = np.sqrt((w[:, None] * (f - mean) ** 2).sum(axis=0))
        scale[scale <= 0] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def features(self, x: np.ndarray) -> np.ndarray:
        """Events -> the networks' standardised coordinates (float32)."""
        mean, scale = self.mean.cpu().numpy(), self.scale.cpu().numpy()
        return ((self.raw_features(x) - mean) / scale).astype(np.float32)

    def events(self, y: Any) -> np.ndarray:
        """Standardised coordinates (tensor) -> events (mass [GeV], cos theta*), float64."""
        f = (y * self.scale + self.mean).detach().double().cpu().numpy()
        lo, hi = self.u_range
        f[:, 0] = M_Z + GAMMA_Z * np.sinh(lo + (hi - lo) / (1 + np.exp(-f[:, 0])))
        if self.dim == 2:
            f[:, 1] = np.tanh(f[:, 1])
        return f

    def sample_features(self, n: int, generator: Any) -> Any:
        """``n`` generated events in standardised coordinates (noise from ``generator``)."""
        return self.generator(gaussian_noise(n, self.latent_dim, generator))

    def generate(self, n: int, *, seed: int, device: str) -> np.ndarray:
        """``n`` unweighted events (mass [, cos theta*]) from the trained generator."""
        self.eval()
        gen = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
        out = []
        with torch.no_grad():
            for s in range(0, int(n), 65536):
                out.append(self.events(self.sample_features(min(65536, int(n) - s), gen)))
        return np.concatenate(out) if out else np.empty((0, self.dim))

    def generate_inside(
        self, n: int, *, seed: int, device: str, inside: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, float]:
        """``n`` events for which ``inside`` holds, and the fraction of generated ones it refused.

        Events outside the phase space (below the mass window's hard edge, |cos| > 1) are
        dropped, as an event generator's cuts drop them; at most 20 n are tried.
        """
        self.eval()
        gen = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
        kept, tried, have = [], 0, 0
        with torch.no_grad():
            while have < n and tried < 20 * n:
                x = self.events(self.sample_features(65536, gen))
                x = x[inside(x)]
                kept.append(x)
                tried, have = tried + 65536, have + len(x)
        events = np.concatenate(kept)[: int(n)]
        return events, 1.0 - have / max(tried, 1)


def players(
    net: UnweightingGan,
    *,
    weighted: bool,
    critic_steps: int,
) -> list[Player]:
    """Critic and generator of the (un)weighted GAN as the training loop's two players.

    Critic: sum_i w_i BCE(D(x_i), 1) / sum_i w_i + mean_j BCE(D(G(z_j)), 0), one 0-d loss per
    batch (w_i = 1 when ``weighted`` is False). Generator: the non-saturating -log D(G(z)).
    """

    def critic_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        x, w = batch
        with torch.no_grad():
            fake = net.sample_features(len(x), generator)
        d_real, d_fake = net.critic(x).squeeze(-1), net.critic(fake).squeeze(-1)
        real = bce(d_real, torch.ones_like(d_real), reduction="none")
        real_term = (w * real).sum() / w.sum().clamp_min(1e-30) if weighted else real.mean()
        return real_term + bce(d_fake, torch.zeros_like(d_fake))

    def generator_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        d_fake = net.critic(net.sample_features(len(batch[0]), generator)).squeeze(-1)
        return bce(d_fake, torch.ones_like(d_fake), reduction="none")

    return [
        Player(net.critic.parameters(), critic_loss, steps=int(critic_steps), betas=BETAS),
        Player(net.generator.parameters(), generator_loss, betas=BETAS),
    ]


def quantile_edges(values: np.ndarray, weights: np.ndarray, bins: int) -> np.ndarray:
    """Edges of ``bins`` bins of equal weighted content of ``values`` (open outer edges)."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    cum /= cum[-1]
    inner = np.interp(np.linspace(0, 1, bins + 1)[1:-1], cum, values[order])
    return np.concatenate([[-np.inf], np.unique(inner), [np.inf]])


def histogram_chi2(
    generated: np.ndarray, target: np.ndarray, target_w: np.ndarray, edges: Sequence[np.ndarray]
) -> float:
    """Chi2 per bin between the shapes of a generated and a weighted sample (both errors)."""
    h_gen, _ = np.histogramdd(generated, bins=list(edges))
    h_tgt, _ = np.histogramdd(target, bins=list(edges), weights=target_w)
    h_w2, _ = np.histogramdd(target, bins=list(edges), weights=target_w**2)
    n_gen, n_tgt = max(h_gen.sum(), 1.0), h_tgt.sum()
    var = h_gen / n_gen**2 + h_w2 / n_tgt**2
    ok = var > 0
    return float(np.sum((h_gen / n_gen - h_tgt / n_tgt)[ok] ** 2 / var[ok]) / max(ok.sum(), 1))


def train_unweighting_gan(
    net: UnweightingGan,
    train: WeightedSample,
    valid: WeightedSample,
    *,
    weighted: bool,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    fine_tune_epochs: int,
    fine_tune_batch_size: int,
    fine_tune_learning_rate: float,
    patience: int,
    critic_steps: int,
    monitor_events: int,
    monitor_bins: int,
    seed: int,
    device: str,
    label: str,
    checkpoint: str | os.PathLike | None,
) -> list[TrainingResult]:
    """Train ``net`` on the weighted ``train`` sample with the one training loop, in two stages.

    A GAN trained on weighted events hears a noisy critic: a batch's weight sits on the few
    events near the peak. A first stage (``epochs`` at ``learning_rate``) finds the shape; a
    second (``fine_tune_epochs`` with larger batches, ``fine_tune_batch_size``, at the smaller
    ``fine_tune_learning_rate``; none when 0) averages the noise down, a learning-rate decay
    the loop itself does not have. Each epoch is judged by the chi2 per bin between
    ``monitor_events`` generated events and the weighted validation sample (unit weights when
    not ``weighted``: each GAN is judged on what it learns) in bins of equal weighted content
    per coordinate; the best epoch of all is kept. Returns each stage's result.
    """
    net.standardise_with(train if weighted else WeightedSample(train.x, np.ones(len(train))))
    w_train = train.w if weighted else np.ones(len(train))
    w_valid = valid.w if weighted else np.ones(len(valid))
    f_train, f_valid = net.features(train.x), net.features(valid.x)
    per_dim = monitor_bins if net.dim == 1 else max(2, int(round(np.sqrt(monitor_bins))))
    edges = [quantile_edges(f_valid[:, k], w_valid, per_dim) for k in range(net.dim)]

    def monitor(generator: Any) -> float:
        gen = net.sample_features(int(monitor_events), generator).cpu().numpy()
        return histogram_chi2(gen, f_valid, w_valid, edges)

    stages = [(epochs, batch_size, learning_rate)]
    if fine_tune_epochs > 0:
        stages.append((fine_tune_epochs, fine_tune_batch_size, fine_tune_learning_rate))
    results: list[TrainingResult] = []
    best_state, best = None, np.inf
    for k, (n_epochs, n_batch, lr) in enumerate(stages):
        path = None
        if checkpoint is not None:
            path = Path(checkpoint).with_name(f"{Path(checkpoint).stem}_stage{k + 1}.ckpt")
        result = train_network(
            net,
            players(net, weighted=weighted, critic_steps=critic_steps),
            (f_train, w_train.astype(np.float32)),
            (f_valid, w_valid.astype(np.float32)),
            epochs=n_epochs,
            batch_size=n_batch,
            learning_rate=lr,
            patience=patience,
            seed=seed if k == 0 else derive_seed(seed, "fine_tune"),
            device=device,
            label=label if k == 0 else f"{label} (fine-tuning)",
            checkpoint=path,
            monitor=monitor,
        )
        results.append(result)
        if result.best_loss < best:
            best, best_state = result.best_loss, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    return results
