"""The pyhf statistical model of one signal region: signal + fitted background with its uncertainty.

The background prediction comes from the sideband fit, so its uncertainty enters as one
Gaussian-constrained nuisance parameter ("bkg_fit", a ``histosys`` between b - sigma_b and
b + sigma_b). A multi-bin signal region with one such modifier per eigenvector of the fit
covariance is a direct extension: more bins in ``data`` and more ``histosys`` modifiers.
"""

from __future__ import annotations

import math

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
