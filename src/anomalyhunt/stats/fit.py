"""Smooth background fits to the mjj sidebands and their interpolation into the signal region.

The background shape is the standard dijet function

    f(mjj) = p0 (1 - x)^p1 / x^(p2 + p3 ln x),   x = mjj / sqrt(s),

which is log-linear in theta = (ln p0, p1, p2, p3). Over a 1.2 TeV window the four terms are
nearly collinear, so the fits work in an internal basis ``u`` in which the Fisher information at
the starting point is the identity (a QR decomposition of the weighted design matrix). That makes
Migrad (and the vectorized Newton fit used for pseudo-experiments) equally well behaved for 500k
events and for 10 events. Expected counts are bin integrals (4-point Gauss-Legendre per bin, far
more accurate than the statistical precision), never the density at the bin centre.

When the sidebands cannot constrain four parameters (very low counts: the four-parameter fit does
not converge or runs away), the fit steps down to three (p3 = 0) and then two (p2 = p3 = 0) free
parameters; ``n_free`` and ``message`` record it. The vectorized path applies the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from iminuit import Minuit
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError

#: Centre-of-mass energy (TeV) that makes x = mjj / SQRT_S dimensionless.
SQRT_S = 13.0

_N_PAR = 4
_MIN_SIDEBAND_BINS = 5
_EDGE_TOL = 1e-9
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
_EXP_MAX = 700.0
_U_MAX = 1e4  # |u| beyond this (in units of the starting-point sigma) is a run-away fit
# |ln p0| beyond this: the public params (and their covariance) are no longer representable in
# float64; such a fit sits far out along a flat direction, so it counts as unconstrained
_LOG_P0_MAX = 300.0
_NCALL = 3000


def _features(mjj: np.ndarray) -> np.ndarray:
    """Basis of ln f in theta = (ln p0, p1, p2, p3): (1, ln(1-x), -ln x, -(ln x)^2)."""
    x = np.asarray(mjj, dtype=float) / SQRT_S
    lx = np.log(x)
    return np.stack([np.ones_like(x), np.log1p(-x), -lx, -lx * lx], axis=-1)


def dijet(mjj: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The dijet density (events per TeV) at ``mjj`` (TeV) for params (p0, p1, p2, p3)."""
    p = np.asarray(params, dtype=float)
    x = np.asarray(mjj, dtype=float) / SQRT_S
    lx = np.log(x)
    return p[0] * np.exp(p[1] * np.log1p(-x) - (p[2] + p[3] * lx) * lx)


def _theta_to_params(theta: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.array([np.exp(theta[0]), theta[1], theta[2], theta[3]], dtype=float)


def _safe_exp(g: np.ndarray) -> np.ndarray:
    return np.exp(np.minimum(g, _EXP_MAX))


def bin_masks(edges: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(bins entirely inside [lo, hi], bins entirely outside it)."""
    left, right = edges[:-1], edges[1:]
    inside = (left >= lo - _EDGE_TOL) & (right <= hi + _EDGE_TOL)
    outside = (right <= lo + _EDGE_TOL) | (left >= hi - _EDGE_TOL)
    return inside, outside


class _Basis:
    """Quadrature nodes of every bin and the well-scaled internal parametrisation.

    ln f at the nodes is ``g_ref + B @ u`` with theta = theta_ref + M @ u.
    """

    def __init__(
        self,
        edges: np.ndarray,
        fit_mask: np.ndarray,
        theta_ref: np.ndarray,
        k: int,
        features: Callable[[np.ndarray], np.ndarray] = _features,
        log_offset: np.ndarray | None = None,
    ):
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        self.nodes = mid[:, None] + half[:, None] * _GL_X[None, :]  # (n_bins, Q)
        self.weights = half[:, None] * _GL_W[None, :]
        phi = features(self.nodes)  # (n_bins, Q, n_par)
        n_par = phi.shape[-1]
        self.k = k
        self.fit_mask = fit_mask
        self.theta_ref = np.asarray(theta_ref, dtype=float).copy()
        self.theta_ref[k:] = 0.0
        self.g_ref = phi @ self.theta_ref  # (n_bins, Q)
        if log_offset is not None:
            self.g_ref = self.g_ref + np.asarray(log_offset, dtype=float)[:, None]
        e_ref = self.weights * _safe_exp(self.g_ref)
        mu_ref = e_ref.sum(axis=1)
        # Fisher-weighted design over the sideband bins (bin-averaged features)
        w = mu_ref[fit_mask]
        w = np.maximum(w, 1e-3 * max(w.mean(), 1e-300)) if w.size else w
        avg = np.einsum("bq,bqj->bj", e_ref, phi[..., :k]) / np.maximum(mu_ref, 1e-300)[:, None]
        a = np.sqrt(w)[:, None] * avg[fit_mask]
        _, r = np.linalg.qr(a)
        # fix signs so the transform is deterministic
        r = r * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))[:, None]
        rinv = np.linalg.solve(r, np.eye(k))
        self.M = np.zeros((n_par, k))
        self.M[:k, :] = rinv
        self.B = phi[..., :k] @ rinv  # (n_bins, Q, k)
        self.cond = float(np.linalg.cond(r))

    def theta(self, u: np.ndarray) -> np.ndarray:
        return self.theta_ref + self.M @ u

    def terms(self, u: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Quadrature terms w e^g for parameter vectors u (..., k): shape (..., n_rows, Q)."""
        g = self.g_ref[rows] + np.einsum("bqk,...k->...bq", self.B[rows], u)
        return self.weights[rows] * _safe_exp(g)

    def expected(self, u: np.ndarray) -> np.ndarray:
        return self.terms(u).sum(axis=-1)

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        """d expected / d u per bin, (n_bins, k)."""
        return np.einsum("bq,bqk->bk", self.terms(u), self.B)


def _nll_parts(n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Half the Poisson deviance per bin: mu - n + n ln(n/mu) (0 at mu = n)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu), 0.0)
    return mu - n + log_term


def _log_linear_start(
    edges: np.ndarray, counts: np.ndarray, fit_mask: np.ndarray, k: int
) -> np.ndarray:
    """theta from a weighted least-squares fit of ln(density) in the sideband bins: a start only."""
    mid = 0.5 * (edges[1:] + edges[:-1])[fit_mask]
    width = np.diff(edges)[fit_mask]
    n = counts[fit_mask]
    y = np.log((n + 0.5) / width)
    w = np.sqrt(n + 0.5)
    phi = _features(mid)[:, :k]
    sol, *_ = np.linalg.lstsq(w[:, None] * phi, w * y, rcond=None)
    theta = np.zeros(_N_PAR)
    theta[:k] = sol
    # the least-squares normalisation is biased at low counts: match the sideband total exactly
    basis_mu = (np.diff(edges)[fit_mask] * np.exp(phi @ sol)).sum()
    if n.sum() > 0 and np.isfinite(basis_mu) and basis_mu > 0:
        theta[0] += math.log(n.sum() / basis_mu)
    return theta


def _project_theta(
    theta: np.ndarray,
    edges: np.ndarray,
    fit_mask: np.ndarray,
    k: int,
    features: Callable[[np.ndarray], np.ndarray] = _features,
) -> np.ndarray:
    """Best k-parameter approximation (least squares in ln f over the sidebands) of a full theta."""
    if k == len(theta):
        return np.asarray(theta, dtype=float).copy()
    mid = 0.5 * (edges[1:] + edges[:-1])[fit_mask]
    phi = features(mid)
    y = phi @ theta
    sol, *_ = np.linalg.lstsq(phi[:, :k], y, rcond=None)
    out = np.zeros(len(theta))
    out[:k] = sol
    return out


@dataclass
class SidebandFit:
    """A sideband fit and everything a later stage needs to use or judge it.

    ``chi2`` is the deviance (likelihood-ratio) chi2, 2 sum[mu - n + n ln(n/mu)], over the sideband
    bins with expected > 0: unlike Pearson's it stays meaningful for bins with few events.
    """

    edges: np.ndarray
    counts: np.ndarray
    fit_mask: np.ndarray
    sr: tuple[float, float]
    params: np.ndarray
    cov: np.ndarray
    expected: np.ndarray
    valid: bool
    message: str
    chi2: float
    ndf: int
    chi2_pvalue: float
    n_free: int = 0
    _basis: _Basis | None = field(default=None, repr=False, compare=False)
    _u: np.ndarray | None = field(default=None, repr=False, compare=False)
    _cov_u: np.ndarray | None = field(default=None, repr=False, compare=False)

    def predict(self, lo: float, hi: float) -> tuple[float, float]:
        """Expected background in the bins inside [lo, hi] and its 1-sigma fit uncertainty."""
        inside, _ = bin_masks(self.edges, lo, hi)
        if not self.valid:
            return float("nan"), float("nan")
        b = float(self.expected[inside].sum())
        if self._basis is not None:
            # internal, well-conditioned parametrisation: no cancellation in J C J^T
            jac = self._basis.jacobian(self._u)[inside].sum(axis=0)
            var = float(jac @ self._cov_u @ jac)
        else:
            e = self.edges
            half = 0.5 * np.diff(e)[inside]
            nodes = 0.5 * (e[1:] + e[:-1])[inside][:, None] + half[:, None] * _GL_X
            terms = half[:, None] * _GL_W * dijet(nodes, self.params)
            dtheta = np.einsum("bq,bqj->j", terms, _features(nodes))
            jac = dtheta / np.array([self.params[0], 1.0, 1.0, 1.0])
            var = float(jac @ self.cov @ jac)
        return b, math.sqrt(max(var, 0.0))

    def predict_bins(self, masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Background in each group of bins and the covariance of those predictions.

        The multi-bin SR model needs the correlations between its bins: one fit moves them all.
        """
        n = len(masks)
        if not self.valid or self._basis is None:
            return np.full(n, np.nan), np.full((n, n), np.nan)
        jac_all = self._basis.jacobian(self._u)
        b = np.array([self.expected[m].sum() for m in masks])
        jac = np.stack([jac_all[m].sum(axis=0) for m in masks])
        return b, jac @ self._cov_u @ jac.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (NaN and inf become None)."""

        def clean(x: Any) -> Any:
            arr = np.asarray(x, dtype=float)
            out = np.where(np.isfinite(arr), arr, np.nan).tolist()
            if isinstance(out, list):
                return _nan_to_none(out)
            return out if math.isfinite(out) else None

        return {
            "edges": clean(self.edges),
            "counts": clean(self.counts),
            "fit_mask": [bool(v) for v in self.fit_mask],
            "sr": [float(self.sr[0]), float(self.sr[1])],
            "params": clean(self.params),
            "cov": clean(self.cov),
            "expected": clean(self.expected),
            "valid": bool(self.valid),
            "message": self.message,
            "chi2": clean(self.chi2),
            "chi2_kind": "deviance",
            "ndf": int(self.ndf),
            "chi2_pvalue": clean(self.chi2_pvalue),
            "n_free": int(self.n_free),
        }


def _nan_to_none(values: list) -> list:
    return [_nan_to_none(v) if isinstance(v, list) else (None if v != v else v) for v in values]


def _check_inputs(
    edges: Any, counts: Any, sr: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise AnomalyHuntError("sideband fit: bin edges must be a strictly increasing 1D array")
    if counts.shape[-1] != edges.size - 1:
        raise AnomalyHuntError(
            f"sideband fit: {counts.shape[-1]} bin counts do not match {edges.size - 1} bins"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise AnomalyHuntError("sideband fit: counts must be finite and non-negative")
    if edges[0] <= 0 or edges[-1] >= SQRT_S:
        raise AnomalyHuntError(f"sideband fit: mjj edges must lie inside (0, {SQRT_S}) TeV")
    lo, hi = sr
    if not (edges[0] < lo < hi < edges[-1]):
        raise AnomalyHuntError(
            f"sideband fit: signal region [{lo}, {hi}] must lie inside the binned range "
            f"[{edges[0]}, {edges[-1]}]"
        )
    return edges, counts


def _invalid(edges, counts, fit_mask, sr, message: str) -> SidebandFit:
    nan4 = np.full(_N_PAR, np.nan)
    return SidebandFit(
        edges=edges,
        counts=counts,
        fit_mask=fit_mask,
        sr=(float(sr[0]), float(sr[1])),
        params=nan4,
        cov=np.full((_N_PAR, _N_PAR), np.nan),
        expected=np.zeros(edges.size - 1),
        valid=False,
        message=message,
        chi2=float("nan"),
        ndf=0,
        chi2_pvalue=float("nan"),
    )


def _migrad(basis: _Basis, n_sb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Minimise the sideband Poisson NLL in the internal basis; (u, cov_u, problem or '')."""
    rows = np.flatnonzero(basis.fit_mask)

    def nll(u: np.ndarray) -> float:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            mu = basis.terms(u, rows).sum(axis=-1)
            value = float(_nll_parts(n_sb, mu).sum())
        return value if math.isfinite(value) else 1e300

    def grad(u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            t = basis.terms(u, rows)
            mu = t.sum(axis=-1)
            out = np.einsum("b,bq,bqk->k", 1.0 - n_sb / mu, t, basis.B[rows])
        return np.where(np.isfinite(out), out, 0.0)

    return minimize(nll, grad, basis.k)


def minimize(
    nll: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    n_par: int,
    ncall: int = _NCALL,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Migrad (retried once) and Hesse from u = 0 in a well-scaled basis; (u, cov_u, problem or '').

    Shared by every binned background fit, so all of them reject the same failures: no
    convergence, a run-away (parameters the fitted bins do not constrain), an inaccurate or
    non-positive-definite covariance.
    """
    m = Minuit(nll, np.zeros(n_par), grad=grad)
    m.errordef = Minuit.LIKELIHOOD
    m.print_level = 0
    m.tol = 1e-4
    m.strategy = 1
    m.migrad(ncall=ncall)
    if not m.valid:
        m.migrad(ncall=ncall)
    u = np.array(m.values)
    if not m.valid:
        return None, None, f"Migrad did not converge (EDM {m.fmin.edm:.3g})"
    if not np.all(np.isfinite(u)) or np.abs(u).max() > _U_MAX:
        return None, None, "the fit ran away (parameters unconstrained by the fitted bins)"
    m.hesse()
    if m.covariance is None or not m.accurate:
        return None, None, "the Hesse covariance is not accurate"
    cov = np.array(m.covariance)
    if not np.all(np.isfinite(cov)) or np.linalg.eigvalsh(cov).min() <= 0:
        return None, None, "the covariance is not positive definite"
    return u, cov, ""


def fit_sidebands(edges: np.ndarray, counts: np.ndarray, sr: tuple[float, float]) -> SidebandFit:
    """Binned Poisson maximum-likelihood fit of the dijet function to the sideband bins.

    Bins entirely outside ``sr`` are fitted; the signal region is never looked at, so the
    prediction there is a genuine interpolation. Never raises for a fit that fails: the result is
    marked ``valid=False`` with the reason. Bad inputs (shapes, SR outside the range) raise
    :class:`AnomalyHuntError`.
    """
    edges, counts = _check_inputs(edges, counts, sr)
    if counts.ndim != 1:
        raise AnomalyHuntError("fit_sidebands: counts must be one histogram (use the batch fit)")
    _, fit_mask = bin_masks(edges, *sr)
    n_bins_sb = int(fit_mask.sum())
    n_sb = counts[fit_mask]
    if n_bins_sb < _MIN_SIDEBAND_BINS:
        return _invalid(
            edges,
            counts,
            fit_mask,
            sr,
            f"only {n_bins_sb} sideband bins (need at least {_MIN_SIDEBAND_BINS})",
        )
    if n_sb.sum() <= 0:
        return _invalid(edges, counts, fit_mask, sr, "the sidebands hold no events")

    problems = []
    n_nonempty = int((n_sb > 0).sum())
    for k in (4, 3, 2):
        if k > n_nonempty and k > 2:
            problems.append(f"{k} parameters: only {n_nonempty} non-empty sideband bins")
            continue
        try:
            start = _log_linear_start(edges, counts, fit_mask, k)
            basis = _Basis(edges, fit_mask, start, k)
            u, cov_u, problem = _migrad(basis, n_sb)
        except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
            u, cov_u, problem = None, None, f"numerical failure ({exc})"
        if u is None:
            problems.append(f"{k} parameters: {problem}")
            continue
        theta = basis.theta(u)
        if abs(theta[0]) > _LOG_P0_MAX:
            problems.append(f"{k} parameters: unconstrained (|ln p0| = {abs(theta[0]):.0f})")
            continue
        params = _theta_to_params(theta)
        cov_theta = basis.M @ cov_u @ basis.M.T
        jac = np.diag([params[0], 1.0, 1.0, 1.0])
        cov = jac @ cov_theta @ jac.T
        expected = basis.expected(u)
        mu_sb = expected[fit_mask]
        pos = mu_sb > 0
        chi2 = float(2.0 * _nll_parts(n_sb[pos], mu_sb[pos]).sum())
        ndf = int(pos.sum()) - k
        pvalue = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
        message = "ok" if k == _N_PAR else f"ok with {k} free parameters ({'; '.join(problems)})"
        return SidebandFit(
            edges=edges,
            counts=counts,
            fit_mask=fit_mask,
            sr=(float(sr[0]), float(sr[1])),
            params=params,
            cov=cov,
            expected=expected,
            valid=True,
            message=message,
            chi2=chi2,
            ndf=ndf,
            chi2_pvalue=pvalue,
            n_free=k,
            _basis=basis,
            _u=u,
            _cov_u=cov_u,
        )
    return _invalid(edges, counts, fit_mask, sr, "sideband fit failed: " + "; ".join(problems))


def _newton_batch(
    basis: _Basis, n_sb: np.ndarray, max_iter: int = 60, edm_tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Damped Newton minimisation of the sideband NLL for many toys at once.

    Returns (u (T, k), inverse Hessian (T, k, k), converged (T,)). The Hessian is the observed one;
    where it is not positive definite its eigenvalues are replaced by their absolute values (a
    standard safeguarded Newton step), and a backtracking line search guarantees descent.
    """
    rows = np.flatnonzero(basis.fit_mask)
    g_ref = basis.g_ref[rows]  # (S, Q)
    w = basis.weights[rows]
    bmat = basis.B[rows]  # (S, Q, k)
    n_toys, k = n_sb.shape[0], basis.k
    s, q = g_ref.shape
    bb = np.einsum("sqk,sql->sqkl", bmat, bmat).reshape(s * q, k * k)
    b_flat = bmat.reshape(s * q, k)

    def evaluate(u: np.ndarray, n: np.ndarray):
        g = g_ref[None] + (u @ b_flat.T).reshape(-1, s, q)
        t = w[None] * np.exp(np.minimum(g, _EXP_MAX))
        mu = t.sum(axis=-1)
        return t, mu, _nll_parts(n, mu).sum(axis=-1)

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


def fit_sidebands_batch(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    start: np.ndarray,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
    sr_groups: int = 1,
    log_p0_max: float = _LOG_P0_MAX,
    log_offset: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """The sideband fit of :func:`fit_sidebands` for many toy histograms at once, vectorized.

    Pseudo-experiments need ~1e5 fits, far too many for Migrad, so this runs a damped Newton
    minimisation of the same Poisson likelihood, in the same internal basis (built around
    ``start``, the nominal fit's params), for all toys together. It follows the same step-down
    rule (n -> n-1 -> ... -> 2 free parameters). Returns the signal-region background b, its fit
    uncertainty sigma_b and whether the fit succeeded, per toy.

    ``features`` (ln f = features(mjj) @ theta, theta = (ln p0, p1, ...)) selects another member
    of the function family than the default dijet4; ``start`` then holds that function's params.
    With ``sr_groups`` > 1 the SR is split into that many equal groups of bins and two more
    arrays come back: b per group (T, G) and its covariance (T, G, G), for the multi-bin model.
    ``log_p0_max`` is the |ln p0| beyond which a toy's fit counts as run away (match the nominal
    fitter's rule). ``log_offset`` (per bin) multiplies the function by a fixed spectrum (the ratio
    members of ``stats.functions``), whose fits may step down to a single free normalisation.
    """
    edges, counts = _check_inputs(edges, counts, sr)
    counts = np.atleast_2d(counts)
    feats = _features if features is None else features
    start = np.asarray(start, dtype=float)
    n_par = feats(np.array([1.0])).shape[-1]
    if start.shape != (n_par,) or not np.all(np.isfinite(start)) or start[0] <= 0:
        raise AnomalyHuntError(
            f"fit_sidebands_batch: start must be {n_par} finite params with p0 > 0"
        )
    sr_mask, fit_mask = bin_masks(edges, *sr)
    n_toys = counts.shape[0]
    b = np.full(n_toys, np.nan)
    sigma = np.full(n_toys, np.nan)
    ok = np.zeros(n_toys, bool)
    sr_rows = np.flatnonzero(sr_mask)
    groups = np.array_split(np.arange(sr_rows.size), sr_groups)
    if sr_groups > 1 and min(g.size for g in groups) == 0:
        raise AnomalyHuntError(f"fit_sidebands_batch: {sr_rows.size} SR bins cannot form {sr_groups} groups")
    b_g = np.full((n_toys, sr_groups), np.nan)
    cov_g = np.full((n_toys, sr_groups, sr_groups), np.nan)

    def result() -> tuple[np.ndarray, ...]:
        return (b, sigma, ok) if sr_groups == 1 else (b, sigma, ok, b_g, cov_g)

    if fit_mask.sum() < _MIN_SIDEBAND_BINS:
        return result()
    n_sb = counts[:, fit_mask]
    n_nonempty = (n_sb > 0).sum(axis=1)
    todo = np.flatnonzero(n_sb.sum(axis=1) > 0)
    theta_start = np.array([math.log(start[0]), *start[1:]])
    k_min = 1 if log_offset is not None else 2
    for k in range(n_par, k_min - 1, -1):
        if todo.size == 0:
            break
        eligible = todo[(n_nonempty[todo] >= k) | (k == k_min)]
        if eligible.size == 0:
            continue
        basis = _Basis(edges, fit_mask, _project_theta(theta_start, edges, fit_mask, k, feats), k, feats,
                       log_offset)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            u, hinv, conv = _newton_batch(basis, n_sb[eligible])
            t_sr = basis.terms(u, sr_rows)  # (T, S_sr, Q)
            jac_bins = np.einsum("tsq,sqk->tsk", t_sr, basis.B[sr_rows])  # (T, S_sr, k)
            b_bins = t_sr.sum(axis=2)
            b_k = b_bins.sum(axis=1)
            jac = jac_bins.sum(axis=1)
            var = np.einsum("tk,tkl,tl->t", jac, hinv, jac)
            if sr_groups > 1:
                bg = np.stack([b_bins[:, g].sum(axis=1) for g in groups], axis=1)
                jg = np.stack([jac_bins[:, g].sum(axis=1) for g in groups], axis=1)  # (T, G, k)
                cg = np.einsum("tgk,tkl,thl->tgh", jg, hinv, jg)
        good = conv & np.isfinite(b_k) & np.isfinite(var) & (var >= 0)
        good &= np.abs(u).max(axis=1) <= _U_MAX
        good &= np.abs(basis.theta_ref[0] + u @ basis.M[0]) <= log_p0_max
        sel = eligible[good]
        b[sel], sigma[sel], ok[sel] = b_k[good], np.sqrt(var[good]), True
        if sr_groups > 1:
            b_g[sel], cov_g[sel] = bg[good], cg[good]
        todo = np.setdiff1d(todo, sel)
    return result()
