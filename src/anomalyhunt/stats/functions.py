"""The family of smooth dijet background functions, their bin integrals, and the binning helpers.

Every member is log-linear in theta = (ln p0, p1, ...) of x = mjj / 13 TeV, ln f = phi(x) @ theta:

    dijet3: p0 (1-x)^p1 / x^p2
    dijet4: p0 (1-x)^p1 / x^(p2 + p3 ln x)                  (the standard dijet function)
    dijet5: p0 (1-x)^p1 / x^(p2 + p3 ln x + p4 ln^2 x)
    ua2:    p0 x^-p1 exp(-p2 x - p3 x^2)
    ratioK: N(mjj) exp(theta0 + theta1 ln x + ...)           (K terms; N = the uncut spectrum)

The ratio members describe the spectrum after a score cut as the uncut spectrum of the same
window (per bin, fixed: ``log_offset``) times a smooth cut efficiency, the pass/fail-ratio method
of resonance searches with a tagger: one to three parameters, so the signal region is predicted
far more tightly than by a free dijet fit of the post-cut sidebands, which a resonance's tails
pull upwards.

Fixing a member's last parameters at zero gives its lower orders (dijet4 with p3 = 0 is dijet3),
which is how a fit steps down when the data cannot constrain every parameter (``stats.fit``).
Expected counts are bin integrals (4-point Gauss-Legendre per bin, far more accurate than the
statistical precision), never the density at the bin centre. Fitting lives in ``stats.fit``, the
choice among members in ``stats.select``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError

#: Centre-of-mass energy (TeV) that makes x = mjj / SQRT_S dimensionless.
SQRT_S = 13.0

_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
#: ln f is clipped here before exp, so a run-away trial point of a fit gives a huge, finite value.
EXP_MAX = 700.0
_EDGE_TOL = 1e-9


def _dijet_features(order: int) -> Callable[[np.ndarray], np.ndarray]:
    def features(x: np.ndarray) -> np.ndarray:
        lx = np.log(x)
        cols = [np.ones_like(x), np.log1p(-x), -lx, -lx * lx, -lx * lx * lx]
        return np.stack(cols[:order], axis=-1)

    return features


def _ratio_features(order: int) -> Callable[[np.ndarray], np.ndarray]:
    def features(x: np.ndarray) -> np.ndarray:
        lx = np.log(x)
        return np.stack([np.ones_like(x), lx, lx * lx][:order], axis=-1)

    return features


def _ua2_features(x: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), -np.log(x), -x, -x * x], axis=-1)


@dataclass(frozen=True)
class BackgroundFunction:
    """One member of the family: ln f(x) = features(x) @ theta, theta = (ln p0, p1, ...)."""

    name: str
    n_par: int
    features: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    formula: str = ""
    #: A ratio member: expected counts are the uncut spectrum (``log_offset``) times the function.
    ratio: bool = False

    @property
    def min_free(self) -> int:
        """Fewest free parameters a step-down may leave: a ratio member's normalisation alone is a
        background (the uncut shape), a dijet-like function needs a slope as well."""
        return 1 if self.ratio else 2

    def density(self, mjj: np.ndarray, params: Sequence[float]) -> np.ndarray:
        """Events per TeV at ``mjj`` (TeV) for public params (p0, p1, ...)."""
        theta = params_to_theta(params)
        x = np.asarray(mjj, dtype=float) / SQRT_S
        return np.exp(np.minimum(self.features(x) @ theta, EXP_MAX))

    def expected(self, edges: np.ndarray, params: Sequence[float]) -> np.ndarray:
        """Bin-integrated expected counts over ``edges``."""
        quad = Quadrature(np.asarray(edges, dtype=float), self)
        return quad.terms(params_to_theta(params)).sum(axis=-1)


FUNCTIONS: dict[str, BackgroundFunction] = {
    "dijet3": BackgroundFunction("dijet3", 3, _dijet_features(3), "p0 (1-x)^p1 / x^p2"),
    "dijet4": BackgroundFunction("dijet4", 4, _dijet_features(4), "p0 (1-x)^p1 / x^(p2 + p3 ln x)"),
    "dijet5": BackgroundFunction(
        "dijet5", 5, _dijet_features(5), "p0 (1-x)^p1 / x^(p2 + p3 ln x + p4 ln^2 x)"
    ),
    "ua2": BackgroundFunction("ua2", 4, _ua2_features, "p0 x^-p1 exp(-p2 x - p3 x^2)"),
    **{
        f"ratio{k}": BackgroundFunction(
            f"ratio{k}",
            k,
            _ratio_features(k),
            "N(mjj) x " + ["p0", "p0 x^p1", "p0 x^(p1 + p2 ln x)"][k - 1],
            ratio=True,
        )
        for k in (1, 2, 3)
    },
}


def get_function(name: str) -> BackgroundFunction:
    """The family member called ``name`` (a clear error for a typo in a config)."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise AnomalyHuntError(
            f"unknown background function '{name}' (known: {', '.join(FUNCTIONS)})"
        ) from None


def ratio_offset(uncut: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-bin log-offset of the ratio members: ln(uncut events per TeV); empty bins stay empty."""
    density = np.asarray(uncut, dtype=float) / np.diff(np.asarray(edges, dtype=float))
    with np.errstate(divide="ignore"):
        return np.where(density > 0, np.log(np.maximum(density, 1e-300)), -EXP_MAX)


def params_to_theta(params: Sequence[float]) -> np.ndarray:
    """(p0, p1, ...) -> (ln p0, p1, ...): the log-linear coordinates."""
    p = np.asarray(params, dtype=float)
    return np.concatenate([[math.log(p[0])], p[1:]])


def theta_to_params(theta: np.ndarray) -> np.ndarray:
    """(ln p0, p1, ...) -> (p0, p1, ...)."""
    with np.errstate(over="ignore"):
        return np.concatenate([[np.exp(theta[0])], theta[1:]])


class Quadrature:
    """Gauss-Legendre nodes of every bin and one function's feature matrix there.

    ``offset`` (n_bins, 1) is the ratio members' ln(uncut density), zero for the others.
    """

    def __init__(
        self, edges: np.ndarray, function: BackgroundFunction, log_offset: np.ndarray | None = None
    ):
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        nodes = mid[:, None] + half[:, None] * _GL_X[None, :]
        self.weights = half[:, None] * _GL_W[None, :]  # (n_bins, Q)
        self.phi = function.features(nodes / SQRT_S)  # (n_bins, Q, n_par)
        n_bins = edges.size - 1
        self.offset = (
            np.zeros((n_bins, 1))
            if log_offset is None
            else np.asarray(log_offset, dtype=float).reshape(n_bins, 1)
        )

    def terms(self, theta: np.ndarray) -> np.ndarray:
        """w e^g per bin and node, (n_bins, Q)."""
        return self.weights * np.exp(np.minimum(self.phi @ theta + self.offset, EXP_MAX))

    def mu_and_jac(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts per bin and d mu / d theta, (n_bins,), (n_bins, n_par)."""
        t = self.terms(theta)
        return t.sum(axis=-1), np.einsum("bq,bqk->bk", t, self.phi)


def check_histogram(edges: Any, counts: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of strictly increasing edges inside (0, sqrt(s)) and finite counts >= 0.

    ``counts`` may be one histogram or a stack of them (the toys); bad inputs raise with ``where``.
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise AnomalyHuntError(f"{where}: bin edges must be a strictly increasing 1D array")
    if counts.ndim == 0 or counts.shape[-1] != edges.size - 1:
        raise AnomalyHuntError(
            f"{where}: {counts.shape[-1] if counts.ndim else 0} bin counts do not match "
            f"{edges.size - 1} bins"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise AnomalyHuntError(f"{where}: counts must be finite and non-negative")
    if edges[0] <= 0 or edges[-1] >= SQRT_S:
        raise AnomalyHuntError(f"{where}: mjj edges must lie inside (0, {SQRT_S}) TeV")
    return edges, counts


def bin_masks(edges: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(bins entirely inside [lo, hi], bins entirely outside it): the SR and the fitted sidebands.

    The only place that decides which bins a sideband fit sees, so the fit, its prediction and
    the toys can never disagree about a bin on an SR boundary.
    """
    edges = np.asarray(edges, dtype=float)
    left, right = edges[:-1], edges[1:]
    inside = (left >= lo - _EDGE_TOL) & (right <= hi + _EDGE_TOL)
    outside = (right <= lo + _EDGE_TOL) | (left >= hi - _EDGE_TOL)
    return inside, outside


def sr_groups(edges: np.ndarray, sr: tuple[float, float], n_groups: int) -> list[np.ndarray]:
    """Masks over the fit bins of the ``n_groups`` mjj bins the SR is split into (multi-bin model).

    Contiguous runs of fit bins, as equal as the fit binning allows; the nominal test and its
    pseudo-experiments both split here, so they always agree.
    """
    inside, _ = bin_masks(edges, *sr)
    rows = np.flatnonzero(inside)
    if n_groups < 1 or n_groups > rows.size:
        raise AnomalyHuntError(
            f"bumphunt.sr_bins = {n_groups}: the SR {sr[0]}-{sr[1]} TeV holds {rows.size} fit bins "
            f"of bumphunt.bin_width, so it can be split into 1 to {rows.size} bins"
        )
    masks = []
    for part in np.array_split(rows, n_groups):
        m = np.zeros(np.asarray(edges).size - 1, dtype=bool)
        m[part] = True
        masks.append(m)
    return masks


def json_clean(x: Any) -> Any:
    """JSON-able: arrays to lists, NaN/inf to None."""
    if x is None:
        return None
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else None
    return [json_clean(v) for v in arr]
