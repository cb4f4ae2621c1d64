"""Binned Poisson fits of one background function to the sidebands: Migrad, and vectorized for toys.

Every member of ``stats.functions`` is log-linear in theta, and over a ~2 TeV window its terms are
nearly collinear, so both fitters work in whitened coordinates ``u`` in which the Fisher
information at the starting point is the identity (a QR decomposition of the weighted Jacobian,
:class:`Basis`). That makes Migrad (:func:`fit_function`) and the damped Newton fit of many
pseudo-experiments at once (:func:`stats.batch.fit_batch`) equally well behaved for 500k events
and for 10.

When the data cannot constrain every parameter (the fit does not converge or runs away), a fit
with ``step_down`` fixes the function's last parameters at zero, one at a time, down to
``BackgroundFunction.min_free``; ``n_free`` and ``message`` record it. ``max_free`` caps the free
parameters from the start: :func:`max_free_parameters` is the rule that says how many a sparse
spectrum can constrain. Fits that fail are recorded with the reason, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from iminuit import Minuit
from scipy import special, stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.basis import Basis, deviance_parts
from anomalyhunt.stats.functions import (
    SQRT_S,
    BackgroundFunction,
    Quadrature,
    bin_masks,
    check_histogram,
    get_function,
    json_clean,
    theta_to_params,
)

# |ln p0| beyond this: p0 = exp(theta0) is no longer representable in float64 (~709), so neither
# fit.json nor the toys (which restart from the params) could use the fit. Over a narrow window
# ln p0 is nearly degenerate with the powers of ln x and legitimately large (dijet5 on an uncut
# spectrum often passes 300); the fit works in whitened coordinates and predicts well, so only a
# non-representable p0 counts as a run-away. (The dijet4 fit once stopped at 300; the family and
# the spurious-signal truth used 700, which keeps the default search's numbers unchanged. The
# public covariance, p0^2 var(ln p0), may then overflow: it is written as null.)
LOG_P0_MAX = 700.0
# Migrad calls per attempt: the larger of the two limits the fitters once had. A converging fit
# stops long before it (the result does not depend on it); a slow one gets more chance.
NCALL = 5000
_U_MAX = 1e4  # |u| beyond this (in units of the starting-point sigma) is a run-away fit
MIN_FIT_BINS = 5
#: The sparse-spectrum rule (:func:`max_free_parameters`): events and non-empty bins per free
#: parameter that the fitted bins must hold.
MIN_EVENTS_PER_PARAMETER = 10
MIN_BINS_PER_PARAMETER = 2


def max_free_parameters(
    counts: np.ndarray, fit_mask: np.ndarray, events_per_parameter: int = MIN_EVENTS_PER_PARAMETER
) -> int:
    """How many free parameters the fitted bins can constrain: the sparse-spectrum rule.

    min(events // 10, non-empty bins // 2). With fewer than ~10 events per parameter the extra
    terms of a smooth function follow single events: Migrad may still converge, but the F-test
    then compares fits to noise and the Gaussian (Hesse) uncertainty of the SR prediction is not
    trustworthy; each parameter also needs two non-empty bins to see a slope rather than a point.
    """
    n = np.asarray(counts, dtype=float)[np.asarray(fit_mask, dtype=bool)]
    by_events = int(n.sum() // events_per_parameter) if events_per_parameter > 0 else n.size
    return min(by_events, int((n > 0).sum()) // MIN_BINS_PER_PARAMETER)


@dataclass
class FunctionFit:
    """A binned Poisson fit of one family member (optionally + a fixed-shape signal).

    ``n_free`` of the ``n_par`` parameters were fitted, the rest fixed at zero (a step-down; params
    and cov keep all ``n_par`` entries). ``chi2`` is the deviance over the fitted bins (meaningful
    at low counts, and the quantity the F-test compares); ``m2lnl`` is the full -2 ln L including
    the ln n! constant.
    """

    function: str
    n_par: int
    edges: np.ndarray
    counts: np.ndarray
    fit_mask: np.ndarray
    valid: bool
    message: str
    params: np.ndarray
    cov: np.ndarray
    expected: np.ndarray  # background only, every bin
    n_free: int = 0
    m2lnl: float = float("nan")
    chi2: float = float("nan")
    ndf: int = 0
    chi2_pvalue: float = float("nan")
    signal: float | None = None
    sigma_signal: float | None = None
    log_offset: np.ndarray | None = None
    theta: np.ndarray | None = field(default=None, repr=False, compare=False)
    _basis: Basis | None = field(default=None, repr=False, compare=False)
    _u: np.ndarray | None = field(default=None, repr=False, compare=False)
    _cov_u: np.ndarray | None = field(default=None, repr=False, compare=False)

    def predict(self, lo: float, hi: float) -> tuple[float, float]:
        """Background in the bins inside [lo, hi] and its 1-sigma fit uncertainty."""
        b, cov = self.predict_bins([bin_masks(self.edges, lo, hi)[0]])
        if not np.isfinite(b[0]):
            return float("nan"), float("nan")
        return float(b[0]), math.sqrt(max(float(cov[0, 0]), 0.0))

    def predict_bins(self, masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Background in each group of bins and the covariance of those predictions.

        Propagated in the whitened coordinates (no cancellation in J C J^T). The multi-bin SR
        model needs the correlations between its bins: one fit moves them all.
        """
        n = len(masks)
        if not self.valid or self._basis is None:
            return np.full(n, np.nan), np.full((n, n), np.nan)
        _, jac_all = self._basis.background(self._u)
        b = np.array([self.expected[m].sum() for m in masks])
        jac = np.stack([jac_all[m].sum(axis=0) for m in masks])
        return b, jac @ self._cov_u @ jac.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (NaN and inf become None)."""
        return {
            "function": self.function,
            "n_par": int(self.n_par),
            "n_free": int(self.n_free),
            "valid": bool(self.valid),
            "message": self.message,
            "params": json_clean(self.params),
            "cov": json_clean(self.cov),
            "expected": json_clean(self.expected),
            "m2lnl": json_clean(self.m2lnl),
            "chi2": json_clean(self.chi2),
            "chi2_kind": "deviance",
            "ndf": int(self.ndf),
            "chi2_pvalue": json_clean(self.chi2_pvalue),
            "signal": json_clean(self.signal),
            "sigma_signal": json_clean(self.sigma_signal),
        }


def _failed(
    function: BackgroundFunction,
    edges,
    counts,
    fit_mask,
    message: str,
    log_offset: np.ndarray | None = None,
) -> FunctionFit:
    k = function.n_par
    return FunctionFit(
        function=function.name,
        n_par=k,
        edges=edges,
        counts=counts,
        fit_mask=fit_mask,
        valid=False,
        message=message,
        params=np.full(k, np.nan),
        cov=np.full((k, k), np.nan),
        expected=np.zeros(edges.size - 1),
        log_offset=log_offset,
    )


def log_linear_start(
    function: BackgroundFunction,
    edges: np.ndarray,
    counts: np.ndarray,
    fit_mask: np.ndarray,
    log_offset: np.ndarray | None = None,
    k: int | None = None,
) -> np.ndarray:
    """theta (first ``k`` terms, the rest 0) from weighted least squares of ln(density): a start.

    Var(ln n) ~ 1/n, hence weights sqrt(n + 0.5); the normalisation is then matched to the fitted
    total, since the least-squares one is biased low at small counts.
    """
    k = function.n_par if k is None else k
    mid = 0.5 * (edges[1:] + edges[:-1])[fit_mask]
    width = np.diff(edges)[fit_mask]
    n = counts[fit_mask]
    y = np.log((n + 0.5) / width)
    if log_offset is not None:
        y = y - np.asarray(log_offset)[fit_mask]
    w = np.sqrt(n + 0.5)
    phi = function.features(mid / SQRT_S)[:, :k]
    theta = np.zeros(function.n_par)
    theta[:k], *_ = np.linalg.lstsq(w[:, None] * phi, w * y, rcond=None)
    quad = Quadrature(edges, function, log_offset)
    total = quad.terms(theta).sum(axis=-1)[fit_mask].sum()
    if n.sum() > 0 and np.isfinite(total) and total > 0:
        theta[0] += math.log(n.sum() / total)
    return theta


def minimize(
    nll: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    n_par: int,
    ncall: int = NCALL,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Migrad (retried once) and Hesse from u = 0 in a well-scaled basis; (u, cov_u, problem or '').

    One place that decides what a failed fit is: no convergence, a run-away (parameters the
    fitted bins do not constrain), an inaccurate or non-positive-definite covariance.
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


def _migrad_fit(
    basis: Basis, rows: np.ndarray, n: np.ndarray, template: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Minimise the Poisson NLL over the fitted bins in the basis' coordinates; (u, cov_u, problem)."""
    t_sig = template[rows] if template is not None else None

    def model(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = basis.terms(u, rows)
        mu, dmu = t.sum(axis=-1), np.einsum("bq,bqm->bm", t, basis.B[rows])
        if t_sig is not None:
            mu = mu + (basis.signal_row @ u) * t_sig
            dmu = dmu + t_sig[:, None] * basis.signal_row[None, :]
        return mu, dmu

    def nll(u: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            mu, _ = model(u)
            if np.any(mu[n > 0] <= 0) or np.any(mu < 0):
                return 1e300
            value = float(deviance_parts(n, mu).sum())
        return value if math.isfinite(value) else 1e300

    def grad(u: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            mu, dmu = model(u)
            out = (1.0 - n / mu) @ dmu
        return np.where(np.isfinite(out), out, 0.0)

    return minimize(nll, grad, basis.rinv.shape[0])


def fit_function(
    name: str,
    edges: np.ndarray,
    counts: np.ndarray,
    fit_mask: np.ndarray,
    template: np.ndarray | None = None,
    starts: Sequence[np.ndarray] = (),
    log_offset: np.ndarray | None = None,
    step_down: bool = False,
    max_free: int | None = None,
) -> FunctionFit:
    """Binned Poisson ML fit of function ``name`` to the bins in ``fit_mask``.

    With ``template`` (expected signal counts per bin for a unit yield) a free signal yield is
    fitted beside the background. ``starts`` are extra theta starting points tried after the
    log-linear one with all parameters free (e.g. a lower-order fit padded with zeros).
    ``log_offset`` is the ratio members' uncut spectrum (:func:`functions.ratio_offset`).
    ``max_free`` fits at most that many parameters (the rest fixed at 0; at least
    ``min_free``); ``step_down`` retries a failed fit with one free parameter fewer, down to
    ``min_free``. Never raises for a failed fit; bad inputs raise :class:`AnomalyHuntError`.
    """
    function = get_function(name)
    if function.ratio and log_offset is None:
        raise AnomalyHuntError(f"background function {name} needs the uncut spectrum (log_offset)")
    log_offset = np.asarray(log_offset, dtype=float) if function.ratio else None
    edges, counts = check_histogram(edges, counts, f"fit of {name}")
    fit_mask = np.asarray(fit_mask, dtype=bool)
    if counts.ndim != 1 or fit_mask.shape != counts.shape:
        raise AnomalyHuntError(f"fit of {name}: counts and fit_mask must be one histogram")
    n_par = function.n_par
    k_top = n_par if max_free is None else min(n_par, max(max_free, function.min_free))
    k_low = min(function.min_free, k_top) if step_down else k_top
    has_sig = template is not None
    rows = np.flatnonzero(fit_mask)
    n = counts[rows]
    if rows.size < max(MIN_FIT_BINS, k_low + has_sig + 1):
        return _failed(
            function, edges, counts, fit_mask, f"only {rows.size} fitted bins", log_offset
        )
    if n.sum() <= 0:
        return _failed(
            function, edges, counts, fit_mask, "the fitted bins hold no events", log_offset
        )
    quad = Quadrature(edges, function, log_offset)
    problems: list[str] = []
    n_nonempty = int((n > 0).sum())
    for k in range(k_top, k_low - 1, -1):
        label = "" if k == n_par else f"{k} free, "
        if k > k_low and (k + has_sig > n_nonempty or rows.size < k + has_sig + 1):
            problems.append(f"{label}only {n_nonempty} non-empty fitted bins")
            continue
        candidates: list[np.ndarray] = []
        try:
            candidates.append(log_linear_start(function, edges, counts, fit_mask, log_offset, k))
        except (np.linalg.LinAlgError, ValueError) as exc:
            problems.append(f"{label}no log-linear start ({exc})")
        if k == n_par:
            candidates.extend(np.asarray(s, dtype=float) for s in starts)
        for i, theta0 in enumerate(candidates):
            if theta0.shape != (n_par,) or not np.all(np.isfinite(theta0)):
                problems.append(f"{label}start {i}: not {n_par} finite values")
                continue
            try:
                basis = Basis(quad, rows, theta0, k, template)
                u, cov_u, problem = _migrad_fit(basis, rows, n, template)
            except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
                u, cov_u, problem = None, None, f"numerical failure ({exc})"
            if u is None:
                problems.append(f"{label}start {i}: {problem}")
                continue
            theta = basis.theta(u)
            if abs(theta[0]) > LOG_P0_MAX:
                problems.append(f"{label}start {i}: unconstrained (|ln p0| = {abs(theta[0]):.0f})")
                continue
            return _result(
                function,
                edges,
                counts,
                fit_mask,
                log_offset,
                basis,
                u,
                cov_u,
                template,
                problems,
                k_top,
            )
    return _failed(
        function, edges, counts, fit_mask, "fit failed: " + "; ".join(problems), log_offset
    )


def _result(
    function: BackgroundFunction,
    edges,
    counts,
    fit_mask,
    log_offset,
    basis: Basis,
    u: np.ndarray,
    cov_u: np.ndarray,
    template,
    problems: list[str],
    k_top: int,
) -> FunctionFit:
    """The valid :class:`FunctionFit` of a converged fit: public params, deviance, p-value."""
    k, n_par = basis.k, function.n_par
    theta = basis.theta(u)
    params = theta_to_params(theta)
    jac = np.diag(np.concatenate([[params[0]], np.ones(n_par - 1)]))
    with np.errstate(over="ignore", invalid="ignore"):
        cov = jac @ basis.cov_theta(cov_u) @ jac.T
    mu_b, _ = basis.background(u)
    signal = float(basis.signal_row @ u) if template is not None else None
    mu = mu_b + (signal * template if template is not None else 0.0)
    n, m = counts[fit_mask], mu[fit_mask]
    chi2 = float(2.0 * deviance_parts(n, m).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        m2lnl = float(2.0 * (m - special.xlogy(n, m) + special.gammaln(n + 1)).sum())
    ndf = int(fit_mask.sum()) - k - (template is not None)
    if k < n_par:
        why = "; ".join(problems) if problems else f"at most {k_top} requested"
        message = f"ok with {k} of {n_par} free parameters ({why})"
    else:
        message = "ok" if not problems else "ok (" + "; ".join(problems) + ")"
    sigma_signal = None
    if template is not None:
        s_row = basis.signal_row
        sigma_signal = float(math.sqrt(max(s_row @ cov_u @ s_row, 0.0)))
    return FunctionFit(
        function=function.name,
        n_par=n_par,
        edges=edges,
        counts=counts,
        fit_mask=fit_mask,
        valid=True,
        message=message,
        params=params,
        cov=cov,
        expected=mu_b,
        n_free=k,
        m2lnl=m2lnl,
        chi2=chi2,
        ndf=ndf,
        chi2_pvalue=float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan"),
        signal=signal,
        sigma_signal=sigma_signal,
        log_offset=log_offset,
        theta=theta,
        _basis=basis,
        _u=u,
        _cov_u=cov_u,
    )
