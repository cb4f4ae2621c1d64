"""The four conditional densities q(r | c) of the detector response, as torch modules.

Each works on the standardised response ``z`` and the encoded condition ``c`` (see
:func:`anomalyhunt.fastsim.simulator.encode`) and offers ``generate(c, generator) -> z``, drawing
every random number from ``generator`` so a fast simulation reproduces:

* :class:`ConditionalGan`: generator(noise, c) -> z and a critic(z, c), played as a
  non-saturating GAN (the seed's approach) or a WGAN-GP;
* :class:`ConditionalFlow`: a conditional masked autoregressive flow (nflows), the likelihood
  reference: exact log q(z | c), trained by maximum likelihood;
* :class:`MixtureDensity`: a mixture density network, K full-covariance Gaussians whose weights,
  means and Cholesky factors an MLP predicts from c, also trained by maximum likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from anomalyhunt.gan import gaussian_noise, mlp
from anomalyhunt.scores.flows import build_flow


class ConditionalGan(nn.Module):
    """A conditional generator and its critic (one module, so the loop keeps both).

    Parameters
    ----------
    n_out : int
        Response features generated.
    n_cond : int
        Condition features.
    hidden : sequence of int
        Hidden widths of the generator and of the critic.
    noise_dim : int
        Latent Gaussian noise per muon.
    """

    def __init__(self, n_out: int, n_cond: int, hidden: Sequence[int], noise_dim: int) -> None:
        super().__init__()
        self.noise_dim = int(noise_dim)
        self.generator = mlp(self.noise_dim + n_cond, hidden, n_out)
        self.critic = mlp(n_out + n_cond, hidden, 1, activation="leaky_relu")

    def generate(self, c: Any, generator: Any) -> Any:
        """One generated response per condition row."""
        import torch

        noise = gaussian_noise(len(c), self.noise_dim, generator)
        return self.generator(torch.cat([noise, c], dim=1))


#: Spline range of the flow in standardised response units; identity (linear tails) outside.
TAIL_BOUND = 6.0


class ConditionalFlow(nn.Module):
    """q(z | c) as a conditional masked autoregressive flow.

    Parameters
    ----------
    n_out, n_cond : int
        Response and condition features.
    layers : int
        Masked autoregressive transforms (feature order reversed between them).
    hidden : int
        Hidden units of each MADE.
    transform : {"spline", "affine"}
        The MADE step (:func:`anomalyhunt.scores.flows.build_flow`, two residual blocks per layer).
    bins : int
        Spline bins.
    """

    def __init__(
        self, n_out: int, n_cond: int, layers: int, hidden: int, transform: str, bins: int
    ) -> None:
        super().__init__()
        self.n_out = int(n_out)
        # "affine" inverts by dividing by a scale that may be 1e-3 per layer, so a sample can explode
        # (one muon in 1e4 came out at 1e11 standard deviations after 20 epochs): prefer "spline"
        self.flow = build_flow(
            n_out, int(layers), int(hidden), 2, transform, bins, TAIL_BOUND, context_features=n_cond
        )

    def log_prob(self, z: Any, c: Any) -> Any:
        """log q(z | c) per row."""
        return self.flow.log_prob(z, context=c)

    def generate(self, c: Any, generator: Any) -> Any:
        """Sample by pushing the generator's Gaussian noise through the inverse transform."""
        noise = gaussian_noise(len(c), self.n_out, generator)
        z, _ = self.flow._transform.inverse(noise, context=c)
        return z


class MixtureDensity(nn.Module):
    """q(z | c) as a mixture of ``components`` full-covariance Gaussians.

    Parameters
    ----------
    n_out, n_cond : int
        Response and condition features.
    hidden : sequence of int
        Hidden widths of the MLP that predicts the mixture.
    components : int
        Gaussians in the mixture.
    """

    def __init__(self, n_out: int, n_cond: int, hidden: Sequence[int], components: int) -> None:
        import torch

        super().__init__()
        self.n_out, self.k = int(n_out), int(components)
        self.n_tril = self.n_out * (self.n_out + 1) // 2
        self.net = mlp(n_cond, hidden, self.k * (1 + self.n_out + self.n_tril))
        rows, cols = torch.tril_indices(self.n_out, self.n_out)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def mixture(self, c: Any) -> tuple[Any, Any, Any]:
        """(log weights (n, K), means (n, K, d), Cholesky factors (n, K, d, d)) for conditions c."""
        import torch
        from torch.nn.functional import log_softmax, softplus

        n, k, d = len(c), self.k, self.n_out
        out = self.net(c)
        logw = log_softmax(out[:, :k], dim=1)
        mean = out[:, k : k + k * d].reshape(n, k, d)
        flat = out[:, k + k * d :].reshape(n, k, self.n_tril)
        diag = self.rows == self.cols
        flat = torch.where(diag, softplus(flat) + 1e-3, flat)
        tril = flat.new_zeros(n, k, d, d)
        tril[:, :, self.rows, self.cols] = flat
        return logw, mean, tril

    def log_prob(self, z: Any, c: Any) -> Any:
        """log q(z | c) per row."""
        import torch

        logw, mean, tril = self.mixture(c)
        diff = (z[:, None, :] - mean).unsqueeze(-1)
        sol = torch.linalg.solve_triangular(tril, diff, upper=False).squeeze(-1)
        logdet = torch.log(torch.diagonal(tril, dim1=-2, dim2=-1)).sum(-1)
        log_comp = -0.5 * (sol**2).sum(-1) - logdet - 0.5 * self.n_out * math.log(2 * math.pi)
        return torch.logsumexp(logw + log_comp, dim=1)

    def generate(self, c: Any, generator: Any) -> Any:
        """Pick a component by its weight, then mean + L @ noise."""
        import torch

        logw, mean, tril = self.mixture(c)
        pick = torch.multinomial(logw.exp(), 1, generator=generator).squeeze(1)
        rows = torch.arange(len(c), device=c.device)
        eps = gaussian_noise(len(c), self.n_out, generator)
        return mean[rows, pick] + (tril[rows, pick] @ eps.unsqueeze(-1)).squeeze(-1)
