"""The fully conditional GAN (Bellagente et al., arXiv:1912.00477).

The generator maps (noise, detector event) to a parton event (as a residual, :mod:`.model`); the
critic sees the (parton, detector) pair concatenated, so it judges the conditional distribution,
not just the parton one; an MMD on m_ll and m_jj with Breit-Wigner kernels of the Z and W widths
is added to the generator's loss, since the critic alone does not resolve the narrow peaks.
Trained as two players of the one training loop, judged each epoch by a monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.gan import gan_players, gaussian_noise, mlp, mmd2
from anomalyhunt.scores.training import TrainingResult, seeded, train_network
from anomalyhunt.unfolding.model import N_OUT, Scaling, TrainSettings, unmix
from anomalyhunt.unfolding.toy import GAMMA_W, GAMMA_Z

#: MMD kernel widths, in units of the resonance width (one Breit-Wigner kernel each, summed).
MMD_WIDTHS = (1.0, 4.0)


def _pair_masses(base: Any, r: Any, res_scale: Any) -> Any:
    """m_ll and m_jj (n, 2) in GeV of the truth given by base + residual (torch, differentiable)."""
    import torch

    x = (base + unmix(r * res_scale)).reshape(-1, 4, 3)
    pt, eta, phi = torch.exp(x[..., 0]), x[..., 1], x[..., 2]

    def mass(a: int, b: int) -> Any:
        m2 = (
            2
            * pt[:, a]
            * pt[:, b]
            * (torch.cosh(eta[:, a] - eta[:, b]) - torch.cos(phi[:, a] - phi[:, b]))
        )
        return torch.sqrt(torch.clamp(m2, min=1e-6))

    return torch.stack([mass(0, 1), mass(2, 3)], dim=1)


def build_fcgan(scaling: Scaling, *, noise_dim: int, hidden: Sequence[int], seed: int) -> Any:
    """Generator and conditional critic in one module (early stopping keeps both).

    Parameters
    ----------
    scaling : Scaling
        Stored as buffers, so the module maps standardised numbers to GeV by itself.
    noise_dim : int
        Dimension of the generator's Gaussian noise.
    hidden : sequence of int
        Hidden widths of both MLPs.
    seed : int
        Seeds the initial weights.
    """
    import torch
    from torch import nn

    n_cond = len(scaling.cond_mean)

    class FCGAN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.noise_dim = int(noise_dim)
            self.generator = mlp(n_cond + noise_dim, hidden, N_OUT, activation="leaky_relu")
            self.critic = mlp(N_OUT + n_cond, hidden, 1, activation="leaky_relu")
            self.register_buffer("res_scale", torch.as_tensor(scaling.res_scale).float())

        def residual(self, c: Any, generator: Any) -> Any:
            """One standardised residual per condition row."""
            z = gaussian_noise(len(c), self.noise_dim, generator)
            return self.generator(torch.cat([c, z], dim=1))

    with seeded(seed):
        return FCGAN()


def train_fcgan(
    net: Any,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: TrainSettings,
    *,
    critic_steps: int,
    mmd_weight: float,
    monitor: Callable[[Callable[[Any], np.ndarray]], float],
    seed: int,
    device: str,
    checkpoint: str | Path | None = None,
) -> TrainingResult:
    """Train the FCGAN (from :func:`build_fcgan`) on (condition, residual) pairs.

    Parameters
    ----------
    net : torch.nn.Module
        From :func:`build_fcgan`.
    train, valid : (condition, residual, base) float32 arrays
        From :class:`Scaling`; ``valid`` is only passed on (the monitor judges the epochs).
    settings : TrainSettings
        The loop's settings.
    critic_steps : int
        Critic updates per generator update.
    mmd_weight : float
        Weight of the MMD on m_ll and m_jj in the generator's loss (0: none).
    monitor : callable
        ``monitor(draw) -> float`` where ``draw(generator)`` returns residuals for the
        monitor's events; lower is better (a distance to the truth).
    seed, device, checkpoint
        As for ``train_network``.
    """
    import torch

    net.to(device)

    def fake(batch: tuple[Any, ...], generator: Any) -> Any:
        return torch.cat([net.residual(batch[0], generator), batch[0]], dim=1)

    def real(batch: tuple[Any, ...]) -> Any:
        return torch.cat([batch[1], batch[0]], dim=1)

    def extra(batch: tuple[Any, ...], fake_events: Any, generator: Any) -> Any:
        m_fake = _pair_masses(batch[2], fake_events[:, :N_OUT], net.res_scale)
        m_real = _pair_masses(batch[2], batch[1], net.res_scale)
        term = 0.0
        for k, gamma in enumerate((GAMMA_Z, GAMMA_W)):
            widths = [w * gamma for w in MMD_WIDTHS]
            term = term + mmd2(m_fake[:, k], m_real[:, k], widths, kernel="breit_wigner")
        return mmd_weight * term

    players = gan_players(
        net.generator.parameters(),
        net.critic,
        fake,
        real,
        kind="bce",
        critic_steps=critic_steps,
        extra=extra if mmd_weight > 0 else None,
    )

    def judge(generator: Any) -> float:
        return monitor(lambda c: net.residual(c, generator).cpu().numpy())

    return train_network(
        net,
        players,
        train,
        valid,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        patience=settings.patience,
        seed=seed,
        device=device,
        label="fcgan",
        checkpoint=checkpoint,
        monitor=judge,
    )


def sample_fcgan(
    net: Any, condition: np.ndarray, n_samples: int, *, seed: int, device: str
) -> np.ndarray:
    """``n_samples`` residuals per condition row from the FCGAN, shape (n_samples, n, 12)."""
    import torch

    net.eval()
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    c = torch.as_tensor(condition, dtype=torch.float32, device=dev)
    with torch.no_grad():
        out = [net.residual(c, gen).double().cpu().numpy() for _ in range(n_samples)]
    return np.stack(out)
