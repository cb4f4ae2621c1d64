"""A family of smooth dijet background functions and the choice among them by an F-test.

One fixed function either under-fits a large, steeply falling sample (bias in the SR prediction)
or over-fits a small one (inflated uncertainty). The usual remedy is to fit a family of nested
functions to the sidebands and keep the simplest that is not significantly worse than the next
more flexible one (Fisher F-test). All functions here are log-linear in
theta = (ln p0, p1, ...) of x = mjj / 13 TeV:

    dijet3: p0 (1-x)^p1 / x^p2
    dijet4: p0 (1-x)^p1 / x^(p2 + p3 ln x)                  (the function of ``stats.fit``)
    dijet5: p0 (1-x)^p1 / x^(p2 + p3 ln x + p4 ln^2 x)
    ua2:    p0 x^-p1 exp(-p2 x - p3 x^2)
    ratioK: N(mjj) exp(theta0 + theta1 ln x + ...)           (K terms; N = the uncut spectrum)

The ratio members describe the spectrum after a score cut as the uncut spectrum of the same
window (per bin, fixed: ``log_offset``) times a smooth cut efficiency, the pass/fail-ratio method
of resonance searches with a tagger. One to three parameters, all fixed by the whole window's
shape, so the signal region is predicted far more tightly than by a free dijet fit of the
post-cut sidebands, which a resonance's tails pull upwards.

so a weighted least-squares fit of ln(counts) gives a robust start, and the Poisson likelihood is
minimised (iminuit) in a whitened basis (unit Fisher information at the start) because the terms
are nearly collinear over a ~2 TeV window. Expected counts are bin integrals (Gauss-Legendre),
not densities at bin centres. Fits that fail are recorded with the reason, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.fit import bin_masks, minimize

#: Centre-of-mass energy (TeV): x = mjj / SQRT_S (same convention as ``stats.fit``).
SQRT_S = 13.0

_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
_EXP_MAX = 700.0
# beyond this p0 = exp(theta0) overflows float64. Over a narrow window ln x barely varies, so ln p0
# is nearly degenerate with the powers of ln x and legitimately large (dijet5 often passes 300);
# the fit itself works in theta and predicts well, so only a non-representable p0 is rejected
_LOG_P0_MAX = 700.0
_NCALL = 5000
_MIN_FIT_BINS = 5


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

    def density(self, mjj: np.ndarray, params: Sequence[float]) -> np.ndarray:
        """Events per TeV at ``mjj`` (TeV) for public params (p0, p1, ...)."""
        theta = params_to_theta(params)
        x = np.asarray(mjj, dtype=float) / SQRT_S
        return np.exp(np.minimum(self.features(x) @ theta, _EXP_MAX))

    def expected(self, edges: np.ndarray, params: Sequence[float]) -> np.ndarray:
        """Bin-integrated expected counts over ``edges``."""
        quad = _Quadrature(np.asarray(edges, dtype=float), self)
        return quad.terms(params_to_theta(params)).sum(axis=-1)


FUNCTIONS: dict[str, BackgroundFunction] = {
    "dijet3": BackgroundFunction("dijet3", 3, _dijet_features(3), "p0 (1-x)^p1 / x^p2"),
    "dijet4": BackgroundFunction(
        "dijet4", 4, _dijet_features(4), "p0 (1-x)^p1 / x^(p2 + p3 ln x)"
    ),
    "dijet5": BackgroundFunction(
        "dijet5", 5, _dijet_features(5), "p0 (1-x)^p1 / x^(p2 + p3 ln x + p4 ln^2 x)"
    ),
    "ua2": BackgroundFunction("ua2", 4, _ua2_features, "p0 x^-p1 exp(-p2 x - p3 x^2)"),
    **{
        f"ratio{k}": BackgroundFunction(
            f"ratio{k}", k, _ratio_features(k),
            "N(mjj) x " + ["p0", "p0 x^p1", "p0 x^(p1 + p2 ln x)"][k - 1], ratio=True,
        )
        for k in (1, 2, 3)
    },
}


def ratio_offset(uncut: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-bin log-offset of the ratio members: ln(uncut events per TeV); empty bins stay empty."""
    density = np.asarray(uncut, dtype=float) / np.diff(np.asarray(edges, dtype=float))
    with np.errstate(divide="ignore"):
        return np.where(density > 0, np.log(np.maximum(density, 1e-300)), -_EXP_MAX)


def get_function(name: str) -> BackgroundFunction:
    """The family member called ``name`` (a clear error for a typo in a config)."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise AnomalyHuntError(
            f"unknown background function '{name}' (known: {', '.join(FUNCTIONS)})"
        ) from None


def params_to_theta(params: Sequence[float]) -> np.ndarray:
    """(p0, p1, ...) -> (ln p0, p1, ...): the log-linear coordinates."""
    p = np.asarray(params, dtype=float)
    return np.concatenate([[math.log(p[0])], p[1:]])


def theta_to_params(theta: np.ndarray) -> np.ndarray:
    """(ln p0, p1, ...) -> (p0, p1, ...)."""
    with np.errstate(over="ignore"):
        return np.concatenate([[np.exp(theta[0])], theta[1:]])


class _Quadrature:
    """Gauss-Legendre nodes of every bin and the feature matrix of one function there."""

    def __init__(
        self, edges: np.ndarray, function: BackgroundFunction, log_offset: np.ndarray | None = None
    ):
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        nodes = mid[:, None] + half[:, None] * _GL_X[None, :]
        self.weights = half[:, None] * _GL_W[None, :]
        self.phi = function.features(nodes / SQRT_S)  # (n_bins, Q, k)
        self.offset = np.zeros((edges.size - 1, 1)) if log_offset is None else np.asarray(log_offset)[:, None]

    def terms(self, theta: np.ndarray) -> np.ndarray:
        """w e^g per bin and node, (n_bins, Q)."""
        return self.weights * np.exp(np.minimum(self.phi @ theta + self.offset, _EXP_MAX))

    def mu_and_jac(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts per bin and d mu / d theta, (n_bins,), (n_bins, k)."""
        t = self.terms(theta)
        return t.sum(axis=-1), np.einsum("bq,bqk->bk", t, self.phi)


def _deviance_parts(n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """mu - n + n ln(n/mu) per bin: half the Poisson deviance, 0 at mu = n."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu), 0.0)
    return mu - n + log_term


def json_clean(x: Any) -> Any:
    """JSON-able: arrays to lists, NaN/inf to None."""
    if x is None:
        return None
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        v = float(arr)
        return v if math.isfinite(v) else None
    return [json_clean(v) for v in arr]


@dataclass
class FunctionFit:
    """A binned Poisson fit of one family member (optionally + a fixed-shape signal).

    ``chi2`` is the deviance over the fitted bins (meaningful at low counts, and the quantity the
    F-test compares); ``m2lnl`` is the full -2 ln L including the ln n! constant.
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
    m2lnl: float = float("nan")
    chi2: float = float("nan")
    ndf: int = 0
    chi2_pvalue: float = float("nan")
    signal: float | None = None
    sigma_signal: float | None = None
    _quad: _Quadrature | None = field(default=None, repr=False, compare=False)
    _theta: np.ndarray | None = field(default=None, repr=False, compare=False)
    _cov_theta: np.ndarray | None = field(default=None, repr=False, compare=False)

    def predict(self, lo: float, hi: float) -> tuple[float, float]:
        """Background in the bins inside [lo, hi] and its 1-sigma fit uncertainty (Jacobian)."""
        if not self.valid or self._quad is None:
            return float("nan"), float("nan")
        inside, _ = bin_masks(self.edges, lo, hi)
        mu, jac = self._quad.mu_and_jac(self._theta)
        j = jac[inside].sum(axis=0)
        var = float(j @ self._cov_theta @ j)
        return float(mu[inside].sum()), math.sqrt(max(var, 0.0))

    def predict_bins(self, masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Background in each group of bins and the covariance of those predictions.

        The multi-bin SR model needs the correlations between its bins: one fit moves them all.
        """
        if not self.valid or self._quad is None:
            n = len(masks)
            return np.full(n, np.nan), np.full((n, n), np.nan)
        mu, jac = self._quad.mu_and_jac(self._theta)
        b = np.array([mu[m].sum() for m in masks])
        j = np.stack([jac[m].sum(axis=0) for m in masks])
        return b, j @ self._cov_theta @ j.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "function": self.function,
            "n_par": self.n_par,
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


def _scaled_cov(jac: np.ndarray, cov_theta: np.ndarray) -> np.ndarray:
    """Covariance of the public params; entries that overflow (huge p0) become inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        return jac @ cov_theta @ jac.T


def _failed(function: BackgroundFunction, edges, counts, fit_mask, message: str) -> FunctionFit:
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
    )


def log_linear_start(
    function: BackgroundFunction, edges: np.ndarray, counts: np.ndarray, fit_mask: np.ndarray,
    log_offset: np.ndarray | None = None,
) -> np.ndarray:
    """theta from weighted least squares of ln(density) over the fitted bins (a start only).

    Var(ln n) ~ 1/n, hence weights sqrt(n + 0.5); the normalisation is then matched to the fitted
    total, since the least-squares one is biased low at small counts.
    """
    mid = 0.5 * (edges[1:] + edges[:-1])[fit_mask]
    width = np.diff(edges)[fit_mask]
    n = counts[fit_mask]
    y = np.log((n + 0.5) / width)
    if log_offset is not None:
        y = y - np.asarray(log_offset)[fit_mask]
    w = np.sqrt(n + 0.5)
    phi = function.features(mid / SQRT_S)
    theta, *_ = np.linalg.lstsq(w[:, None] * phi, w * y, rcond=None)
    quad = _Quadrature(edges, function, log_offset)
    total = quad.terms(theta).sum(axis=-1)[fit_mask].sum()
    if n.sum() > 0 and np.isfinite(total) and total > 0:
        theta[0] += math.log(n.sum() / total)
    return theta


def _migrad_fit(
    quad: _Quadrature,
    counts: np.ndarray,
    fit_mask: np.ndarray,
    theta0: np.ndarray,
    template: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Minimise the Poisson NLL over the fitted bins; (p, cov_p, problem or '').

    p = (theta, [signal yield]). Works in u with p = p0 + R^-1 u, R from the QR decomposition of
    the Fisher-weighted Jacobian at the start, so Migrad sees unit-scale, uncorrelated directions.
    """
    rows = np.flatnonzero(fit_mask)
    n = counts[rows]
    k = theta0.size
    has_sig = template is not None
    t_sig = template[rows] if has_sig else None
    p0 = np.concatenate([theta0, [0.0]]) if has_sig else theta0.copy()
    mu0, jac0 = quad.mu_and_jac(theta0)
    mu0, jac0 = mu0[rows], jac0[rows]
    if has_sig:
        jac0 = np.concatenate([jac0, t_sig[:, None]], axis=1)
    weight = np.maximum(mu0, 1e-3 * max(mu0.mean(), 1e-300))
    _, r = np.linalg.qr(jac0 / np.sqrt(weight)[:, None])
    diag = np.diag(r)
    r = r * np.sign(np.where(diag == 0, 1.0, diag))[:, None]
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    phi = quad.phi[rows]
    wts = quad.weights[rows]
    off = quad.offset[rows]

    def model(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = p0 + rinv @ u
        t = wts * np.exp(np.minimum(phi @ p[:k] + off, _EXP_MAX))
        mu = t.sum(axis=-1)
        dmu = np.einsum("bq,bqk->bk", t, phi)
        if has_sig:
            mu = mu + p[k] * t_sig
            dmu = np.concatenate([dmu, t_sig[:, None]], axis=1)
        return mu, dmu

    def nll(u: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            mu, _ = model(u)
            if np.any(mu[n > 0] <= 0) or np.any(mu < 0):
                return 1e300
            value = float(_deviance_parts(n, mu).sum())
        return value if math.isfinite(value) else 1e300

    def grad(u: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            mu, dmu = model(u)
            out = rinv.T @ ((1.0 - n / mu) @ dmu)
        return np.where(np.isfinite(out), out, 0.0)

    u, cov_u, problem = minimize(nll, grad, rinv.shape[0], ncall=_NCALL)
    if u is None:
        return None, None, problem
    return p0 + rinv @ u, rinv @ cov_u @ rinv.T, ""


def fit_function(
    name: str,
    edges: np.ndarray,
    counts: np.ndarray,
    fit_mask: np.ndarray,
    template: np.ndarray | None = None,
    starts: Sequence[np.ndarray] = (),
    log_offset: np.ndarray | None = None,
) -> FunctionFit:
    """Binned Poisson ML fit of function ``name`` to the bins in ``fit_mask``.

    With ``template`` (expected signal counts per bin for a unit yield) a free signal yield is
    fitted beside the background. ``starts`` are extra theta starting points tried after the
    log-linear one (e.g. a lower-order fit padded with zeros). ``log_offset`` is the ratio
    members' uncut spectrum (:func:`ratio_offset`). Never raises for a failed fit.
    """
    function = get_function(name)
    if function.ratio and log_offset is None:
        raise AnomalyHuntError(f"background function {name} needs the uncut spectrum (log_offset)")
    if not function.ratio:
        log_offset = None
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    fit_mask = np.asarray(fit_mask, dtype=bool)
    k = function.n_par
    n_fit = int(fit_mask.sum())
    n_free = k + (template is not None)
    if n_fit < max(_MIN_FIT_BINS, n_free + 1):
        return _failed(function, edges, counts, fit_mask, f"only {n_fit} fitted bins")
    if counts[fit_mask].sum() <= 0:
        return _failed(function, edges, counts, fit_mask, "the fitted bins hold no events")
    quad = _Quadrature(edges, function, log_offset)
    problems: list[str] = []
    candidates: list[np.ndarray] = []
    try:
        candidates.append(log_linear_start(function, edges, counts, fit_mask, log_offset))
    except (np.linalg.LinAlgError, ValueError) as exc:
        problems.append(f"no log-linear start ({exc})")
    candidates.extend(np.asarray(s, dtype=float) for s in starts)
    for i, theta0 in enumerate(candidates):
        if theta0.shape != (k,) or not np.all(np.isfinite(theta0)):
            problems.append(f"start {i}: not {k} finite values")
            continue
        try:
            p, cov_p, problem = _migrad_fit(quad, counts, fit_mask, theta0, template)
        except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
            p, cov_p, problem = None, None, f"numerical failure ({exc})"
        if p is None:
            problems.append(f"start {i}: {problem}")
            continue
        theta, cov_theta = p[:k], cov_p[:k, :k]
        if abs(theta[0]) > _LOG_P0_MAX:
            problems.append(f"start {i}: unconstrained (|ln p0| = {abs(theta[0]):.0f})")
            continue
        params = theta_to_params(theta)
        jac = np.diag(np.concatenate([[params[0]], np.ones(k - 1)]))
        mu_b = quad.terms(theta).sum(axis=-1)
        mu = mu_b + (p[k] * template if template is not None else 0.0)
        n, m = counts[fit_mask], mu[fit_mask]
        chi2 = float(2.0 * _deviance_parts(n, m).sum())
        m2lnl = float(2.0 * (m - n * np.log(m) + special.gammaln(n + 1)).sum())
        ndf = n_fit - n_free
        return FunctionFit(
            function=name,
            n_par=k,
            edges=edges,
            counts=counts,
            fit_mask=fit_mask,
            valid=True,
            message="ok" if not problems else "ok (" + "; ".join(problems) + ")",
            params=params,
            cov=_scaled_cov(jac, cov_theta),
            expected=mu_b,
            m2lnl=m2lnl,
            chi2=chi2,
            ndf=ndf,
            chi2_pvalue=float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan"),
            signal=float(p[k]) if template is not None else None,
            sigma_signal=float(math.sqrt(cov_p[k, k])) if template is not None else None,
            _quad=quad,
            _theta=theta,
            _cov_theta=cov_theta,
        )
    return _failed(function, edges, counts, fit_mask, "fit failed: " + "; ".join(problems))


def f_test(simple: FunctionFit, complex_: FunctionFit) -> tuple[float, float]:
    """Fisher F statistic and p-value for adding (complex - simple) parameters.

    F = [(chi2_s - chi2_c) / (k_c - k_s)] / [chi2_c / ndf_c]; a small p-value means the extra
    parameters improve the fit more than noise would.
    """
    dk = complex_.n_par - simple.n_par
    if not (simple.valid and complex_.valid) or dk <= 0 or complex_.ndf <= 0:
        return float("nan"), float("nan")
    if complex_.chi2 <= 0:
        return float("inf"), 0.0
    f = max(simple.chi2 - complex_.chi2, 0.0) / dk / (complex_.chi2 / complex_.ndf)
    return float(f), float(stats.f.sf(f, dk, complex_.ndf))


def wilks_test(simple: FunctionFit, complex_: FunctionFit) -> tuple[float, float]:
    """Likelihood-ratio statistic 2 ln(L_c / L_s) and its chi2(k_c - k_s) p-value (Wilks).

    Exact asymptotically for nested functions whatever the goodness of fit; unlike the F-test it
    does not rescale by the complex fit's chi2 / ndf, so it is sharper when that fit is good.
    """
    dk = complex_.n_par - simple.n_par
    if not (simple.valid and complex_.valid) or dk <= 0:
        return float("nan"), float("nan")
    t = max(simple.chi2 - complex_.chi2, 0.0)
    return float(t), float(stats.chi2.sf(t, dk))


def fit_family(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    names: Sequence[str] = ("dijet3", "dijet4", "dijet5"),
    threshold: float = 0.05,
    test: str = "ftest",
) -> dict[str, Any]:
    """Fit every function in ``names`` to the sidebands and choose one by successive tests.

    ``names`` should be nested and ordered by parameter count (the tests assume it); functions
    with the same count (dijet4, ua2) compete by their deviance and only the better one enters
    the chain. Going up the chain, the first function whose test against the next valid, more
    flexible one has p > ``threshold`` is chosen (the last valid one if none). ``test`` is
    "ftest" (Fisher F, robust when the fit quality is poor) or "wilks" (likelihood ratio,
    chi2(dk)). Returns a JSON-able dict with each fit's summary, the tests, ``chosen`` and the
    chosen fit's SR prediction ``b`` +- ``sigma_b`` (None where every fit failed).
    """
    return select_function(edges, counts, sr, names, threshold, test)[0]


def select_function(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    names: Sequence[str] = ("dijet3", "dijet4", "dijet5"),
    threshold: float = 0.05,
    test: str = "ftest",
    log_offset: np.ndarray | None = None,
) -> tuple[dict[str, Any], FunctionFit | None]:
    """:func:`fit_family`'s record and the chosen :class:`FunctionFit` (None if all failed)."""
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise AnomalyHuntError("fit_family: bin edges must be a strictly increasing 1D array")
    if counts.shape != (edges.size - 1,):
        raise AnomalyHuntError("fit_family: counts must be one histogram matching the edges")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise AnomalyHuntError("fit_family: counts must be finite and non-negative")
    if edges[0] <= 0 or edges[-1] >= SQRT_S or not (edges[0] < sr[0] < sr[1] < edges[-1]):
        raise AnomalyHuntError("fit_family: need 0 < edges < sqrt(s) and the SR inside them")
    functions = [get_function(n) for n in names]
    if any(b.n_par < a.n_par for a, b in zip(functions, functions[1:], strict=False)):
        raise AnomalyHuntError("fit_family: names must be ordered by increasing parameter count")
    if len(set(names)) != len(names):
        raise AnomalyHuntError("fit_family: a function is listed twice")
    if test not in ("ftest", "wilks"):
        raise AnomalyHuntError(f"fit_family: test '{test}' is neither 'ftest' nor 'wilks'")
    _, fit_mask = bin_masks(edges, *sr)
    fits: list[FunctionFit] = []
    for function in functions:
        starts = _padded_starts(fits, function)
        fits.append(fit_function(function.name, edges, counts, fit_mask, starts=starts,
                                 log_offset=log_offset))
    # one representative per parameter count: the valid fit with the smallest deviance
    best: dict[int, FunctionFit] = {}
    for f in fits:
        if f.valid and (f.n_par not in best or f.chi2 < best[f.n_par].chi2):
            best[f.n_par] = f
    valid = [best[k] for k in sorted(best)]
    tests = []
    chosen: FunctionFit | None = None
    for simple, complex_ in zip(valid, valid[1:], strict=False):
        f_stat, p = f_test(simple, complex_) if test == "ftest" else wilks_test(simple, complex_)
        tests.append({"simple": simple.function, "complex": complex_.function, "test": test,
                      "statistic": json_clean(f_stat), "F": json_clean(f_stat) if test == "ftest" else None,
                      "pvalue": json_clean(p)})
        if chosen is None and not (p <= threshold):  # NaN p counts as "not significant"
            chosen = simple
    if chosen is None and valid:
        chosen = valid[-1]
    b, sigma_b = chosen.predict(*sr) if chosen is not None else (float("nan"), float("nan"))
    return {
        "names": list(names),
        "test": test,
        "threshold": float(threshold),
        "sr": [float(sr[0]), float(sr[1])],
        "chosen": chosen.function if chosen is not None else None,
        "fits": {f.function: f.to_dict() for f in fits},
        "f_tests": tests,
        "b": json_clean(b),
        "sigma_b": json_clean(sigma_b),
        "message": "ok" if chosen is not None else "every fit failed",
    }, chosen


def fit_with_fallback(
    name: str, edges: np.ndarray, counts: np.ndarray, fit_mask: np.ndarray
) -> FunctionFit | None:
    """Fit ``name``, climbing its nested chain (dijet3 -> dijet4 -> ...) for starting points.

    Each lower-order solution, padded with zeros, seeds the next order, which rescues flexible
    functions whose log-linear start fails on steep, sparse spectra. If ``name`` still fails, the
    most flexible valid lower-order fit is returned (its ``function`` says which); None if all
    fail. Used where a smooth shape is needed and a slightly less flexible one beats none.
    """
    target = get_function(name)
    chain = [
        f
        for f in sorted(FUNCTIONS.values(), key=lambda f: f.n_par)
        if f.n_par < target.n_par and _is_nested(f.name, name)
    ] + [target]
    fits: list[FunctionFit] = []
    for function in chain:
        starts = _padded_starts(fits, function)
        fits.append(fit_function(function.name, edges, counts, fit_mask, starts=starts))
    valid = [f for f in fits if f.valid]
    return valid[-1] if valid else None


def _padded_starts(fits: Sequence[FunctionFit], function: BackgroundFunction) -> list[np.ndarray]:
    """The latest valid nested lower-order solution padded with zeros: a good start one order up."""
    return [
        np.concatenate([f._theta, np.zeros(function.n_par - f.n_par)])
        for f in reversed(fits)
        if f.valid and f._theta is not None and _is_nested(f.function, function.name)
    ][:1]


def _is_nested(lower: str, higher: str) -> bool:
    """Whether ``lower`` is ``higher`` with its last parameters fixed to 0 (padding is exact)."""
    return any(lower.startswith(f) and higher.startswith(f) for f in ("dijet", "ratio"))


def fit_batch(
    name: str,
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    start: Sequence[float],
    sr_groups: int = 1,
    log_offset: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """:func:`anomalyhunt.stats.fit.fit_sidebands_batch` with family member ``name``.

    Pseudo-experiments must refit with the function the nominal fit chose, or the toys would
    test a different background model than the data.
    """
    from anomalyhunt.stats.fit import fit_sidebands_batch

    function = get_function(name)
    return fit_sidebands_batch(
        edges, counts, sr, np.asarray(start, dtype=float),
        features=lambda mjj: function.features(np.asarray(mjj, dtype=float) / SQRT_S),
        sr_groups=sr_groups,
        log_p0_max=_LOG_P0_MAX,
        log_offset=log_offset if function.ratio else None,
    )
