"""An event variable V(x) trained to carry the most information about the unknown mass.

Kim, Kong, Matchev, Park & Shyamsundar (arXiv:2105.10126) learn V by maximising the mutual
information I(V; theta) between the variable and the parameter theta (here m_A) the events were
simulated with. An auxiliary classifier C(V, theta) is trained to tell pairs from the joint
distribution, (V(x_i), theta_i), from pairs of the product of the marginals, (V(x_i), theta_j)
with theta shuffled within the batch; V and C are one network trained together with the binary
cross-entropy. The optimal classifier's logit is log p(V, theta) / (p(V) p(theta)), so lowering
the loss over V raises a lower bound on I(V; theta) (the loss is log 4 - 2 JS(joint || product)),
and the logits give the estimates of :func:`mutual_information`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from anomalyhunt.gan import mlp
from anomalyhunt.scores.training import (
    TrainingResult,
    batched,
    seeded,
    set_standardisation,
    train_network,
)


class EventVariable(nn.Module):
    """V(x) and the auxiliary classifier C(V, theta) in one module (one loop trains both).

    Parameters
    ----------
    n_features : int
        Inputs per event.
    hidden, classifier_hidden : sequence of int
        Widths of V's and C's hidden layers (ELU: a smooth V).
    """

    def __init__(
        self, n_features: int, *, hidden: Sequence[int], classifier_hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.variable = mlp(n_features, hidden, 1, activation="elu")
        self.classifier = mlp(2, classifier_hidden, 1, activation="elu")
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("theta_mean", torch.zeros(()))
        self.register_buffer("theta_scale", torch.ones(()))

    def forward(self, x: Any) -> Any:
        """V(x), (n, d) -> (n,)."""
        return self.variable((x - self.mean) / self.scale).squeeze(-1)

    def logit(self, v: Any, theta: Any) -> Any:
        """C(V, theta): log p(V, theta) / (p(V) p(theta)) once trained."""
        t = (theta - self.theta_mean) / self.theta_scale
        return self.classifier(torch.stack([v, t], dim=-1)).squeeze(-1)


def shuffled(theta: Any, generator: Any) -> Any:
    """theta permuted within the batch: pairs from the product of the marginals."""
    perm = torch.randperm(len(theta), generator=generator, device=generator.device)
    return theta[perm.to(theta.device)]


def mi_loss(net: EventVariable) -> Any:
    """Per-event loss: joint pair labelled 1, the same V with a shuffled theta labelled 0."""

    def loss(batch: tuple[Any, ...], generator: Any) -> Any:
        x, theta = batch
        v = net(x)
        joint = net.logit(v, theta)
        product = net.logit(v, shuffled(theta, generator))
        return bce(joint, torch.ones_like(joint), reduction="none") + bce(
            product, torch.zeros_like(product), reduction="none"
        )

    return loss


def train_variable(
    features: np.ndarray,
    mass: np.ndarray,
    valid_features: np.ndarray,
    valid_mass: np.ndarray,
    *,
    hidden: Sequence[int],
    classifier_hidden: Sequence[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    device: str = "cpu",
    label: str = "event variable",
    checkpoint: Any = None,
) -> tuple[EventVariable, TrainingResult]:
    """Train V and its classifier on (features, mass) with the one loop; early stopping on the
    validation loss (the classifier's cross-entropy, a bound on the information).

    Parameters
    ----------
    features, mass : arrays (n, d), (n,)
        Training events and the mass each was simulated with.
    valid_features, valid_mass : arrays
        Validation events.
    hidden, classifier_hidden : sequence of int
        Layer widths of V and of the classifier.
    epochs, batch_size, learning_rate, patience
        The loop's settings.
    seed : int
        Seeds the initial weights and the loop.
    device : str
        Where to train.
    label : str
        Names the run in logs and the progress bar.
    checkpoint : path, optional
        The loop's checkpoint file.
    """
    with seeded(seed, device):
        net = EventVariable(features.shape[1], hidden=hidden, classifier_hidden=classifier_hidden)
    set_standardisation(net, features)
    net.theta_mean.fill_(float(np.mean(mass)))
    net.theta_scale.fill_(float(np.std(mass)) or 1.0)
    result = train_network(
        net,
        mi_loss(net),
        (features.astype(np.float32), mass.astype(np.float32)),
        (valid_features.astype(np.float32), valid_mass.astype(np.float32)),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        device=device,
        label=label,
        checkpoint=checkpoint,
    )
    return net, result


def evaluate(net: EventVariable, features: np.ndarray, device: str = "cpu") -> np.ndarray:
    """V of each event (float64)."""
    return batched(lambda b, g: net(b[0]), [features.astype(np.float32)], device=device)


def mutual_information(
    net: EventVariable, v: np.ndarray, mass: np.ndarray, seed: int, device: str = "cpu"
) -> dict[str, float]:
    """The classifier's estimates of I(V; m_A) in nats, on events it was not trained on.

    ``mi_density_ratio``: the mean logit over joint pairs (the optimal logit is the log density
    ratio, so this estimates I itself). ``mi_donsker_varadhan``: E_joint[T] - log E_product[e^T],
    a lower bound on I for any T.
    """
    rng = np.random.default_rng(seed)
    theta = mass.astype(np.float32)
    vs = v.astype(np.float32)
    joint = batched(lambda b, g: net.logit(b[0], b[1]), [vs, theta], device=device)
    other = theta[rng.permutation(len(theta))]
    product = batched(lambda b, g: net.logit(b[0], b[1]), [vs, other], device=device)
    top = product.max()
    log_mean_exp = top + math.log(np.mean(np.exp(product - top)))
    return {
        "mi_density_ratio": float(np.mean(joint)),
        "mi_donsker_varadhan": float(np.mean(joint) - log_mean_exp),
    }
