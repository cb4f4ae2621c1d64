"""Local discovery significance and CLs upper limits for one signal region (pyhf, asymptotic).

``discovery`` and ``upper_limit`` run the full pyhf machinery on the model of
:mod:`anomalyhunt.stats.model`. ``z_fast`` is the same model's sqrt(q0) in closed form, for
pseudo-experiments: with one bin and one Gaussian-constrained nuisance the conditional maximum
likelihood estimate of the nuisance solves a quadratic, so no fit is needed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pyhf
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.model import (
    B_FLOOR,
    NUISANCE,
    build_model,
    build_multibin_model,
    eigen_variations,
    multibin_observations,
    observations,
)

log = logging.getLogger(__name__)

#: Below this p-value the asymptotic p0 underflows in float64; z then comes from sqrt(q0).
_P_MIN = 1e-300


def _check(n_obs: float, b: float, sigma_b: float) -> tuple[float, float, float]:
    n_obs, b, sigma_b = float(n_obs), float(b), float(sigma_b)
    if not all(math.isfinite(v) for v in (n_obs, b, sigma_b)):
        raise AnomalyHuntError(
            f"significance: n_obs={n_obs}, b={b}, sigma_b={sigma_b} must be finite"
        )
    if n_obs < 0 or b < 0 or sigma_b < 0:
        raise AnomalyHuntError(
            f"significance: n_obs={n_obs}, b={b}, sigma_b={sigma_b} must not be negative"
        )
    return n_obs, b, sigma_b


def _signal_scale(n_obs: float, b: float, sigma_b: float) -> float:
    """Events per unit of the POI used internally, so the fitted POI is O(1) for any count.

    pyhf's default optimizer (SLSQP) stops early when the POI is in the thousands; a yield of
    order the background fluctuation, sqrt(b + sigma_b^2), keeps every fit well scaled. Results
    are converted back to events.
    """
    return math.sqrt(max(n_obs, b) + sigma_b * sigma_b) + 1.0


def _init_pars(model: pyhf.Model, mu: float, alpha: float = 0.0) -> list[float]:
    init = list(model.config.suggested_init())
    init[model.config.poi_index] = mu
    init[model.config.par_slice(NUISANCE).start] = alpha
    return init


def discovery(n_obs: float, b: float, sigma_b: float) -> dict[str, float]:
    """p0, Z and q0 of the background-only hypothesis (pyhf ``q0``, asymptotic formulae).

    A deficit (n_obs <= b) is no evidence for a signal: q0 = 0, Z = 0, p0 = 0.5.
    """
    n_obs, b, sigma_b = _check(n_obs, b, sigma_b)
    if n_obs <= max(b, B_FLOOR):
        return {"p0": 0.5, "z": 0.0, "q0": 0.0}
    scale = _signal_scale(n_obs, b, sigma_b)
    model = build_model(b, sigma_b, s=scale, n_obs=n_obs)
    data = observations(model, n_obs)
    alpha0 = _alpha_hat0(n_obs, b, sigma_b)
    # The free fit starts at its optimum (mu = n - b, alpha = 0). SLSQP can stall in the
    # conditional fit of a huge excess started at alpha = 0: if pyhf's conditional fit is worse
    # than the closed-form point, the test is repeated from there.
    for alpha_init in (0.0, alpha0):
        with np.errstate(divide="ignore", invalid="ignore"):  # CLs = CLsb / CLb is unused here
            p0, _tails, calc = pyhf.infer.hypotest(
                0.0,
                data,
                model,
                init_pars=_init_pars(model, (n_obs - b) / scale, alpha_init),
                test_stat="q0",
                return_tail_probs=True,
                return_calculator=True,
            )
        fitted = calc.fitted_pars
        logl_fixed = float(model.logpdf(fitted.fixed_poi_fit_to_data, data)[0])
        logl_point = float(model.logpdf(_init_pars(model, 0.0, alpha0), data)[0])
        if logl_fixed >= logl_point - 1e-6 * max(1.0, abs(logl_point)):
            break
        log.debug("conditional fit stalled (n=%g, b=%g, sigma_b=%g): retrying", n_obs, b, sigma_b)
    logl_free = float(model.logpdf(fitted.free_fit_to_data, data)[0])
    mu_hat = float(fitted.free_fit_to_data[model.config.poi_index])
    q0 = max(0.0, -2.0 * (logl_fixed - logl_free)) if mu_hat > 0 else 0.0
    p0 = float(p0)
    z = float(stats.norm.isf(p0)) if p0 > _P_MIN else math.sqrt(q0)
    return {"p0": p0, "z": max(z, 0.0), "q0": q0}


def upper_limit(n_obs: float, b: float, sigma_b: float, cl: float = 0.95) -> dict[str, Any]:
    """Observed and expected CLs upper limits on the signal yield (events) at confidence ``cl``.

    Uses pyhf's ``qtilde`` asymptotic CLs and toms748 root finding, bracketed by POI bounds wide
    enough for any count from ~1 to ~1e6 events. ``expected_band`` is (-2, -1, 0, +1, +2) sigma.
    """
    n_obs, b, sigma_b = _check(n_obs, b, sigma_b)
    if not 0.0 < cl < 1.0:
        raise AnomalyHuntError(f"upper_limit: cl = {cl} must lie between 0 and 1")
    scale = _signal_scale(n_obs, b, sigma_b)
    model = build_model(b, sigma_b, s=scale, n_obs=n_obs)
    data = observations(model, n_obs)
    # Bracket away from mu = 0, where CLs is 0/0 for a deficit (NaN stops toms748); pyhf halves
    # the lower and doubles the upper end until they bracket the CLs level.
    mu_excess = max(n_obs - b, 0.0) / scale
    obs, band = pyhf.infer.intervals.upper_limits.toms748_scan(
        data,
        model,
        1e-2,
        mu_excess + 10.0,
        level=1.0 - cl,
        rtol=1e-4,
        init_pars=_init_pars(model, mu_excess + 1.0),
    )
    obs = float(obs) * scale
    band = [float(v) * scale for v in band]
    return {"observed": obs, "expected": band[2], "expected_band": band, "cl": cl}


def _alpha_hat0(n_obs: float, b: float, sigma_b: float) -> float:
    """Conditional MLE of the nuisance at mu = 0 (see :func:`z_fast`)."""
    b = max(b, B_FLOOR)
    excess = max(n_obs - b, 0.0)
    a = b + sigma_b * sigma_b
    return 2.0 * sigma_b * excess / (a + math.sqrt(a * a + 4.0 * sigma_b * sigma_b * excess))


def z_fast(n_obs: np.ndarray, b: np.ndarray, sigma_b: np.ndarray) -> np.ndarray:
    """sqrt(q0) of the one-bin model in closed form, vectorized (for pseudo-experiments).

    The nuisance alpha (background b + alpha sigma_b, constraint N(0 | alpha, 1)) profiled at
    mu = 0 solves sigma alpha^2 + (b + sigma^2) alpha - sigma (n - b) = 0; the unconditional fit
    has mu_hat = n - b, alpha_hat = 0. So q0 = 2 [n ln(n / B) - (n - B)] + alpha^2 with
    B = b + alpha sigma, and 0 for a deficit. Agrees with :func:`discovery` (tested).
    """
    n = np.asarray(n_obs, dtype=float)
    b = np.maximum(np.asarray(b, dtype=float), B_FLOOR)
    sig = np.asarray(sigma_b, dtype=float)
    n, b, sig = np.broadcast_arrays(n, b, sig)
    excess = np.maximum(n - b, 0.0)
    a = b + sig * sig
    # stable root of the quadratic: alpha = 2 sigma (n - b) / (a + sqrt(a^2 + 4 sigma^2 (n - b)))
    alpha = 2.0 * sig * excess / (a + np.sqrt(a * a + 4.0 * sig * sig * excess))
    big_b = b + alpha * sig
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / big_b), 0.0)
    q0 = 2.0 * (log_term - (n - big_b)) + alpha * alpha
    q0 = np.where((n > b) & np.isfinite(q0), np.maximum(q0, 0.0), 0.0)
    return np.sqrt(q0)


def _newton_poisson(
    n: np.ndarray,
    base: np.ndarray,
    design: np.ndarray,
    constrained: np.ndarray,
    x0: np.ndarray,
    max_iter: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise sum(lam - n ln lam) + |x_c|^2 / 2 with lam = base + x @ design, for many toys.

    n, base: (T, G); design: (T, P, G); constrained: (P,) bool (unit Gaussian constraint);
    x0: (T, P). The NLL is convex in x (lam is linear), so a damped Newton step with a
    backtracking line search that keeps lam > 0 converges. Returns (x, nll) per toy.
    """
    pen = constrained.astype(float)

    def nll(x: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        lam = base[rows] + np.einsum("tp,tpg->tg", x, design[rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            val = (lam - np.where(n[rows] > 0, n[rows] * np.log(lam), 0.0)).sum(axis=1)
        val = val + 0.5 * (pen * x * x).sum(axis=1)
        return np.where(np.all(lam > 0, axis=1) & np.isfinite(val), val, np.inf)

    x = x0.copy()
    f = nll(x)
    active = np.flatnonzero(np.isfinite(f))
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa, d = x[active], design[active]
        lam = base[active] + np.einsum("tp,tpg->tg", xa, d)
        r = 1.0 - n[active] / lam
        grad = np.einsum("tg,tpg->tp", r, d) + pen * xa
        hess = np.einsum("tg,tpg,tqg->tpq", n[active] / lam**2, d, d) + np.diag(pen)
        hess += 1e-12 * np.eye(len(pen))  # an unconstrained direction without events
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        decrement = -(grad * step).sum(axis=1)
        alpha = np.ones(active.size)
        new_x, new_f = xa.copy(), f[active].copy()
        pending = np.ones(active.size, bool)
        for _ls in range(40):
            if not pending.any():
                break
            idx = np.flatnonzero(pending)
            trial = xa[idx] + alpha[idx, None] * step[idx]
            ft = nll(trial, active[idx])
            good = ft <= f[active[idx]] + 1e-12 * np.abs(f[active[idx]])
            new_x[idx[good]], new_f[idx[good]] = trial[good], ft[good]
            pending[idx[good]] = False
            alpha[idx[~good]] *= 0.5
        x[active], f[active] = new_x, new_f
        active = active[(decrement > 1e-10) & ~pending]
    return x, f


def _multi_inputs(
    n_obs: np.ndarray, b: np.ndarray, variations: np.ndarray, signal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(T, G) counts and floored background, (T, V, G) variations, (T, G) unit-sum signal shape."""
    n = np.atleast_2d(np.asarray(n_obs, dtype=float))
    b = np.maximum(np.atleast_2d(np.asarray(b, dtype=float)), B_FLOOR)
    t, g = n.shape
    var = np.asarray(variations, dtype=float).reshape(t, -1, g)
    s = np.broadcast_to(np.asarray(signal, dtype=float), (t, g))
    return n, b, var, s / s.sum(axis=1, keepdims=True)


def z_fast_multi(
    n_obs: np.ndarray, b: np.ndarray, variations: np.ndarray, signal: np.ndarray
) -> np.ndarray:
    """sqrt(q0) of the multi-bin model (:func:`model.build_multibin_model`) for many toys at once.

    n_obs, b: (T, G) counts and background per SR bin; variations: (T, V, G) eigen-variations
    (rows of zeros are harmless); signal: (G,) or (T, G) signal shape. Linear histosys (pyhf
    code0 with symmetric variations) makes the likelihood convex, so profiling is a few Newton
    steps, no fit library. q0 = 0 where the best-fit signal is not positive. Agrees with
    :func:`discovery_multi` (tested); for one bin it is :func:`z_fast`.
    """
    n, b, var, s = _multi_inputs(n_obs, b, variations, signal)
    t, n_var = var.shape[:2]
    # conditional fit (mu = 0): nuisances only
    x0, f0 = _newton_poisson(n, b, var, np.ones(n_var, bool), np.zeros((t, n_var)))
    # free fit: start at mu = total excess with the conditional nuisances
    design = np.concatenate([s[:, None, :], var], axis=1)
    start = np.concatenate([np.maximum(n.sum(axis=1) - b.sum(axis=1), 0.0)[:, None], x0], axis=1)
    ok = np.all(b + start[:, :1] * s + np.einsum("tp,tpg->tg", x0, var) > 0, axis=1)
    start[~ok, 0] = 0.0
    x1, f1 = _newton_poisson(n, b, design, np.r_[False, np.ones(n_var, bool)], start)
    q0 = 2.0 * (f0 - f1)
    q0 = np.where((x1[:, 0] > 0) & np.isfinite(q0), np.maximum(q0, 0.0), 0.0)
    return np.sqrt(q0)


def _multibin_setup(
    n_obs: np.ndarray, b: np.ndarray, cov: np.ndarray, signal: np.ndarray
) -> tuple[pyhf.Model, list[float], float, np.ndarray]:
    n_obs = np.asarray(n_obs, dtype=float)
    b = np.asarray(b, dtype=float)
    cov = np.asarray(cov, dtype=float)
    signal = np.asarray(signal, dtype=float)
    if not (n_obs.shape == b.shape == signal.shape and cov.shape == (b.size, b.size)):
        raise AnomalyHuntError("multi-bin test: n_obs, b, signal (G,) and cov (G, G) must match")
    if not (
        np.all(np.isfinite(n_obs))
        and np.all(np.isfinite(b))
        and np.all(n_obs >= 0)
        and np.all(b >= 0)
    ):
        raise AnomalyHuntError("multi-bin test: counts and background must be finite and >= 0")
    variations = eigen_variations(cov)
    scale = _signal_scale(float(n_obs.sum()), float(b.sum()), math.sqrt(max(cov.sum(), 0.0)))
    model = build_multibin_model(b, variations, scale * signal / signal.sum(), n_obs)
    return model, multibin_observations(model, n_obs), scale, variations


def _nuisance_init(model: pyhf.Model, mu: float, alphas: np.ndarray) -> list[float]:
    init = list(model.config.suggested_init())
    init[model.config.poi_index] = mu
    for j, a in enumerate(alphas):
        sl = model.config.par_slice(f"{NUISANCE}_{j}")
        lo, hi = model.config.suggested_bounds()[sl.start]
        init[sl.start] = float(min(max(a, lo), hi))
    return init


def discovery_multi(
    n_obs: np.ndarray, b: np.ndarray, cov: np.ndarray, signal: np.ndarray
) -> dict[str, Any]:
    """p0, Z, q0 and the fitted signal yield of the multi-bin SR model (pyhf, asymptotic q0).

    ``b`` and ``cov`` are the sideband fit's prediction per SR bin and their covariance (decomposed
    into eigen-variations), ``signal`` the signal shape over the SR bins (any normalisation: the
    POI is the signal yield in the SR, in events). Fits start from the closed-form solution of
    :func:`z_fast_multi`, so pyhf's optimiser only has to confirm it.
    """
    model, data, scale, variations = _multibin_setup(n_obs, b, cov, signal)
    n_obs, b = np.asarray(n_obs, dtype=float), np.asarray(b, dtype=float)
    shape = np.asarray(signal, dtype=float) / np.sum(signal)
    n_var = variations.shape[0]
    x_c, _ = _newton_poisson(
        n_obs[None],
        np.maximum(b, B_FLOOR)[None],
        variations[None],
        np.ones(n_var, bool),
        np.zeros((1, n_var)),
    )
    design = np.concatenate([shape[None], variations])[None]
    mu0 = max(float(n_obs.sum() - b.sum()), 0.0)
    x_f, _ = _newton_poisson(
        n_obs[None],
        np.maximum(b, B_FLOOR)[None],
        design,
        np.r_[False, np.ones(n_var, bool)],
        np.r_[mu0, x_c[0]][None],
    )
    mu_start = max(float(x_f[0, 0]), 0.0) / scale
    free, nll_free = pyhf.infer.mle.fit(
        data, model, init_pars=_nuisance_init(model, mu_start, x_f[0, 1:]), return_fitted_val=True
    )
    fixed, nll_fixed = pyhf.infer.mle.fixed_poi_fit(
        0.0, data, model, init_pars=_nuisance_init(model, 0.0, x_c[0]), return_fitted_val=True
    )
    mu_hat = float(free[model.config.poi_index])
    q0 = max(0.0, float(nll_fixed) - float(nll_free)) if mu_hat > 0 else 0.0
    z = math.sqrt(q0)
    return {
        "p0": float(stats.norm.sf(z)) if q0 > 0 else 0.5,
        "z": z,
        "q0": q0,
        "signal_hat": mu_hat * scale,
        "n_variations": int(n_var),
    }


def upper_limit_multi(
    n_obs: np.ndarray, b: np.ndarray, cov: np.ndarray, signal: np.ndarray, cl: float = 0.95
) -> dict[str, Any]:
    """Observed and expected CLs upper limits on the SR signal yield (events), multi-bin model."""
    if not 0.0 < cl < 1.0:
        raise AnomalyHuntError(f"upper_limit_multi: cl = {cl} must lie between 0 and 1")
    model, data, scale, _ = _multibin_setup(n_obs, b, cov, signal)
    mu_excess = max(float(np.sum(n_obs) - np.sum(b)), 0.0) / scale
    obs, band = pyhf.infer.intervals.upper_limits.toms748_scan(
        data,
        model,
        1e-2,
        mu_excess + 10.0,
        level=1.0 - cl,
        rtol=1e-4,
        init_pars=_nuisance_init(model, mu_excess + 1.0, np.zeros(0)),
    )
    band = [float(v) * scale for v in band]
    return {"observed": float(obs) * scale, "expected": band[2], "expected_band": band, "cl": cl}


def fit_signal_multi(
    n_obs: np.ndarray, b: np.ndarray, variations: np.ndarray, signal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best-fit SR signal yield (may be negative) and its Hesse error, for many toys at once.

    Same inputs and likelihood as :func:`z_fast_multi`; used to check that an injected bump is
    recovered without bias and with the quoted uncertainty (pulls).
    """
    n, b, var, s = _multi_inputs(n_obs, b, variations, signal)
    t, n_var = var.shape[:2]
    design = np.concatenate([s[:, None, :], var], axis=1)
    pen = np.r_[False, np.ones(n_var, bool)]
    start = np.zeros((t, n_var + 1))
    start[:, 0] = np.maximum(n.sum(axis=1) - b.sum(axis=1), 0.0)
    x, _ = _newton_poisson(n, b, design, pen, start)
    lam = b + np.einsum("tp,tpg->tg", x, design)
    hess = np.einsum("tg,tpg,tqg->tpq", n / lam**2, design, design) + np.diag(pen.astype(float))
    cov = np.linalg.inv(hess + 1e-12 * np.eye(n_var + 1))
    return x[:, 0], np.sqrt(np.maximum(cov[:, 0, 0], 0.0))


def xsec_limits(
    limit: dict[str, Any] | None, signal_eff: float | None, lumi_fb: float
) -> dict[str, Any] | None:
    """Yield limits as cross sections: sigma x eff x A = N / L, and sigma x A = N / (L eff).

    A (preselection and SR containment) is never known without a signal model; the score-cut
    efficiency eff only where truth labels exist.
    """
    if not limit or "observed" not in limit:
        return None
    band = [v / lumi_fb for v in limit["expected_band"]]
    out: dict[str, Any] = {
        "luminosity_fb": lumi_fb,
        "signal_efficiency": signal_eff,
        "sigma_eff_acc_fb": {
            "observed": limit["observed"] / lumi_fb,
            "expected": limit["expected"] / lumi_fb,
            "expected_band": band,
        },
        "sigma_acc_fb": None,
    }
    if signal_eff:
        out["sigma_acc_fb"] = {
            "observed": limit["observed"] / (lumi_fb * signal_eff),
            "expected": limit["expected"] / (lumi_fb * signal_eff),
            "expected_band": [v / signal_eff for v in band],
        }
    return out
