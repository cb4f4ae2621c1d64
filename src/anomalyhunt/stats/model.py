"""The pyhf statistical model of one signal region: signal + fitted background with its uncertainty.

The background prediction comes from the sideband fit, so its uncertainty enters as one
Gaussian-constrained nuisance parameter ("bkg_fit", a ``histosys`` between b - sigma_b and
b + sigma_b). :func:`build_multibin_model` splits the SR into mjj bins with one such modifier per
eigenvector of the fit covariance of their predictions (:func:`eigen_variations`).
"""

from __future__ import annotations

import math

import numpy as np
import pyhf

from anomalyhunt.errors import AnomalyHuntError

POI = "mu"
NUISANCE = "bkg_fit"
#: Smallest background the model accepts (a fit can predict exactly zero; pyhf cannot use it).
B_FLOOR = 1e-6


def _poi_upper(b: float, sigma_b: float, s: float, n_obs: float | None) -> float:
    """A POI bound so large that neither a big excess nor a big limit is ever clipped."""
    n = max(b, 0.0) if n_obs is None else max(n_obs, b, 0.0)
    scale = n + 10.0 * math.sqrt(n) + 10.0 + 5.0 * sigma_b
    return 10.0 * scale / s


def build_model(b: float, sigma_b: float, s: float = 1.0, n_obs: float | None = None) -> pyhf.Model:
    """One-bin model: ``mu * s`` signal events on ``b`` background events.

    With ``s = 1`` the POI ``mu`` is the signal yield in events. ``n_obs`` (optional) only widens
    the POI bounds so that the fit of a large excess is never clipped.
    """
    b, sigma_b, s = float(b), float(sigma_b), float(s)
    if not (math.isfinite(b) and math.isfinite(sigma_b) and math.isfinite(s)):
        raise AnomalyHuntError(f"model: b={b}, sigma_b={sigma_b}, s={s} must be finite")
    if b < 0 or sigma_b < 0 or s <= 0:
        raise AnomalyHuntError(f"model: need b >= 0, sigma_b >= 0, s > 0 (got {b}, {sigma_b}, {s})")
    b = max(b, B_FLOOR)
    # pyhf needs a non-degenerate variation; a tiny one is numerically the same as none
    sig = max(sigma_b, 1e-9 * b)
    lo = max(b - sig, B_FLOOR * 1e-3)
    hi = b + sig
    # bounds of the nuisance: never let the background go negative (for alpha < 0 the histosys
    # interpolates linearly to ``lo`` and beyond), and allow any pull an excess could ask for
    alpha_lo = -min(5.0, 0.999 * b / (b - lo))
    alpha_hi = 5.0
    if n_obs is not None and n_obs > b:
        alpha_hi = max(alpha_hi, 1.5 * (n_obs - b) / sig + 1.0)
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": [s],
                        "modifiers": [{"name": POI, "type": "normfactor", "data": None}],
                    },
                    {
                        "name": "background",
                        "data": [b],
                        "modifiers": [
                            {
                                "name": NUISANCE,
                                "type": "histosys",
                                "data": {"hi_data": [hi], "lo_data": [lo]},
                            }
                        ],
                    },
                ],
            }
        ],
        "parameters": [
            {"name": POI, "bounds": [[0.0, _poi_upper(b, sigma_b, s, n_obs)]], "inits": [1.0]},
            {"name": NUISANCE, "bounds": [[alpha_lo, alpha_hi]]},
        ],
    }
    # piecewise-linear interpolation (code0): the background is exactly b + alpha * sigma_b for
    # alpha >= 0, which is what the closed form of significance.z_fast assumes
    return pyhf.Model(
        spec,
        poi_name=POI,
        modifier_settings={
            "histosys": {"interpcode": "code0"},
            "normsys": {"interpcode": "code4"},
        },
    )


def observations(model: pyhf.Model, n_obs: float) -> list[float]:
    """pyhf data for ``model``: the observed count followed by the auxiliary data."""
    return [float(n_obs), *model.config.auxdata]


def eigen_variations(cov: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Independent +1 sigma variations (rows) whose outer products sum to ``cov``.

    Each eigenvector of the fit covariance, scaled by sqrt(eigenvalue), is one uncorrelated
    nuisance parameter moving every SR bin at once (so the bins stay correlated as in the fit).
    Rows are ordered by decreasing eigenvalue and signed so that their largest component is
    positive (reproducible modifier data). Directions with eigenvalue below ``rtol`` x the
    largest carry nothing: one (G, G) matrix loses those rows; a stack (T, G, G), the toys',
    keeps its shape (T, G, G) with those rows zero, which the vectorized test ignores.
    """
    cov = np.asarray(cov, dtype=float)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2] or not np.all(np.isfinite(cov)):
        raise AnomalyHuntError("eigen_variations: need finite square covariance matrices")
    lam, vec = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    lam, vec = lam[..., ::-1], vec[..., ::-1]
    keep = lam > rtol * np.maximum(lam.max(axis=-1, keepdims=True), 0.0)
    var = np.swapaxes(vec * np.sqrt(np.where(keep, lam, 0.0))[..., None, :], -1, -2)  # rows
    idx = np.argmax(np.abs(var), axis=-1)
    sign = np.sign(np.take_along_axis(var, idx[..., None], axis=-1))
    var = var * np.where(sign == 0, 1.0, sign)
    return var[keep] if cov.ndim == 2 else var


def build_multibin_model(
    b: np.ndarray,
    variations: np.ndarray,
    signal: np.ndarray,
    n_obs: np.ndarray | None = None,
) -> pyhf.Model:
    """SR split into bins: ``mu * signal`` on background ``b``, one histosys per variation.

    ``signal`` is the expected signal per bin for mu = 1 (its sum fixes the POI's unit),
    ``variations`` (n_var, n_bins) the eigen-variations of the sideband fit (see
    :func:`eigen_variations`), each one Gaussian-constrained nuisance correlated across the bins.
    With one bin and one variation sigma_b this is :func:`build_model`.
    """
    b = np.maximum(np.asarray(b, dtype=float), B_FLOOR)
    signal = np.asarray(signal, dtype=float)
    variations = np.atleast_2d(np.asarray(variations, dtype=float)).reshape(-1, b.size)
    if b.ndim != 1 or signal.shape != b.shape or not np.all(np.isfinite(variations)):
        raise AnomalyHuntError("multi-bin model: b, signal and variations must match and be finite")
    if np.any(signal < 0) or signal.sum() <= 0:
        raise AnomalyHuntError("multi-bin model: the signal shape must be >= 0 and not empty")
    modifiers = []
    parameters = []
    excess = 0.0 if n_obs is None else float(np.max(np.asarray(n_obs, dtype=float) - b))
    for j, v in enumerate(variations):
        name = f"{NUISANCE}_{j}"
        # keep every bin's background positive along this direction on its own
        with np.errstate(divide="ignore"):
            lo_a = np.where(v > 0, -b / np.where(v > 0, v, 1.0), -np.inf).max()
            hi_a = np.where(v < 0, b / np.where(v < 0, -v, 1.0), np.inf).min()
        big = max(5.0, 1.5 * excess / max(np.abs(v).max(), 1e-12) + 1.0)
        alpha_lo = max(-big, 0.999 * lo_a)
        alpha_hi = min(big, 0.999 * hi_a)
        modifiers.append(
            {
                "name": name,
                "type": "histosys",
                "data": {
                    "hi_data": (b + v).tolist(),
                    "lo_data": np.maximum(b - v, B_FLOOR * 1e-3).tolist(),
                },
            }
        )
        parameters.append({"name": name, "bounds": [[float(alpha_lo), float(alpha_hi)]]})
    total_n = b.sum() if n_obs is None else max(float(np.sum(n_obs)), b.sum())
    sig_var = float(np.sum(variations, axis=0).sum()) if variations.size else 0.0
    upper = _poi_upper(float(b.sum()), abs(sig_var), float(signal.sum()), total_n)
    spec = {
        "channels": [
            {
                "name": "sr",
                "samples": [
                    {
                        "name": "signal",
                        "data": signal.tolist(),
                        "modifiers": [{"name": POI, "type": "normfactor", "data": None}],
                    },
                    {"name": "background", "data": b.tolist(), "modifiers": modifiers},
                ],
            }
        ],
        "parameters": [{"name": POI, "bounds": [[0.0, upper]], "inits": [1.0]}, *parameters],
    }
    return pyhf.Model(
        spec,
        poi_name=POI,
        modifier_settings={"histosys": {"interpcode": "code0"}, "normsys": {"interpcode": "code4"}},
    )


def multibin_observations(model: pyhf.Model, n_obs: np.ndarray) -> list[float]:
    """pyhf data for a multi-bin model: the observed counts followed by the auxiliary data."""
    return [*(float(v) for v in n_obs), *model.config.auxdata]
