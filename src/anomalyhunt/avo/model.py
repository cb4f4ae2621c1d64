"""The AVO game: a WGAN-GP critic against a Gaussian proposal over the simulator's parameters.

Adversarial variational optimization (Louppe, Hermans & Cranmer, arXiv:1707.07113) fits a
simulator that has no gradient: instead of the parameters theta = (E_beam, G_f) themselves it moves
a proposal ``q(theta | psi)`` (here a Gaussian with a mean and a log-width per parameter) so that
events simulated at ``theta ~ q`` look like the observed ones to a critic. The critic ``d(x)`` is a
WGAN-GP critic on cos(A) (simulated against observed, with the gradient penalty of
:func:`anomalyhunt.gan.gradient_penalty`); the proposal minimises ``U = E_q[-d(x(theta))]`` with the
score-function (REINFORCE) gradient

    grad_psi U = E_q[(-d(x) - b) grad_psi log q(theta | psi)],

with the batch mean ``b`` of ``-d`` as baseline (it cuts the variance, not the mean). With an
entropy penalty ``gamma > 0`` the proposal's loss gets ``gamma * H(q)``, which shrinks the proposal
to a point on the ridge of the likelihood; without it the proposal may stay wide along the ridge.

The parameters live in units of the paper's box: ``u = (theta - centre) / half_width`` with the box
[40, 50] GeV x [0.5, 1.5] mapped onto [-1, 1]^2, so one learning rate suits both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from anomalyhunt.avo.toy import BOX, simulate
from anomalyhunt.config import derive_seed
from anomalyhunt.gan import gradient_penalty, mlp
from anomalyhunt.scores.training import Player, TrainingResult, seeded, train_network

CENTRE = np.array([(lo + hi) / 2.0 for lo, hi in BOX])
HALF_WIDTH = np.array([(hi - lo) / 2.0 for lo, hi in BOX])


class AVOGame(nn.Module):
    """The critic and the proposal's parameters in one module (so the loop keeps both).

    Build it under :func:`~anomalyhunt.scores.training.seeded` for reproducible critic weights.

    Parameters
    ----------
    critic_hidden : sequence of int
        Widths of the critic's hidden layers (leaky ReLU).
    start_mean, start_width : sequence of float
        The proposal's initial mean and width of (E_beam [GeV], G_f).
    """

    def __init__(
        self,
        *,
        critic_hidden: Sequence[int],
        start_mean: Sequence[float],
        start_width: Sequence[float],
    ) -> None:
        super().__init__()
        self.critic = mlp(2, critic_hidden, 1, activation="leaky_relu")
        # d = 0 to start: the critic's first opinion comes from the events, not from its random
        # weights (a random sign would first push the proposal away)
        nn.init.zeros_(self.critic[-1].weight)
        nn.init.zeros_(self.critic[-1].bias)
        mean = (np.asarray(start_mean, dtype=np.float64) - CENTRE) / HALF_WIDTH
        width = np.asarray(start_width, dtype=np.float64) / HALF_WIDTH
        self.mean = nn.Parameter(torch.as_tensor(mean, dtype=torch.float32))
        self.log_width = nn.Parameter(torch.as_tensor(np.log(width), dtype=torch.float32))
        self.register_buffer("centre", torch.as_tensor(CENTRE, dtype=torch.float32))
        self.register_buffer("half_width", torch.as_tensor(HALF_WIDTH, dtype=torch.float32))

    def proposal_parameters(self) -> list[Any]:
        """psi: what the proposal's optimiser moves."""
        return [self.mean, self.log_width]

    def sample(self, n: int, generator: Any) -> tuple[Any, Any]:
        """``n`` draws of the proposal: (theta in physical units, u in box units), no gradient."""
        with torch.no_grad():
            eps = torch.randn((int(n), 2), generator=generator, device=generator.device)
            u = self.mean + torch.exp(self.log_width) * eps.to(self.mean.device)
            return self.centre + self.half_width * u, u

    def log_q(self, u: Any) -> Any:
        """log q(u | psi) per row, differentiable in psi (the score function's source)."""
        z = (u - self.mean) * torch.exp(-self.log_width)
        return (-0.5 * z**2 - self.log_width - 0.5 * math.log(2 * math.pi)).sum(dim=1)

    def entropy(self) -> Any:
        """H(q) of the Gaussian proposal in box units (differentiable)."""
        return (self.log_width + 0.5 * math.log(2 * math.pi * math.e)).sum()

    def score(self, x: Any) -> Any:
        """The critic's score d(x) of cos(A) values (n,) -> (n,)."""
        return self.critic(direction(x)).squeeze(-1)

    def state(self) -> dict[str, list[float]]:
        """The proposal's mean and width in physical units (E_beam [GeV], G_f)."""
        mean = (self.centre + self.half_width * self.mean).detach().cpu().numpy()
        width = (self.half_width * self.log_width.exp()).detach().cpu().numpy()
        return {"mean": [float(v) for v in mean], "width": [float(v) for v in width]}


def direction(cos_a: Any) -> Any:
    """The mu- direction in the scattering plane, (cos A, sin A): what the critic sees.

    On the unit half-circle rather than the line, so the critic can turn its gradient from
    favouring forward to favouring backward muons without passing through a zero gradient, which
    the WGAN-GP penalty (|grad d| - 1)^2 forbids on a 1-D input (a barrier that traps the critic
    with the wrong sign once the proposal overshoots).
    """
    return torch.stack([cos_a, torch.sqrt(torch.clamp(1.0 - cos_a**2, min=0.0))], dim=-1)


def avo_players(
    game: AVOGame,
    *,
    entropy_penalty: float,
    gradient_penalty_weight: float,
    critic_steps: int,
    events_per_theta: int,
    learning_rate: float,
    critic_learning_rate: float,
) -> list[Player]:
    """The critic and the proposal as the training loop's two players.

    Parameters
    ----------
    game : AVOGame
        Holds the critic and psi.
    entropy_penalty : float
        gamma: weight of H(q) in the proposal's loss (0: plain AVO).
    gradient_penalty_weight : float
        lambda of the WGAN-GP penalty.
    critic_steps : int
        Critic updates per proposal update.
    events_per_theta : int
        Simulated events averaged per drawn theta in the proposal's score (less variance).
    learning_rate, critic_learning_rate : float
        Adam step sizes of the proposal and the critic.
    """

    def critic_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        real = batch[0]
        theta, _ = game.sample(len(real), generator)
        fake = simulate(theta, generator)
        d_real, d_fake = game.score(real), game.score(fake)
        gp = gradient_penalty(game.critic, direction(real), direction(fake), generator)
        return d_fake - d_real + gradient_penalty_weight * gp

    def proposal_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        n, k = len(batch[0]), int(events_per_theta)
        theta, u = game.sample(n, generator)
        with torch.no_grad():
            x = simulate(theta.repeat_interleave(k, dim=0), generator)
            cost = -game.score(x).view(n, k).mean(dim=1)  # what the proposal minimises
            advantage = cost - cost.mean()
        each = advantage * game.log_q(u)
        return each + entropy_penalty * game.entropy() if entropy_penalty > 0 else each

    betas = (0.5, 0.9)
    return [
        Player(
            list(game.critic.parameters()),
            critic_loss,
            steps=int(critic_steps),
            learning_rate=critic_learning_rate,
            betas=betas,
        ),
        Player(game.proposal_parameters(), proposal_loss, learning_rate=learning_rate, betas=betas),
    ]


@dataclass
class PathTracker:
    """The loop's monitor: a distance between simulated and observed cos(A), plus a record.

    Each call draws ``len(observed)`` events from the current proposal and returns the 1-D
    Wasserstein distance to the held-out ``observed`` events (lower is better; it picks the best
    epoch), and records the proposal's mean and width and the critic's value
    ``E_obs[d] - E_sim[d]`` (the critic's estimate of that distance, falling towards zero as the
    proposal fits), so the path can be drawn.

    Parameters
    ----------
    game : AVOGame
        The game being trained.
    observed : array
        Held-out observed cos(A) values (validation events).
    """

    game: AVOGame
    observed: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, generator: Any) -> float:
        value, sim = critic_value(self.game, self.observed, generator, return_simulated=True)
        distance = wasserstein_1d(sim, self.observed)
        self.history.append({**self.game.state(), "critic_value": value, "wasserstein": distance})
        return distance


def critic_value(
    game: AVOGame, observed: np.ndarray, generator: Any, return_simulated: bool = False
) -> Any:
    """The critic's ``E_obs[d] - E_sim[d]`` over ``observed`` and as many events simulated from
    the proposal: its estimate of the Wasserstein distance (the gradient penalty keeps d
    1-Lipschitz). With ``return_simulated``, also those simulated cos(A) (numpy)."""
    obs = torch.as_tensor(observed, dtype=torch.float32, device=game.mean.device)
    with torch.no_grad():
        theta, _ = game.sample(len(obs), generator)
        sim = simulate(theta, generator)
        value = float(game.score(obs).mean() - game.score(sim).mean())
    return (value, sim.cpu().numpy()) if return_simulated else value


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two equal-sized 1-D samples (mean |sorted a - sorted b|)."""
    return float(np.mean(np.abs(np.sort(np.asarray(a, np.float64)) - np.sort(np.asarray(b)))))


@dataclass
class AVOFit:
    """One AVO run: the trained game (best epoch), its path (first entry: the start, after the
    critic's warm-up) and the loop's result."""

    game: AVOGame
    path: list[dict[str, Any]]
    result: TrainingResult


def fit_proposal(
    observed: np.ndarray,
    *,
    entropy_penalty: float,
    start_mean: Sequence[float],
    start_width: Sequence[float],
    critic_hidden: Sequence[int],
    critic_steps: int,
    critic_warmup_epochs: int,
    gradient_penalty_weight: float,
    events_per_theta: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    critic_learning_rate: float,
    patience: int,
    seed: int,
    device: str = "cpu",
    label: str = "avo",
) -> AVOFit:
    """Fit the proposal to the observed cos(A) by AVO through the one training loop.

    Parameters
    ----------
    observed : array (n,)
        The observed cos(A) values: the critic's real events and the monitor's reference (the
        proposal has four parameters, so judging it on the same events cannot overfit).
    entropy_penalty : float
        gamma, the weight of H(q) in the proposal's loss (0: none).
    start_mean, start_width : sequence of float
        The proposal's initial (E_beam [GeV], G_f) mean and width.
    critic_hidden, critic_steps, gradient_penalty_weight, events_per_theta
        The critic's layers, its updates per proposal update, the WGAN-GP lambda, and the
        simulated events averaged per theta in the proposal's score.
    critic_warmup_epochs : int
        Epochs the critic trains alone against the starting proposal before the game (its
        first verdicts then point the proposal the right way).
    epochs, batch_size, learning_rate, critic_learning_rate, patience
        The loop's settings (``learning_rate`` is the proposal's Adam step).
    seed : int
        Seeds the critic's initial weights and the loop.
    device : str
        Where to train.
    label : str
        Names the run in logs and the progress bar.
    """
    with seeded(seed, device):
        game = AVOGame(critic_hidden=critic_hidden, start_mean=start_mean, start_width=start_width)
    game.to(device)
    players = avo_players(
        game,
        entropy_penalty=entropy_penalty,
        gradient_penalty_weight=gradient_penalty_weight,
        critic_steps=critic_steps,
        events_per_theta=events_per_theta,
        learning_rate=learning_rate,
        critic_learning_rate=critic_learning_rate,
    )
    obs = np.asarray(observed, dtype=np.float32)
    if critic_warmup_epochs > 0:  # a random critic would first push the proposal anywhere
        train_network(
            game,
            players[:1],
            (obs,),
            (obs,),
            epochs=critic_warmup_epochs,
            batch_size=batch_size,
            learning_rate=critic_learning_rate,
            patience=critic_warmup_epochs,
            seed=derive_seed(seed, "warm-up"),
            device=device,
            label=f"{label} critic warm-up",
            monitor=lambda generator: -critic_value(game, obs, generator),
        )
    tracker = PathTracker(game, obs)
    tracker(torch.Generator(device=torch.device(device)).manual_seed(int(seed)))
    result = train_network(
        game,
        players,
        (obs,),
        (obs,),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label=label,
        monitor=tracker,
    )
    return AVOFit(game=game, path=tracker.history, result=result)
