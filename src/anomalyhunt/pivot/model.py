"""The classifier, its mixture-density adversary, and the game between them (arXiv:1611.01046).

``f`` maps the two features to a logit; ``r`` reads ``f``'s probability ``sigmoid(logit)`` and
returns a mixture of Gaussians for the nuisance ``z`` (a mixture density network), scored by its
negative log-likelihood ``L_r``. The game (section 3 of the paper): ``r`` minimises ``L_r``, ``f``
minimises ``L_f - lambda L_r`` with ``L_f`` the binary cross-entropy. Both are
:class:`~anomalyhunt.scores.training.Player` s of the one training loop, the adversary first with
``adversary_steps`` updates per minibatch (the paper's ``K``), then one update of ``f``. As in the
paper, ``f`` is pretrained alone and ``r`` is pretrained against the frozen ``f`` first.

The game's losses do not measure how good the pivot is (a weak adversary makes ``L_f - lambda
L_r`` look low), so each epoch is judged by a monitor that needs no adversary: ``L_f + lambda
I(f; z)`` on the validation events, with the mutual information binned
(:func:`~anomalyhunt.pivot.metrics.mutual_information`). With an ideal adversary
``L_r = H(z) - I(f; z)``, so this is the paper's value function up to the constant ``lambda H(z)``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt.gan import mlp
from anomalyhunt.pivot.metrics import mutual_information
from anomalyhunt.pivot.toy import Sample
from anomalyhunt.scores.penalties import mixture_nll
from anomalyhunt.scores.training import (
    Player,
    TrainingResult,
    batched,
    seeded,
    train_network,
)


def build(
    *, hidden: Sequence[int], adversary_hidden: Sequence[int], components: int, seed: int
) -> Any:
    """A fresh classifier and adversary in one module (so the loop keeps and restores both).

    Parameters
    ----------
    hidden : sequence of int
        Widths of the classifier's hidden layers.
    adversary_hidden : sequence of int
        Widths of the adversary's hidden layers.
    components : int
        Gaussians in the adversary's mixture for ``z``.
    seed : int
        Fixes the initial weights.
    """
    from torch import nn

    class PivotNet(nn.Module):
        """Classifier ``f`` (features -> logit) and adversary ``r`` (f -> mixture for z)."""

        def __init__(self) -> None:
            super().__init__()
            self.components = int(components)
            self.classifier = mlp(2, hidden, 1)
            self.adversary = mlp(1, adversary_hidden, 3 * self.components, activation="elu")

        def logit(self, x: Any) -> Any:
            return self.classifier(x).squeeze(-1)

        def adversary_nll(self, prob: Any, z: Any) -> Any:
            """Per-event -ln p_r(z | f), the adversary's loss ``L_r``."""
            return mixture_nll(self.adversary(prob[:, None]), z, self.components)

    with seeded(seed):
        return PivotNet()


def _arrays(sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return sample.x, sample.y, sample.z


def _bce(net: Any, batch: tuple[Any, ...]) -> Any:
    import torch.nn.functional as F

    x, y, _ = batch
    return F.binary_cross_entropy_with_logits(net.logit(x), y, reduction="none")


def _adversary_loss(net: Any) -> Any:
    import torch

    def loss(batch: tuple[Any, ...], generator: Any) -> Any:
        x, _, z = batch
        with torch.no_grad():
            prob = torch.sigmoid(net.logit(x))
        return net.adversary_nll(prob, z)

    return loss


def train_classifier(
    net: Any,
    train: Sample,
    valid: Sample,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    device: str = "cpu",
    checkpoint: str | os.PathLike | None = None,
) -> TrainingResult:
    """Fit ``f`` alone by cross-entropy (the paper's pretraining; with ``lambda = 0``, the result).

    Parameters
    ----------
    net : PivotNet
        From :func:`build`; only its classifier moves.
    train, valid : Sample
        Training events and the validation events that decide when to stop.
    epochs, batch_size, learning_rate, patience, seed, device, checkpoint
        As for :func:`~anomalyhunt.scores.training.train_network`.
    """
    player = Player(net.classifier.parameters(), lambda b, g: _bce(net, b))
    return train_network(
        net,
        [player],
        _arrays(train),
        _arrays(valid),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label="pivot: classifier",
        checkpoint=checkpoint,
    )


def train_adversary(
    net: Any,
    train: Sample,
    valid: Sample,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    device: str = "cpu",
    checkpoint: str | os.PathLike | None = None,
) -> TrainingResult:
    """Fit ``r`` alone against the frozen ``f``: how much ``f`` still tells about ``z``.

    Its best validation loss is ``H(z | f)`` as far as ``r`` can tell; ``H(z)`` (1.419 nats)
    when ``f`` is a pivot. Arguments as for :func:`train_classifier`.
    """
    player = Player(net.adversary.parameters(), _adversary_loss(net))
    return train_network(
        net,
        [player],
        _arrays(train),
        _arrays(valid),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label="pivot: adversary",
        checkpoint=checkpoint,
    )


def train_pivot(
    net: Any,
    train: Sample,
    valid: Sample,
    *,
    strength: float,
    adversary_steps: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    adversary_learning_rate: float,
    patience: int,
    bins: int,
    seed: int,
    device: str = "cpu",
    checkpoint: str | os.PathLike | None = None,
) -> TrainingResult:
    """Play the game: ``r`` minimises ``L_r``, ``f`` minimises ``L_f - strength * L_r``.

    Parameters
    ----------
    net : PivotNet
        From :func:`build`, best with ``f`` and ``r`` pretrained (:func:`train_classifier`,
        :func:`train_adversary`).
    train, valid : Sample
        Training events; validation events for the monitor ``L_f + strength * I(f; z)``.
    strength : float
        The paper's ``lambda``.
    adversary_steps : int
        Adversary updates per minibatch before the classifier's one (the paper's ``K``).
    epochs, batch_size, learning_rate, patience, seed, device, checkpoint
        As for :func:`~anomalyhunt.scores.training.train_network` (``learning_rate``: ``f``'s).
    adversary_learning_rate : float
        Adam step size of ``r``.
    bins : int
        Quantile bins per variable of the monitor's mutual information.
    """
    import torch

    lam = float(strength)

    def classifier_loss(batch: tuple[Any, ...], generator: Any) -> Any:
        x, y, z = batch
        logit = net.logit(x)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
        return bce - lam * net.adversary_nll(torch.sigmoid(logit), z)

    players = [
        Player(
            net.adversary.parameters(),
            _adversary_loss(net),
            steps=adversary_steps,
            learning_rate=adversary_learning_rate,
        ),
        Player(net.classifier.parameters(), classifier_loss),
    ]
    vx, vy = (torch.as_tensor(a, device=device) for a in (valid.x, valid.y))

    def monitor(generator: Any) -> float:
        logit = net.logit(vx)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, vy)
        return float(bce) + lam * mutual_information(logit.cpu().numpy(), valid.z, bins)

    return train_network(
        net,
        players,
        _arrays(train),
        _arrays(valid),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label=f"pivot: game lambda={lam:g}",
        checkpoint=checkpoint,
        monitor=monitor,
    )


def scores(net: Any, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """``f``'s probability of signal for each row of ``x`` (float64)."""
    import torch

    net.eval()
    return batched(lambda b, _: torch.sigmoid(net.logit(b[0])), (x,), device=device)


def adversary_loss(net: Any, sample: Sample, device: str = "cpu") -> float:
    """Mean ``L_r`` (nats) of the adversary on ``sample``."""
    return float(batched(_adversary_loss(net), _arrays(sample), device=device).mean())


def clone(net: Any) -> Any:
    """An independent copy (the pretrained pair is the starting point of every lambda)."""
    return copy.deepcopy(net)
