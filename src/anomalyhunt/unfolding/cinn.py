"""The conditional INN (Bellagente et al., arXiv:2006.06685).

A normalizing flow of coupling blocks (affine with soft-clamped scales, as in the paper, or
rational-quadratic splines), every block's subnetwork reading the detector event, trained by
maximum likelihood with the one training loop. Sampling it many times per detector event gives a
per-event posterior, whose calibration :mod:`.metrics` tests. Built with nflows, as the project's
flows (:mod:`anomalyhunt.scores.flows`, whose builder takes a 1-D context only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.scores.training import TrainingResult, seeded, train_network
from anomalyhunt.unfolding.model import N_OUT, TrainSettings

TRANSFORMS = ("affine", "spline")
#: Soft clamp of the affine couplings' log-scale, |log s| < CLAMP (as in the cINN papers).
CLAMP = 2.0
#: Range of the spline couplings, in standardised residual units (linear tails outside).
TAIL_BOUND = 5.0


def build_cinn(
    n_context: int,
    *,
    blocks: int,
    hidden: int,
    layers: int,
    transform: str,
    bins: int,
    seed: int,
) -> Any:
    """A conditional INN: coupling blocks whose subnetworks read the detector event.

    Parameters
    ----------
    n_context : int
        Condition features (the standardised detector event).
    blocks : int
        Coupling blocks; a fixed random permutation of the features between them.
    hidden : int
        Width of each block's subnetwork (a residual MLP taking the context).
    layers : int
        Residual layers per subnetwork.
    transform : {"affine", "spline"}
        Soft-clamped affine couplings (the cINN paper's) or rational-quadratic splines.
    bins : int
        Spline bins (``transform="spline"``).
    seed : int
        Seeds the initial weights and the permutations.
    """
    import torch
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import (
        AffineCouplingTransform,
        PiecewiseRationalQuadraticCouplingTransform,
    )
    from nflows.transforms.permutations import RandomPermutation

    class SoftClampedAffine(AffineCouplingTransform):
        """Affine coupling with scale exp(CLAMP tanh(s / CLAMP)): expands as well as contracts."""

        def _scale_and_shift(self, params: Any) -> tuple[Any, Any]:
            n = self.num_transform_features
            return torch.exp(CLAMP * torch.tanh(params[:, n:] / CLAMP)), params[:, :n]

    def subnet(n_in: int, n_out: int) -> Any:
        return ResidualNet(
            n_in, n_out, hidden_features=hidden, context_features=n_context, num_blocks=layers
        )

    mask = torch.arange(N_OUT) % 2
    steps: list[Any] = []
    with seeded(seed):
        for i in range(blocks):
            if i > 0:
                steps.append(RandomPermutation(N_OUT))
            m = mask if i % 2 == 0 else 1 - mask
            if transform == "spline":
                steps.append(
                    PiecewiseRationalQuadraticCouplingTransform(
                        m, subnet, num_bins=bins, tails="linear", tail_bound=TAIL_BOUND
                    )
                )
            else:
                steps.append(SoftClampedAffine(m, subnet))
        return Flow(CompositeTransform(steps), StandardNormal([N_OUT]))


def train_cinn(
    net: Any,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    settings: TrainSettings,
    *,
    seed: int,
    device: str,
    checkpoint: str | Path | None = None,
) -> TrainingResult:
    """Maximum-likelihood training of the cINN on (condition, residual) pairs, with the one loop."""
    return train_network(
        net,
        lambda batch, _: -net.log_prob(batch[1], context=batch[0]),
        train,
        valid,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        patience=settings.patience,
        min_delta=1e-5,
        seed=seed,
        device=device,
        label="cinn",
        checkpoint=checkpoint,
    )


def sample_cinn(
    net: Any, condition: np.ndarray, n_samples: int, *, seed: int, device: str
) -> np.ndarray:
    """``n_samples`` residuals per condition row, shape (n_samples, n, 12), float64."""
    import torch

    net.eval()
    chunk = max(1, 200_000 // max(n_samples, 1))
    c_all = torch.as_tensor(condition, dtype=torch.float32, device=torch.device(device))
    parts = []
    with torch.no_grad(), seeded(seed, device):
        for s in range(0, len(c_all), chunk):
            x = net.sample(n_samples, context=c_all[s : s + chunk])  # (n, S, 12)
            parts.append(x.double().cpu().numpy())
    return np.concatenate(parts).transpose(1, 0, 2)
