"""The 2-D toy of Louppe, Kagan, Cranmer (arXiv:1611.01046, section 5.1), generated in milliseconds.

Background (``y = 0``): ``x ~ N((0, 0), [[1, -0.5], [-0.5, 1]])``.
Signal (``y = 1``): ``x ~ N((1, 1 + z), I)``, with the nuisance ``z ~ N(0, 1)``.

The nuisance shifts the second coordinate of the signal only (the paper's convention); every event
carries a drawn ``z``, which for background events has no effect. Averaged over ``z`` the signal is
``N((1, 1), diag(1, 2))``, so the best classifier that ignores ``z`` (the Bayes-optimal one of the
marginal densities, :func:`optimal_log_ratio`) leans on ``x2`` and moves with ``z``; a pivot must
give up most of ``x2``. :func:`conditional` draws the events at one fixed ``z`` (the paper's
``Z = -1, 0, +1`` in units of its standard deviation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Mean and covariance of the background.
BACKGROUND_MEAN = np.array([0.0, 0.0])
BACKGROUND_COV = np.array([[1.0, -0.5], [-0.5, 1.0]])
#: Mean of the signal at z = 0 (covariance: the identity); z adds to the second coordinate.
SIGNAL_MEAN = np.array([1.0, 1.0])
#: Standard deviation of the nuisance z (mean 0).
Z_SIGMA = 1.0
#: Differential entropy of z ~ N(0, 1) in nats, 0.5 ln(2 pi e): the loss of the best adversary
#: against a pivot (it can only predict the prior).
Z_ENTROPY = 0.5 * math.log(2.0 * math.pi * math.e * Z_SIGMA**2)


@dataclass(frozen=True)
class Sample:
    """Events of the toy: features ``x`` (n, 2), class ``y`` (0/1) and nuisance ``z``."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def _draw(n_signal: int, n_background: int, z: np.ndarray, rng: np.random.Generator) -> Sample:
    bkg = rng.multivariate_normal(BACKGROUND_MEAN, BACKGROUND_COV, size=n_background)
    sig = rng.normal(size=(n_signal, 2)) + SIGNAL_MEAN
    sig[:, 1] += z[n_background:]
    x = np.vstack([bkg, sig])
    y = np.r_[np.zeros(n_background), np.ones(n_signal)]
    order = rng.permutation(len(y))
    return Sample(
        x=x[order].astype(np.float32),
        y=y[order].astype(np.float32),
        z=z[order].astype(np.float32),
    )


def generate(n: int, rng: np.random.Generator) -> Sample:
    """``n`` events, half signal and half background (shuffled), each with its own ``z``.

    Parameters
    ----------
    n : int
        Events in all (signal gets ``n // 2``, background the rest).
    rng : numpy.random.Generator
        The only source of randomness (seed it with ``Branch.seed``).
    """
    if n < 2:
        raise ValueError(f"the toy needs at least 2 events, got {n}")
    n_sig = n // 2
    z = rng.normal(0.0, Z_SIGMA, size=n)
    return _draw(n_sig, n - n_sig, z, rng)


def conditional(n: int, z: float, rng: np.random.Generator) -> Sample:
    """``n`` events (half signal) all at the nuisance value ``z``: the paper's ``p(f(X) | Z = z)``."""
    n_sig = n // 2
    return _draw(n_sig, n - n_sig, np.full(n, float(z)), rng)


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = np.asarray(x, dtype=np.float64) - mean
    prec = np.linalg.inv(cov)
    return -0.5 * np.einsum("ij,jk,ik->i", d, prec, d) - 0.5 * math.log(
        (2 * math.pi) ** 2 * np.linalg.det(cov)
    )


def optimal_log_ratio(x: np.ndarray) -> np.ndarray:
    """ln p(x | signal) / p(x | background) with ``z`` integrated out: the best classifier.

    It is what an unconstrained classifier (``lambda = 0``) converges to, and the reference for
    its ROC and cross-entropy.
    """
    sig_cov = np.diag([1.0, 1.0 + Z_SIGMA**2])
    return _log_gauss(x, SIGNAL_MEAN, sig_cov) - _log_gauss(x, BACKGROUND_MEAN, BACKGROUND_COV)


def optimal_cross_entropy(sample: Sample) -> float:
    """Mean binary cross-entropy (nats) of the best classifier on a half-signal ``sample``.

    Estimates the conditional entropy H(Y | X): no classifier's ``L_f`` goes below it.
    """
    t = optimal_log_ratio(sample.x)
    y = sample.y.astype(np.float64)
    # -[y ln s(t) + (1 - y) ln(1 - s(t))] = softplus(-t) for y = 1, softplus(t) for y = 0
    return float(np.mean(np.logaddexp(0.0, np.where(y > 0.5, -t, t))))
