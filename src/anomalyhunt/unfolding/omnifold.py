"""OmniFold (Andreassen et al., arXiv:1911.09107): unfolding by iterated classifier reweighting.

Iteration n, with generator-level weights nu_{n-1} (nu_0 = 1) on the simulated events:

1. *push*: a classifier tells the measured data from the simulated detector events weighted by
   nu_{n-1}; its likelihood ratio p / (1 - p) at each simulated detector event, times nu_{n-1},
   gives omega_n, weights under which simulation matches data at detector level;
2. *pull*: a classifier tells the simulated parton events weighted by omega_n from the same
   events unweighted; its likelihood ratio at each parton event is nu_n, a function of the
   parton event alone, i.e. a proper reweighting of the generator.

The unfolded result is the simulated truth weighted by nu_n. The classifiers are the project's
(:mod:`anomalyhunt.scores.classifiers`), which weight both classes equally, so p / (1 - p) is
the ratio of normalised densities. Likelihood ratios are clipped to [1/clip, clip] so a few
events in a region the data barely populate cannot carry the result; weights are normalised to
mean 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.classifiers import CLASSIFIERS, BinaryClassifier

log = logging.getLogger(__name__)

#: The classifiers OmniFold may use (plain binary classifiers of scores/classifiers.py).
KINDS = ("hgb", "mlp")
#: Fraction of each classifier's events held out for its early stopping.
VALID_FRACTION = 0.2


def make_classifier(kind: str, *, seed: int, device: str, threads: int) -> BinaryClassifier:
    """One of the project's classifiers ("hgb" or "mlp") with its library settings."""
    if kind not in KINDS:
        raise AnomalyHuntError(
            f"unfolding.omnifold.classifier '{kind}' unknown; use one of {KINDS}"
        )
    return CLASSIFIERS[kind](seed=seed, device=device, threads=threads)


def likelihood_ratio(
    x0: np.ndarray,
    w0: np.ndarray,
    x1: np.ndarray,
    w1: np.ndarray,
    *,
    kind: str,
    clip: float,
    seed: int,
    device: str,
    threads: int,
) -> np.ndarray:
    """Estimated p1(x) / p0(x) (normalised densities) at the points ``x0``, from a classifier.

    Parameters
    ----------
    x0, w0 : arrays
        Class-0 events and weights (the sample being reweighted).
    x1, w1 : arrays
        Class-1 events and weights (the target).
    kind : str
        The classifier ("hgb" or "mlp").
    clip : float
        Ratios are clipped to [1/clip, clip].
    seed, device, threads
        For the classifier and the train/validation split.
    """
    X = np.concatenate([x0, x1])
    y = np.concatenate([np.zeros(len(x0)), np.ones(len(x1))])
    w = np.concatenate([w0, w1])
    rng = np.random.default_rng(derive_seed(seed, "split"))
    valid = rng.random(len(X)) < VALID_FRACTION
    clf = make_classifier(kind, seed=seed, device=device, threads=threads)
    clf.fit(X[~valid], y[~valid], X[valid], y[valid], w[~valid], w[valid])
    p = np.clip(clf.predict_proba(x0), 1e-6, 1 - 1e-6)
    return np.clip(p / (1 - p), 1.0 / clip, clip)


@dataclass
class OmniFoldResult:
    """Weights of every iteration.

    Attributes
    ----------
    push : list of ndarray
        omega_n: detector-level weights of the simulated events (step 1).
    pull : list of ndarray
        nu_n: generator-level weights of the simulated events (step 2): the unfolding.
    """

    push: list[np.ndarray] = field(default_factory=list)
    pull: list[np.ndarray] = field(default_factory=list)


def _normalised(w: np.ndarray) -> np.ndarray:
    return w / w.mean()


def omnifold(
    sim_truth: np.ndarray,
    sim_det: np.ndarray,
    data_det: np.ndarray,
    *,
    iterations: int,
    classifier: str,
    weight_clip: float,
    seed: int,
    device: str,
    threads: int,
) -> OmniFoldResult:
    """Run OmniFold (module docstring) and return the weights of every iteration.

    Parameters
    ----------
    sim_truth, sim_det : ndarray, shape (n_sim, d_truth) and (n_sim, d_det)
        The simulated pairs (parton and detector features of the same events).
    data_det : ndarray, shape (n_data, d_det)
        The measured events.
    iterations : int
        Push/pull iterations.
    classifier : str
        "hgb" or "mlp" (:mod:`anomalyhunt.scores.classifiers`).
    weight_clip : float
        Likelihood ratios are clipped to [1/weight_clip, weight_clip].
    seed, device, threads
        Seeds (one per step and iteration), torch device, CPU threads.
    """
    if len(sim_truth) != len(sim_det):
        raise ValueError("omnifold: sim_truth and sim_det must hold the same events")
    result = OmniFoldResult()
    nu = np.ones(len(sim_truth))
    ones_data = np.ones(len(data_det))
    ones_sim = np.ones(len(sim_truth))
    common = {"kind": classifier, "clip": weight_clip, "device": device, "threads": threads}
    for it in range(int(iterations)):
        omega = _normalised(
            nu
            * likelihood_ratio(
                sim_det, nu, data_det, ones_data, seed=derive_seed(seed, it, 1), **common
            )
        )
        nu = _normalised(
            likelihood_ratio(
                sim_truth, ones_sim, sim_truth, omega, seed=derive_seed(seed, it, 2), **common
            )
        )
        result.push.append(omega)
        result.pull.append(nu)
        log.info("omnifold: iteration %d done", it + 1)
    return result


def weighted_moments(x: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted mean and standard deviation of a 1-D sample."""
    x = np.ravel(x)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    mean = float(np.sum(w * x) / np.sum(w))
    return mean, float(np.sqrt(np.sum(w * (x - mean) ** 2) / np.sum(w)))
