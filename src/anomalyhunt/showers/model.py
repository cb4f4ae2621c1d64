"""The BIB-AE and its post-processor (arXiv:2005.05334, sections 3-4), at CPU size.

**BIB-AE** (bounded-information-bottleneck autoencoder): an encoder ``q(z | shower, E)`` and a
decoder ``shower(z, E)``, MLPs here (the paper's are 3-D convolutions), conditioned on the
incident energy ``e = E / energy_max``. Showers enter as ``a = sqrt(E_cell / MIP)`` per cell, the
square root that makes the Poisson-like spread of a cell's track count about constant; the
encoder sees them over ``sqrt(e)``, shapes rather than the energy scale. The decoder gives the
shower's total ``sum E / MIP`` (the mean response times ``e`` times a learned factor) and its
shape (a softmax over cells) apart: our choice, as a decoder of free cells lets its visible
energy wander with the latent and triples the energy resolution. The loss: the reconstruction
error (a Gaussian log-likelihood with the cell spread :data:`A_VARIANCE`), the KL divergence to
the N(0, 1) prior (the bottleneck), an MMD between (latent, e) pairs of encoded showers and of
prior draws, and a latent critic, the game's second player, that tells them apart and that the
encoder learns to fool. MMD and critic pull the encoded latents onto the prior at every incident
energy, so that decoding prior draws gives showers like the encoded ones.

**Post-processor**: the decoder predicts about the mean of each cell, so its showers are smooth:
the MIP peak of the cell-energy spectrum is missing, and the sparse outer cells, whose mean is
below the readout threshold, are all empty. The post-processor redraws each cell from the
BIB-AE's value (a small MLP applied to every cell, a 1x1x1 convolution, fed noise: a draw of hit
or empty and a shift of the energy; the noise is our addition, so it can put MIP hits where the
mean is a fraction of a MIP), in ``u = ln(1 + E / MIP)``. It is trained with the BIB-AE frozen,
on the BIB-AE's reconstructions of showers it never saw, to match the true cells' energy
distribution given the BIB-AE value: sorted spectra of groups of similar cells, plus the
paper's MMD on the cell energies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from anomalyhunt.gan import gaussian_noise, mlp, mmd2
from anomalyhunt.scores.training import Player
from anomalyhunt.showers.toy import MIP_MEV, Calorimeter

#: Variance of a cell's ``sqrt(E / MIP)`` about its mean: 1/4 for the square root of Poisson
#: counts, plus the Landau-like spread of each track's deposit. With it the reconstruction error
#: is a Gaussian log-likelihood, so ``kl_weight`` 1 is the plain variational bound.
A_VARIANCE = 0.3
#: Kernel widths of the latent MMD (the prior's unit width and around it).
LATENT_WIDTHS = (0.5, 1.0, 2.0)
#: Kernel widths (in u = ln(1 + E / MIP)) of the post-processor's spectrum MMD: the MIP peak's
#: width, the peak's distance from the threshold, and the spread of the shower cores.
SPECTRUM_WIDTHS = (0.1, 0.3, 1.0)
#: Floor of the weight with which the post-processor's loss draws cells (beside min(m, 1)):
#: enough of the many nearly empty cells are drawn to keep them empty.
EMPTY_WEIGHT = 0.1
#: Temperature of the post-processor's relaxed hit-or-empty draw while training.
HIT_TEMPERATURE = 0.1
#: Cells per group of similar BIB-AE value whose spectra the post-processor's loss compares.
GROUP = 32
#: Cells of the post-processor's MMD term (its cost grows with their square).
MMD_CELLS = 256


def to_a(cells_mev: np.ndarray) -> np.ndarray:
    """Showers (n, layers, x, y) in MeV as the BIB-AE's (n, cells) ``sqrt(E / MIP)``."""
    return np.sqrt(cells_mev.reshape(len(cells_mev), -1) / MIP_MEV).astype(np.float32)


def a_to_mev(a: np.ndarray, calo: Calorimeter) -> np.ndarray:
    """The BIB-AE's ``a`` back to cell energies in MeV, with the readout threshold applied."""
    cells = MIP_MEV * np.square(np.asarray(a, dtype=np.float64))
    cells[cells < calo.threshold_mev] = 0.0
    return cells.reshape(len(cells), *calo.shape).astype(np.float32)


def a_to_u(a: Any) -> Any:
    """The BIB-AE's ``a = sqrt(E / MIP)`` as the post-processor's ``u = ln(1 + E / MIP)``."""
    return torch.log1p(a**2) if isinstance(a, torch.Tensor) else np.log1p(np.square(a))


def to_u(cells_mev: np.ndarray) -> np.ndarray:
    """Showers (n, layers, x, y) in MeV as the post-processor's (n, cells) ``ln(1 + E / MIP)``."""
    return np.log1p(cells_mev.reshape(len(cells_mev), -1) / MIP_MEV).astype(np.float32)


def to_mev(u: np.ndarray, calo: Calorimeter) -> np.ndarray:
    """The post-processor's ``u`` back to cell energies in MeV, with the readout threshold applied."""
    cells = MIP_MEV * np.expm1(np.maximum(np.asarray(u, dtype=np.float64), 0.0))
    cells[cells < calo.threshold_mev] = 0.0
    return cells.reshape(len(cells), *calo.shape).astype(np.float32)


class BibAE(nn.Module):
    """Encoder, decoder and latent critic of the BIB-AE (one module, so the loop keeps all three).

    Parameters
    ----------
    n_cells : int
        Cells per shower.
    latent : int
        Latent dimensions.
    hidden : sequence of int
        Widths of the encoder's hidden layers (the decoder mirrors them).
    critic_hidden : sequence of int
        Widths of the latent critic's hidden layers.
    """

    def __init__(self, n_cells: int, latent: int, hidden: list[int], critic_hidden: list[int]):
        super().__init__()
        self.latent = int(latent)
        self.encoder = mlp(n_cells + 1, hidden, 2 * latent, activation="leaky_relu")
        self.decoder = mlp(latent + 1, list(hidden)[::-1], n_cells + 1, activation="leaky_relu")
        self.critic = mlp(latent + 1, critic_hidden, 1, activation="leaky_relu")
        self.register_buffer("mean", torch.zeros(n_cells))
        self.register_buffer("scale", torch.ones(n_cells))
        self.register_buffer("response", torch.ones(()))

    def encode(self, a: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | a, e)``; ``mean``/``scale`` standardise ``a/sqrt(e)``."""
        h = self.encoder(torch.cat([(a / e.sqrt() - self.mean) / self.scale, e], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 5.0)

    def decode(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Cell values ``a >= 0`` of the shower of latent ``z`` and incident energy ``e``: its
        total times its shape (``response``: the mean ``sum a^2 / e`` of the training set)."""
        h = self.decoder(torch.cat([z, e], dim=1))
        total = self.response * e * torch.exp(h[:, -1:])
        return torch.sqrt(total * torch.softmax(h[:, :-1], dim=1) + 1e-8)

    def reconstruct(self, a: torch.Tensor, e: torch.Tensor, generator: Any) -> torch.Tensor:
        """Decode a latent drawn from ``q(z | a, e)``."""
        mu, logvar = self.encode(a, e)
        eps = gaussian_noise(len(a), self.latent, generator)
        return self.decode(mu + eps * torch.exp(0.5 * logvar), e)

    def sample(self, e: torch.Tensor, generator: Any) -> torch.Tensor:
        """New showers: prior draws decoded at the incident energies ``e`` (n, 1)."""
        return self.decode(gaussian_noise(len(e), self.latent, generator), e)


def bibae_players(
    net: BibAE,
    *,
    kl_weight: float,
    mmd_weight: float,
    critic_weight: float,
    learning_rate: float,
) -> list[Player]:
    """The BIB-AE's game for the training loop: the latent critic, then the autoencoder.

    Parameters
    ----------
    net : BibAE
        The networks; the critic player moves ``net.critic``, the other encoder and decoder.
    kl_weight : float
        Weight of the KL divergence to the prior.
    mmd_weight : float
        Weight of the MMD between (z, e) of encoded showers and of prior draws.
    critic_weight : float
        Weight of the encoder's non-saturating loss against the latent critic.
    learning_rate : float
        Adam's step size for the autoencoder (the critic takes the loop's).

    Batches are ``(a, e)``; the autoencoder's loss is the summed squared error over cells over
    ``2 A_VARIANCE`` plus the three weighted terms.
    """
    ae_params = [*net.encoder.parameters(), *net.decoder.parameters()]

    def encoded(batch: tuple[Any, ...], generator: Any) -> tuple[torch.Tensor, ...]:
        a, e = batch
        mu, logvar = net.encode(a, e)
        z = mu + gaussian_noise(len(a), net.latent, generator) * torch.exp(0.5 * logvar)
        return z, mu, logvar

    def critic_loss(batch: tuple[Any, ...], generator: Any) -> torch.Tensor:
        e = batch[1]
        with torch.no_grad():
            z = encoded(batch, generator)[0]
        prior = gaussian_noise(len(z), net.latent, generator)
        d_prior = net.critic(torch.cat([prior, e], dim=1)).squeeze(-1)
        d_z = net.critic(torch.cat([z, e], dim=1)).squeeze(-1)
        return bce(d_prior, torch.ones_like(d_prior), reduction="none") + bce(
            d_z, torch.zeros_like(d_z), reduction="none"
        )

    def autoencoder_loss(batch: tuple[Any, ...], generator: Any) -> torch.Tensor:
        a, e = batch
        z, mu, logvar = encoded(batch, generator)
        out = net.decode(z, e)
        rec = ((out - a) ** 2).sum(dim=1) / (2 * A_VARIANCE)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        d_z = net.critic(torch.cat([z, e], dim=1)).squeeze(-1)
        fool = bce(d_z, torch.ones_like(d_z), reduction="none")
        prior = gaussian_noise(len(z), net.latent, generator)
        mmd = mmd2(torch.cat([z, e], dim=1), torch.cat([prior, e], dim=1), widths=LATENT_WIDTHS)
        each = rec + kl_weight * kl + critic_weight * fool
        return each.mean() + mmd_weight * mmd

    return [
        Player(net.critic.parameters(), critic_loss, betas=(0.5, 0.9)),
        Player(ae_params, autoencoder_loss, learning_rate=learning_rate, betas=(0.5, 0.9)),
    ]


class PostProcessor(nn.Module):
    """Per-cell stochastic correction of the BIB-AE's output (a 1x1x1 convolution with noise).

    A cell sees its BIB-AE value ``m`` (in ``u``), the incident energy and a noise draw, not its
    position: in a sampling calorimeter a cell's energy given its mean does not depend on where
    the cell is, and a position-blind correction cannot move energy between layers or radii.
    The MLP gives two numbers per cell: a shift of the value, ``u = m + shift`` (with the noise,
    the hit's energy spread), and the logit of the cell being hit at all; a second, logistic,
    noise draws hit or empty (a relaxed Bernoulli while training, of temperature
    :data:`HIT_TEMPERATURE`, so the loss has a gradient; a plain draw when generating). A cell
    with a few tenths of a MIP on average is empty most of the time and sometimes holds a
    whole MIP: a draw of hit or empty makes that, a smooth shift of the value cannot.

    Parameters
    ----------
    hidden : sequence of int
        Widths of the per-cell MLP's hidden layers.
    """

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.net = mlp(3, hidden, 2, activation="leaky_relu")

    def cells(
        self, m: torch.Tensor, e: torch.Tensor, generator: Any, *, relaxed: bool = False
    ) -> torch.Tensor:
        """Corrected values of single cells from their BIB-AE value ``m`` and incident energy
        ``e`` (both (k,)), with noise from ``generator``; empty cells read 0."""
        k = len(m)
        noise = torch.randn((2, k), generator=generator, device=generator.device)
        h = self.net(torch.stack([m, e, noise[0]], dim=1))
        p = torch.special.ndtr(noise[1]).clamp(1e-6, 1 - 1e-6)  # uniform, from the 2nd normal
        z = h[:, 1] + torch.log(p) - torch.log1p(-p)
        hit = torch.sigmoid(z / HIT_TEMPERATURE) if relaxed else (z > 0).to(m.dtype)
        return hit * (m + h[:, 0])

    def forward(self, m: torch.Tensor, e: torch.Tensor, generator: Any) -> torch.Tensor:
        """Cell values ``u = ln(1 + E / MIP)`` (n, cells) drawn around the BIB-AE's ``m`` (same
        layout); those below the threshold are empty cells."""
        n, c = m.shape
        return self.cells(m.reshape(-1), e.expand(n, c).reshape(-1), generator).reshape(n, c)


def postprocessor_loss(pp: PostProcessor, *, cells: int, mmd_weight: float) -> Any:
    """The post-processor's loss on batches ``(m, u_true, e)``: one 0-d value per batch.

    It matches the distribution of each cell's energy given what the BIB-AE predicts there
    (``m``), so that the spectrum, the MIP peak and the hit count come out right. ``cells``
    cells are drawn from the batch with weight ``min(m, 1) + EMPTY_WEIGHT`` (favouring the cells of
    about a MIP, where hit or no hit is decided; any weighting by ``m`` alone keeps the
    comparison fair, as both sides share the cells) and only they are corrected. They are
    sorted by ``m`` into groups of :data:`GROUP` of similar ``m``; within each group the sorted
    true and corrected values are compared (the 1-D Wasserstein distance of the group's
    spectra), plus ``mmd_weight`` times the paper's MMD between the (m, true) and
    (m, corrected) pairs of the first :data:`MMD_CELLS` cells.
    """

    def loss(batch: tuple[Any, ...], generator: Any) -> torch.Tensor:
        m, true, e = batch
        c = m.shape[1]
        weight = m.reshape(-1).clamp(max=1.0) + EMPTY_WEIGHT
        pick = torch.multinomial(weight, cells, replacement=True, generator=generator)
        m_k = m.reshape(-1)[pick]
        order = torch.argsort(m_k)
        pick, m_k = pick[order], m_k[order]
        out = pp.cells(m_k, e[pick // c, 0], generator, relaxed=True)
        true_k = true.reshape(-1)[pick]
        groups = cells // GROUP
        fake_sorted = torch.sort(out[: groups * GROUP].reshape(groups, GROUP), dim=1)[0]
        true_sorted = torch.sort(true_k[: groups * GROUP].reshape(groups, GROUP), dim=1)[0]
        spectrum = (fake_sorted - true_sorted).abs().mean()
        if mmd_weight <= 0:
            return spectrum
        sub = torch.randperm(cells, generator=generator, device=generator.device)[:MMD_CELLS]
        real = torch.stack([m_k[sub], true_k[sub]], dim=1)
        fake = torch.stack([m_k[sub], out[sub]], dim=1)
        return spectrum + mmd_weight * mmd2(fake, real, SPECTRUM_WIDTHS)

    return loss


def generate(
    net: BibAE,
    calo: Calorimeter,
    energy_gev: np.ndarray,
    energy_max: float,
    *,
    seed: int,
    device: str,
    post: PostProcessor | None = None,
    batch: int = 4096,
) -> np.ndarray:
    """New showers in MeV (n, layers, x, y) at the given incident energies, thresholded.

    Parameters
    ----------
    net : BibAE
        Decodes prior draws.
    calo : Calorimeter
        The grid and readout threshold.
    energy_gev : array
        Incident energies (GeV), one per shower.
    energy_max : float
        Scales them to the networks' condition.
    seed : int
        Seeds the prior draws and the post-processor's noise.
    device : str
        Where the networks run.
    post : PostProcessor, optional
        Redraws each cell of the BIB-AE's showers (None: the BIB-AE alone).
    batch : int, default 4096
        Showers per forward pass.
    """
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    e_all = torch.as_tensor(np.asarray(energy_gev) / energy_max, dtype=torch.float32)[:, None]
    out = np.empty((len(e_all), *calo.shape), dtype=np.float32)
    net.eval()
    with torch.no_grad():
        for s in range(0, len(e_all), batch):
            e = e_all[s : s + batch].to(dev)
            a = net.sample(e, gen)
            if post is None:
                out[s : s + len(e)] = a_to_mev(a.cpu().numpy(), calo)
            else:
                out[s : s + len(e)] = to_mev(post(a_to_u(a), e, gen).cpu().numpy(), calo)
    return out


def reconstruct(
    net: BibAE, a: np.ndarray, e: np.ndarray, *, seed: int, device: str, batch: int = 4096
) -> np.ndarray:
    """The BIB-AE's reconstructions ``a`` (n, cells) of showers ``a`` at conditions ``e``: the
    post-processor's training input."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    out = []
    net.eval()
    with torch.no_grad():
        for s in range(0, len(a), batch):
            aa = torch.as_tensor(a[s : s + batch], device=dev)
            ee = torch.as_tensor(e[s : s + batch], device=dev)
            out.append(net.reconstruct(aa, ee, gen).cpu().numpy())
    return np.concatenate(out)
