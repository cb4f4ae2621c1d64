"""The event GAN of arXiv:1907.03764: MLPs on the 18 quark momenta, plus an MMD on the masses.

A GAN sees the six quarks' momenta but not that three of them must combine to 173 GeV within
1.5 GeV: the mass is a difference of large numbers, so a small error on each momentum smears the
peak far beyond its width. The paper's remedy is a second term in the generator's loss, the
maximum mean discrepancy (MMD) between the generated and the true distribution of the W and top
masses of a batch, with kernels whose widths are of the order of the particle widths, so that the
term resolves the Breit-Wigner peak itself.

Choices made here for a few CPU minutes instead of the paper's long GPU training: the networks
see the 18 numbers as (log pT, eta, phi) per quark (:func:`to_features`), the BCE critic carries
an R1 gradient penalty, the kernels are summed over widths of 0.5, 1 and 4 particle widths by
default (the wide ones pull a far-off peak in) and the MMD takes part of each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.gan import gan_players, gaussian_noise, mlp, mmd2
from anomalyhunt.gan_events.toy import GAMMA_TOP, GAMMA_W, QUARK_MASSES
from anomalyhunt.scores.training import (
    Player,
    TrainingResult,
    seeded,
    set_standardisation,
    train_network,
)

#: The four masses the MMD compares, in the order of :func:`masses`, and their widths (GeV).
MASSES = ("m_W+", "m_W-", "m_t", "m_tbar")
MASS_WIDTHS = (GAMMA_W, GAMMA_W, GAMMA_TOP, GAMMA_TOP)


def masses(momenta: Any) -> Any:
    """W+, W-, top and antitop masses (n, 4) of 18 quark momenta in GeV (torch, differentiable).

    Each quark is put on shell (b: 4.7 GeV, the others massless), as the paper does.
    """
    import torch

    p = momenta.reshape(-1, 6, 3)
    m2 = torch.tensor(QUARK_MASSES, dtype=p.dtype, device=p.device) ** 2
    energy = torch.sqrt((p**2).sum(-1) + m2)
    four = torch.cat([energy[..., None], p], dim=-1)
    w_plus, w_minus = four[:, 1] + four[:, 2], four[:, 4] + four[:, 5]
    top, antitop = w_plus + four[:, 0], w_minus + four[:, 3]
    systems = torch.stack([w_plus, w_minus, top, antitop], dim=1)
    mass2 = systems[..., 0] ** 2 - (systems[..., 1:] ** 2).sum(-1)
    return torch.sqrt(torch.clamp(mass2, min=1e-6))


#: Generated pT and |eta| are capped here (a few TeV, eta 6): beyond the toy's reach, and an
#: early generator's wild outliers would otherwise spoil the masses' gradients.
MAX_LOG_PT, MAX_ETA = float(np.log(3000.0)), 6.0


def to_features(momenta: Any) -> Any:
    """The networks' coordinates of the 18 momenta: (log pT/GeV, eta, phi) per quark.

    The same 18 numbers as (px, py, pz), in the coordinates in which the masses depend on
    differences only: a boost along the beam shifts every eta, a rotation every phi, and
    neither changes a mass, so the GAN can learn the pair's motion without spoiling the peaks.
    """
    import torch

    p = torch.as_tensor(momenta).reshape(-1, 6, 3)
    pt = torch.hypot(p[..., 0], p[..., 1]).clamp(min=1e-3)
    eta = torch.asinh(p[..., 2] / pt)
    phi = torch.atan2(p[..., 1], p[..., 0])
    return torch.stack([torch.log(pt), eta, phi], dim=-1).reshape(-1, 18)


def from_features(features: Any) -> Any:
    """(px, py, pz) per quark in GeV from :func:`to_features`' coordinates."""
    import torch

    f = features.reshape(-1, 6, 3)
    pt = torch.exp(f[..., 0].clamp(max=MAX_LOG_PT))
    eta = f[..., 1].clamp(-MAX_ETA, MAX_ETA)
    p = torch.stack(
        [pt * torch.cos(f[..., 2]), pt * torch.sin(f[..., 2]), pt * torch.sinh(eta)], -1
    )
    return p.reshape(-1, 18)


def build(latent: int, hidden: Sequence[int], seed: int) -> Any:
    """Generator and critic in one module (so early stopping keeps both), seeded weights.

    Parameters
    ----------
    latent : int
        Dimension of the Gaussian noise the generator maps to an event.
    hidden : sequence of int
        Hidden widths of both MLPs.
    seed : int
        Seeds the initial weights.
    """
    import torch
    from torch import nn

    class Gan(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.latent = int(latent)
            self.gen = mlp(latent, hidden, 18, activation="leaky_relu")
            self.critic = mlp(18, hidden, 1, activation="leaky_relu")
            self.register_buffer("mean", torch.zeros(18))
            self.register_buffer("scale", torch.ones(18))

        def sample(self, n: int, generator: Any) -> Any:
            """``n`` generated events, standardised (the critic's input layout).

            The azimuths are wrapped into [-pi, pi), so the critic judges angles, not numbers.
            """
            x = self.gen(gaussian_noise(n, self.latent, generator))
            f = (x * self.scale + self.mean).reshape(-1, 6, 3)
            phi = torch.atan2(torch.sin(f[..., 2]), torch.cos(f[..., 2]))
            f = torch.stack([f[..., 0], f[..., 1], phi], dim=-1).reshape(-1, 18)
            return (f - self.mean) / self.scale

        def to_momenta(self, x: Any) -> Any:
            """Standardised events back to the 18 momenta (px, py, pz per quark) in GeV."""
            return from_features(x * self.scale + self.mean)

        def standardise(self, momenta: Any) -> Any:
            """Momenta in GeV to the networks' (standardised) layout."""
            return (to_features(momenta) - self.mean) / self.scale

    with seeded(seed):
        return Gan()


@dataclass
class GanSettings:
    """How one GAN is trained (every value comes from the ``gan_events`` config block).

    Parameters
    ----------
    epochs, batch_size, learning_rate, patience : training-loop settings
    kind : {"bce", "wgan_gp"}
        The game (:func:`anomalyhunt.gan.gan_players`).
    critic_steps : int
        Critic updates per generator update.
    critic_penalty : float
        Weight gamma of the R1 penalty gamma/2 |grad D(real)|^2 on the critic (Mescheder et
        al., arXiv:1801.04406; the paper regularises its discriminator in this spirit); 0: none.
    mmd_weight : float
        Weight of the MMD term in the generator's loss; 0 trains the plain GAN.
    mmd_kernel : {"gaussian", "breit_wigner"}
        The MMD's kernel.
    mmd_widths : sequence of float
        Kernel widths in units of each particle's width (one kernel per entry, summed).
    mmd_events : int
        Events of each batch (generated and true alike) that enter the MMD, whose cost grows
        with their square.
    monitor_events : int
        Generated events per epoch for the early-stopping monitor.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    kind: str
    critic_steps: int
    critic_penalty: float
    mmd_weight: float
    mmd_kernel: str
    mmd_widths: Sequence[float]
    mmd_events: int
    monitor_events: int


def mmd_term(fake_masses: Any, real_masses: Any, kernel: str, widths: Sequence[float]) -> Any:
    """Sum over the four masses of MMD^2(generated, true), kernel widths in particle widths."""
    total = 0.0
    for k, gamma in enumerate(MASS_WIDTHS):
        total = total + mmd2(
            fake_masses[:, k], real_masses[:, k], [w * gamma for w in widths], kernel
        )
    return total


def r1_penalty(critic: Any, real: Any) -> Any:
    """Per-event |grad critic|^2 at the true events: keeps a BCE critic from oscillating."""
    import torch

    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (grad**2).sum(dim=1)


def with_r1(player: Player, critic: Any, real: Any, weight: float) -> Player:
    """The critic's player with ``weight``/2 times :func:`r1_penalty` added to its loss."""

    def loss(batch: tuple[Any, ...], generator: Any) -> Any:
        return player.loss(batch, generator) + 0.5 * weight * r1_penalty(critic, real(batch))

    return replace(player, loss=loss)


def distance(gen_momenta: np.ndarray, true_momenta: np.ndarray) -> float:
    """How far generated events are from true ones, in natural units (the early-stopping judge).

    The mean 1-D Wasserstein distance of the 18 momenta, each in units of its true spread, plus
    that of the four masses in units of the particle's width: the kinematics and the mass peaks
    weigh alike, so each GAN's best epoch is the one that best balances the two.
    """
    import torch
    from scipy.stats import wasserstein_distance

    gen_m = masses(torch.as_tensor(gen_momenta, dtype=torch.float64)).numpy()
    true_m = masses(torch.as_tensor(true_momenta, dtype=torch.float64)).numpy()
    spread = true_momenta.std(axis=0)
    kin = [
        wasserstein_distance(gen_momenta[:, i], true_momenta[:, i]) / spread[i] for i in range(18)
    ]
    peaks = [wasserstein_distance(gen_m[:, k], true_m[:, k]) / MASS_WIDTHS[k] for k in range(4)]
    return float(np.mean(kin) + np.mean(peaks))


def train_gan(
    net: Any,
    train: np.ndarray,
    valid: np.ndarray,
    settings: GanSettings,
    *,
    seed: int,
    device: str,
    label: str,
    checkpoint: str | Path | None = None,
) -> TrainingResult:
    """Train ``net`` (from :func:`build`) on true momenta with the one training loop.

    Parameters
    ----------
    net : torch.nn.Module
        From :func:`build`; its standardisation is set from ``train`` here.
    train, valid : ndarray, shape (n, 18)
        True momenta in GeV; ``valid`` is what the monitor compares generated events with.
    settings : GanSettings
        The game and the training loop's settings.
    seed : int
        Seeds batch order and noise.
    device : str
        Where to train.
    label : str
        Names the run in logs and the progress bar.
    checkpoint : path, optional
        The loop's resumable state.
    """
    import torch

    with torch.no_grad():
        set_standardisation(net, to_features(torch.as_tensor(train, dtype=torch.float64)).numpy())
        train_std = net.standardise(torch.as_tensor(train, dtype=torch.float32)).numpy()
    net.to(device)

    def fake(batch: tuple[Any, ...], generator: Any) -> Any:
        return net.sample(len(batch[0]), generator)

    def real(batch: tuple[Any, ...]) -> Any:
        return batch[0]

    extra = None
    if settings.mmd_weight > 0:

        def extra(batch: tuple[Any, ...], fake_events: Any, generator: Any) -> Any:
            k = settings.mmd_events
            fake_m = masses(net.to_momenta(fake_events[:k]))
            real_m = masses(net.to_momenta(batch[0][:k]))
            term = mmd_term(fake_m, real_m, settings.mmd_kernel, settings.mmd_widths)
            return settings.mmd_weight * term

    critic_player, generator_player = gan_players(
        net.gen.parameters(),
        net.critic,
        fake,
        real,
        kind=settings.kind,
        critic_steps=settings.critic_steps,
        extra=extra,
    )
    if settings.critic_penalty > 0:
        critic_player = with_r1(critic_player, net.critic, real, settings.critic_penalty)
    players = [critic_player, generator_player]
    reference = valid[: settings.monitor_events]

    def monitor(generator: Any) -> float:
        x = net.to_momenta(net.sample(len(reference), generator))
        return distance(x.double().cpu().numpy(), reference)

    return train_network(
        net,
        players,
        (train_std,),
        (torch.zeros((1, 1)),),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        patience=settings.patience,
        seed=seed,
        device=device,
        label=label,
        checkpoint=checkpoint,
        monitor=monitor,
    )


def generate(net: Any, n: int, seed: int, device: str) -> np.ndarray:
    """``n`` events (18 momenta in GeV, float64) from a trained GAN, seeded."""
    import torch

    gen = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
    out = []
    with torch.no_grad():
        for s in range(0, n, 65536):
            x = net.to_momenta(net.sample(min(65536, n - s), gen))
            out.append(x.double().cpu().numpy())
    return np.concatenate(out)
