"""Building blocks of the adversarial networks (GANs, WGAN-GP critics, MMD terms).

Every branch that plays a game builds its players here and trains them with the one loop,
:func:`anomalyhunt.scores.training.train_network`, which takes a list of
:class:`~anomalyhunt.scores.training.Player`. A player's loss has the loop's signature,
``loss(batch, generator)``, and draws every random number from ``generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from anomalyhunt.scores.training import Player

#: ``fake(batch, generator)``: generated events for a batch (conditional models read the batch).
FakeFn = Callable[[tuple[Any, ...], Any], Any]
#: ``real(batch)``: the true events of a batch, in the critic's input layout.
RealFn = Callable[[tuple[Any, ...]], Any]
#: ``extra(batch, fake, generator)``: a term added to the generator's loss (an MMD, say).
ExtraFn = Callable[[tuple[Any, ...], Any, Any], Any]


def mlp(
    n_in: int,
    hidden: Sequence[int],
    n_out: int,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
) -> Any:
    """A fully connected network ``n_in -> hidden... -> n_out`` with no activation at the end.

    Build it inside :func:`~anomalyhunt.scores.training.seeded` for reproducible weights.
    ``activation`` is "relu", "leaky_relu" (slope 0.2, the usual critic) or "elu".
    """
    from torch import nn

    acts = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}
    if activation not in acts:
        raise ValueError(f"unknown activation '{activation}'; use one of {sorted(acts)}")
    layers: list[Any] = []
    width = int(n_in)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), acts[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, int(n_out)))
    return nn.Sequential(*layers)


def gaussian_noise(n: int, dim: int, generator: Any) -> Any:
    """Latent noise for a generator, drawn from the loop's generator (so runs reproduce)."""
    import torch

    return torch.randn((int(n), int(dim)), generator=generator, device=generator.device)


def mmd2(x: Any, y: Any, widths: Sequence[float], kernel: str = "gaussian") -> Any:
    """Squared maximum mean discrepancy between samples ``x`` and ``y`` (biased estimator).

    A sum of kernels of several widths, each of the order of the structure to be resolved (a
    resonance's width, for the mass peaks of arXiv:1907.03764). ``kernel`` "gaussian" is
    exp(-d^2 / 2 w^2); "breit_wigner" is w^2 / (d^2 + w^2), whose long tails keep a gradient
    for a peak that is still far off. ``x``, ``y``: (n, d) or (n,) tensors.
    """
    import torch

    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    xy = torch.cat([x, y])
    d2 = torch.cdist(xy, xy).pow(2)
    k = torch.zeros_like(d2)
    for w in widths:
        w2 = float(w) ** 2
        if kernel == "gaussian":
            k = k + torch.exp(-d2 / (2 * w2))
        elif kernel == "breit_wigner":
            k = k + w2 / (d2 + w2)
        else:
            raise ValueError(f"unknown MMD kernel '{kernel}'; use gaussian or breit_wigner")
    n = len(x)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


def gradient_penalty(critic: Any, real: Any, fake: Any, generator: Any) -> Any:
    """Per-event WGAN-GP penalty (|grad critic| - 1)^2 at random interpolates of real and fake."""
    import torch

    eps = torch.rand((len(real), 1), generator=generator, device=generator.device)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return (grad.norm(dim=1) - 1.0) ** 2


def gan_players(
    generator_params: Any,
    critic: Any,
    fake: FakeFn,
    real: RealFn,
    *,
    kind: str = "bce",
    critic_steps: int = 1,
    penalty: float = 10.0,
    extra: ExtraFn | None = None,
    betas: tuple[float, float] = (0.5, 0.9),
    learning_rate: float | None = None,
    critic_learning_rate: float | None = None,
) -> list[Player]:
    """The critic and the generator of a GAN as the training loop's two players.

    Parameters
    ----------
    generator_params : iterable of parameters
        The generator's (what its optimiser moves).
    critic : torch.nn.Module
        Maps events (as ``real`` and ``fake`` lay them out) to one logit / score each.
    fake, real : callable
        ``fake(batch, generator)`` generated events for a batch; ``real(batch)`` its true events.
    kind : {"bce", "wgan_gp"}
        "bce": the non-saturating GAN (critic: binary cross-entropy, generator: -log D(fake)).
        "wgan_gp": Wasserstein GAN with gradient penalty (Gulrajani et al., arXiv:1704.00028).
    critic_steps : int, default 1
        Critic updates per generator update (5 for WGAN-GP, as in the paper).
    penalty : float, default 10
        The gradient penalty's weight (WGAN-GP only).
    extra : callable, optional
        ``extra(batch, fake_events, generator)``, a batch-level (0-d) or per-event term added to
        the generator's loss, e.g. ``lambda b, f, g: lam * mmd2(mass(f), mass(real(b)), ...)``.
    betas, learning_rate, critic_learning_rate
        Adam settings of the two players (None: the loop's learning rate).
    """
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    if kind not in ("bce", "wgan_gp"):
        raise ValueError(f"unknown GAN kind '{kind}'; use bce or wgan_gp")

    def critic_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        x = real(batch)
        with torch.no_grad():
            f = fake(batch, generator)
        d_real, d_fake = critic(x).squeeze(-1), critic(f).squeeze(-1)
        if kind == "bce":
            return bce(d_real, torch.ones_like(d_real), reduction="none") + bce(
                d_fake, torch.zeros_like(d_fake), reduction="none"
            )
        return d_fake - d_real + penalty * gradient_penalty(critic, x, f, generator)

    def generator_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        f = fake(batch, generator)
        d_fake = critic(f).squeeze(-1)
        each = bce(d_fake, torch.ones_like(d_fake), reduction="none") if kind == "bce" else -d_fake
        if extra is None:
            return each
        term = extra(batch, f, generator)
        return each.mean() + term if term.ndim == 0 else each + term

    return [
        Player(
            list(critic.parameters()),
            critic_loss,
            steps=critic_steps,
            learning_rate=critic_learning_rate,
            betas=betas,
        ),
        Player(list(generator_params), generator_loss, learning_rate=learning_rate, betas=betas),
    ]
