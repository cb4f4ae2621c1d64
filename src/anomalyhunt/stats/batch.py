"""The sideband fit of many pseudo-experiments at once: how the toys refit the nominal function.

Pseudo-experiments need ~1e5 fits, far too many for Migrad, so :func:`fit_batch` runs a damped
Newton minimisation of the same Poisson likelihood as :func:`stats.fit.fit_function`, in the same
whitened coordinates (:class:`stats.basis.Basis`, built around the nominal fit), for all toys
together, with the same failure rules (run-away, ``LOG_P0_MAX``) and the same step-down. Tested
to agree with Migrad toy by toy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.basis import Basis, deviance_parts
from anomalyhunt.stats.fit import _U_MAX, LOG_P0_MAX, MIN_FIT_BINS
from anomalyhunt.stats.functions import (
    EXP_MAX,
    SQRT_S,
    BackgroundFunction,
    Quadrature,
    bin_masks,
    check_histogram,
    get_function,
    sr_groups,
)


class BatchFit(NamedTuple):
    """Per toy: SR background ``b`` and its fit uncertainty, whether the fit succeeded, the
    background per SR bin of the multi-bin model and its covariance (one bin: b, sigma_b^2), and
    the number of free parameters the fit kept (0 where it failed)."""

    b: np.ndarray  # (T,)
    sigma_b: np.ndarray  # (T,)
    ok: np.ndarray  # (T,) bool
    b_groups: np.ndarray  # (T, G)
    cov_groups: np.ndarray  # (T, G, G)
    n_free: np.ndarray  # (T,) int


def _project_theta(
    theta: np.ndarray, edges: np.ndarray, fit_mask: np.ndarray, k: int, function: BackgroundFunction
) -> np.ndarray:
    """Best k-term approximation (least squares in ln f over the sidebands) of a full theta."""
    if k == len(theta):
        return np.asarray(theta, dtype=float).copy()
    mid = 0.5 * (edges[1:] + edges[:-1])[fit_mask]
    phi = function.features(mid / SQRT_S)
    sol, *_ = np.linalg.lstsq(phi[:, :k], phi @ theta, rcond=None)
    out = np.zeros(len(theta))
    out[:k] = sol
    return out


def _newton_batch(
    basis: Basis, rows: np.ndarray, n_sb: np.ndarray, max_iter: int = 60, edm_tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Damped Newton minimisation of the sideband NLL for many toys at once.

    Returns (u (T, k), inverse Hessian (T, k, k), converged (T,)). The Hessian is the observed one;
    where it is not positive definite its eigenvalues are replaced by their absolute values (a
    standard safeguarded Newton step), and a backtracking line search guarantees descent.
    """
    g_ref = basis.g_ref[rows]  # (S, Q)
    w = basis.weights[rows]
    bmat = basis.B[rows]  # (S, Q, k)
    n_toys, k = n_sb.shape[0], basis.k
    s, q = g_ref.shape
    bb = np.einsum("sqk,sql->sqkl", bmat, bmat).reshape(s * q, k * k)
    b_flat = bmat.reshape(s * q, k)

    def evaluate(u: np.ndarray, n: np.ndarray):
        g = g_ref[None] + (u @ b_flat.T).reshape(-1, s, q)
        t = w[None] * np.exp(np.minimum(g, EXP_MAX))
        mu = t.sum(axis=-1)
        return t, mu, deviance_parts(n, mu).sum(axis=-1)

    u = np.zeros((n_toys, k))
    converged = np.zeros(n_toys, bool)
    hinv = np.zeros((n_toys, k, k))
    active = np.arange(n_toys)
    t, mu, f = evaluate(u, n_sb)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ua, na, ta, mua, fa = u[active], n_sb[active], t[active], mu[active], f[active]
        c = 1.0 - na / mua  # (A, S)
        tb = ta[..., None] * bmat[None]  # (A, S, Q, k)
        dmu = tb.sum(axis=2)  # (A, S, k)
        grad = np.einsum("as,ask->ak", c, dmu)
        h = ((c[..., None] * ta).reshape(-1, s * q) @ bb).reshape(-1, k, k)
        h += np.einsum("as,ask,asl->akl", na / mua**2, dmu, dmu)
        finite = np.isfinite(h).all(axis=(1, 2)) & np.isfinite(grad).all(axis=1)
        if not finite.all():  # numerically broken toys: drop them (they stay not converged)
            keep = np.flatnonzero(finite)
            active, ua, na, ta, mua, fa = (x[keep] for x in (active, ua, na, ta, mua, fa))
            grad, h = grad[keep], h[keep]
            if active.size == 0:
                break
        lam, vec = np.linalg.eigh(h)
        scale = np.abs(lam).max(axis=1, keepdims=True)
        posdef = lam.min(axis=1) > 1e-12 * scale[:, 0]
        lam_mod = np.maximum(np.abs(lam), 1e-10 * scale + 1e-300)
        proj = np.einsum("akj,ak->aj", vec, grad)
        step = -np.einsum("akj,aj->ak", vec, proj / lam_mod)
        edm = 0.5 * np.einsum("aj,aj->a", proj, proj / lam_mod)
        done = posdef & (edm < edm_tol)
        hinv[active] = np.einsum("akj,aj,alj->akl", vec, 1.0 / lam_mod, vec)
        converged[active[done]] = True
        todo = ~done
        idx, ua, step, fa = active[todo], ua[todo], step[todo], fa[todo]
        na = na[todo]
        alpha = np.ones(idx.size)
        accepted = np.zeros(idx.size, bool)
        new_u = ua.copy()
        new_t, new_mu, new_f = t[idx], mu[idx], fa.copy()
        for _ls in range(30):
            pending = ~accepted
            if not pending.any():
                break
            trial = ua[pending] + alpha[pending, None] * step[pending]
            tt, mt, ft = evaluate(trial, na[pending])
            good = np.isfinite(ft) & (ft <= fa[pending] + 1e-12 * np.abs(fa[pending]))
            sel = np.flatnonzero(pending)[good]
            new_u[sel], new_t[sel], new_mu[sel], new_f[sel] = (
                trial[good],
                tt[good],
                mt[good],
                ft[good],
            )
            accepted[sel] = True
            alpha[np.flatnonzero(pending)[~good]] *= 0.5
        u[idx], t[idx], mu[idx], f[idx] = new_u, new_t, new_mu, new_f
        stuck = ~accepted | (np.abs(new_u).max(axis=1) > _U_MAX)
        active = idx[~stuck]
    return u, hinv, converged


def fit_batch(
    name: str,
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    start: np.ndarray,
    sr_bins: int = 1,
    log_offset: np.ndarray | None = None,
    max_free: int | None = None,
) -> BatchFit:
    """Fit family member ``name`` to the sidebands of many toy histograms (T, n_bins) at once.

    Pseudo-experiments must refit with the function the nominal fit chose, or the toys would
    test a different background model than the data: ``start`` holds that fit's params (the
    whitened basis is built around them), ``max_free`` its number of free parameters. A toy
    whose fit fails steps down one free parameter at a time to ``min_free``, as the nominal fit
    does. ``sr_bins`` splits the SR as the multi-bin model does (:func:`functions.sr_groups`).
    ``log_offset`` is the ratio members' uncut spectrum (ignored for the others).
    """
    function = get_function(name)
    if function.ratio and log_offset is None:
        raise AnomalyHuntError(f"fit_batch: {name} needs the uncut spectrum (log_offset)")
    edges, counts = check_histogram(edges, counts, "fit_batch")
    counts = np.atleast_2d(counts)
    start = np.asarray(start, dtype=float)
    n_par = function.n_par
    if start.shape != (n_par,) or not np.all(np.isfinite(start)) or start[0] <= 0:
        raise AnomalyHuntError(f"fit_batch: start must be {n_par} finite params with p0 > 0")
    sr_mask, fit_mask = bin_masks(edges, *sr)
    masks = sr_groups(edges, sr, sr_bins)
    sr_rows = np.flatnonzero(sr_mask)
    groups = [np.flatnonzero(m[sr_rows]) for m in masks]
    n_toys = counts.shape[0]
    out = BatchFit(
        np.full(n_toys, np.nan),
        np.full(n_toys, np.nan),
        np.zeros(n_toys, bool),
        np.full((n_toys, sr_bins), np.nan),
        np.full((n_toys, sr_bins, sr_bins), np.nan),
        np.zeros(n_toys, int),
    )
    rows = np.flatnonzero(fit_mask)
    if rows.size < MIN_FIT_BINS:
        return out
    n_sb = counts[:, rows]
    n_nonempty = (n_sb > 0).sum(axis=1)
    todo = np.flatnonzero(n_sb.sum(axis=1) > 0)
    theta_start = np.array([math.log(start[0]), *start[1:]])
    quad = Quadrature(edges, function, log_offset if function.ratio else None)
    k_min = function.min_free
    k_top = n_par if max_free is None else min(n_par, max(max_free, k_min))
    for k in range(k_top, k_min - 1, -1):
        if todo.size == 0:
            break
        eligible = todo[(n_nonempty[todo] >= k) | (k == k_min)]
        if eligible.size == 0:
            continue
        basis = Basis(quad, rows, _project_theta(theta_start, edges, fit_mask, k, function), k)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            u, hinv, conv = _newton_batch(basis, rows, n_sb[eligible])
            t_sr = basis.terms(u, sr_rows)  # (T, S_sr, Q)
            jac_bins = np.einsum("tsq,sqk->tsk", t_sr, basis.B[sr_rows])  # (T, S_sr, k)
            b_bins = t_sr.sum(axis=2)
            bg = np.stack([b_bins[:, g].sum(axis=1) for g in groups], axis=1)  # (T, G)
            jg = np.stack([jac_bins[:, g].sum(axis=1) for g in groups], axis=1)  # (T, G, k)
            cg = np.einsum("tgk,tkl,thl->tgh", jg, hinv, jg)
            b_k = bg.sum(axis=1)
            jac = jg.sum(axis=1)
            var = np.einsum("tk,tkl,tl->t", jac, hinv, jac)
        good = conv & np.isfinite(b_k) & np.isfinite(var) & (var >= 0)
        good &= np.abs(u).max(axis=1) <= _U_MAX
        good &= np.abs(basis.theta_ref[0] + u @ basis.rinv[0]) <= LOG_P0_MAX
        sel = eligible[good]
        out.b[sel], out.sigma_b[sel], out.ok[sel] = b_k[good], np.sqrt(var[good]), True
        out.b_groups[sel], out.cov_groups[sel], out.n_free[sel] = bg[good], cg[good], k
        todo = np.setdiff1d(todo, sel)
    return out
