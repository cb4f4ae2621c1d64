"""The choice of background function: nested fits compared by an F-test (or Wilks), sparse-aware.

One fixed function either under-fits a large, steeply falling sample (bias in the SR prediction)
or over-fits a small one (inflated uncertainty). The usual remedy is to fit a family of nested
functions to the sidebands and keep the simplest that is not significantly worse than the next
more flexible one. A single configured function is the same procedure with one candidate, so
every window and cut goes through :func:`select_function`.

At tight cuts a window holds tens of events. Where the fitted bins cannot constrain a candidate
(:func:`stats.fit.max_free_parameters`: 10 events and 2 non-empty bins per free parameter), the
candidate is not fitted and the test only considers the orders the data can constrain; if none
remains, the least flexible candidate is fitted with its last parameters fixed at zero. The record
says so (``sparse``, ``sparse_action``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.fit import (
    MIN_BINS_PER_PARAMETER,
    MIN_EVENTS_PER_PARAMETER,
    FunctionFit,
    _failed,
    fit_function,
    max_free_parameters,
)
from anomalyhunt.stats.functions import (
    FUNCTIONS,
    BackgroundFunction,
    bin_masks,
    check_histogram,
    get_function,
    json_clean,
)


def f_test(simple: FunctionFit, complex_: FunctionFit) -> tuple[float, float]:
    """Fisher F statistic and p-value for adding (complex - simple) free parameters.

    F = [(chi2_s - chi2_c) / (k_c - k_s)] / [chi2_c / ndf_c]; a small p-value means the extra
    parameters improve the fit more than noise would.
    """
    dk = complex_.n_free - simple.n_free
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
    dk = complex_.n_free - simple.n_free
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
    """:func:`select_function`'s JSON-able record alone."""
    return select_function(edges, counts, sr, names, threshold, test)[0]


def _sparse_plan(
    functions: list[BackgroundFunction],
    counts: np.ndarray,
    fit_mask: np.ndarray,
    events_per_parameter: int,
) -> tuple[list[BackgroundFunction], int | None, dict[str, Any]]:
    """Which candidates the data can constrain, the cap on the free parameters of the least
    flexible one if none can, and the record of the decision."""
    n = counts[fit_mask]
    k_data = max_free_parameters(counts, fit_mask, events_per_parameter)
    allowed = [f for f in functions if f.n_par <= k_data]
    info: dict[str, Any] = {
        "sparse": len(allowed) < len(functions),
        "sparse_action": None,
        "n_fit_events": int(n.sum()),
        "n_fit_nonempty_bins": int((n > 0).sum()),
        "max_free": k_data,
        "sparse_rule": f"at most min(events // {events_per_parameter}, non-empty bins // "
        f"{MIN_BINS_PER_PARAMETER}) free parameters in the fitted (sideband) bins",
    }
    if events_per_parameter <= 0:  # the rule is off
        info |= {"sparse": False, "sparse_rule": "off"}
        return functions, None, info
    if not info["sparse"]:
        return allowed, None, info
    if n.sum() <= 0:
        info["sparse_action"] = "the fitted bins hold no events: no fit is possible"
        return functions, None, info
    dropped = ", ".join(f"{f.name} ({f.n_par})" for f in functions if f not in allowed)
    why = (
        f"{info['n_fit_events']} events in {info['n_fit_nonempty_bins']} non-empty fitted bins "
        f"constrain at most {k_data} free parameters"
    )
    if allowed:
        info["sparse_action"] = (
            f"{why}: not fitted: {dropped}; the choice is among "
            f"{', '.join(f.name for f in allowed)} only"
        )
        return allowed, None, info
    low = functions[0]
    cap = max(k_data, low.min_free)
    info["sparse_action"] = (
        f"{why}: {low.name} fitted with {cap} of {low.n_par} free parameters "
        "(the last ones fixed at 0)"
    )
    if k_data < low.min_free:
        info["sparse_action"] += "; still fewer events than the rule asks for, treat with care"
    return [low], cap, info


def select_function(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    names: Sequence[str] = ("dijet3", "dijet4", "dijet5"),
    threshold: float = 0.05,
    test: str = "ftest",
    log_offset: np.ndarray | None = None,
    step_down: bool = True,
    events_per_parameter: int = MIN_EVENTS_PER_PARAMETER,
) -> tuple[dict[str, Any], FunctionFit | None]:
    """Fit the functions ``names`` to the sidebands, choose one; (JSON-able record, chosen fit).

    ``names`` must be nested and ordered by parameter count (the tests assume it); functions
    with the same count (dijet4, ua2) compete by their deviance and only the better one enters
    the chain. Going up the chain, the first function whose test against the next valid, more
    flexible one has p > ``threshold`` is chosen (the last valid one if none). ``test`` is
    "ftest" (Fisher F, robust when the fit quality is poor) or "wilks" (likelihood ratio,
    chi2(dk)). With ``step_down`` the least flexible candidate may drop to fewer free parameters
    when its fit fails, so a single function behaves like the classic dijet fit. Candidates the
    data cannot constrain are skipped (see the module doc; ``events_per_parameter`` <= 0 turns
    the rule off). The record holds each fit's summary, the tests, ``chosen``, the chosen fit's
    SR prediction ``b`` +- ``sigma_b`` (None where every fit failed), the sparse decision and
    ``alternative``: the next more flexible valid fit, if any (see :func:`choice_shift`).
    """
    edges, counts = check_histogram(edges, counts, "fit_family")
    if counts.ndim != 1:
        raise AnomalyHuntError("fit_family: counts must be one histogram matching the edges")
    if not (edges[0] < sr[0] < sr[1] < edges[-1]):
        raise AnomalyHuntError("fit_family: the SR must lie inside the binned range")
    functions = [get_function(n) for n in names]
    if any(b.n_par < a.n_par for a, b in zip(functions, functions[1:], strict=False)):
        raise AnomalyHuntError("fit_family: names must be ordered by increasing parameter count")
    if len(set(names)) != len(names):
        raise AnomalyHuntError("fit_family: a function is listed twice")
    if test not in ("ftest", "wilks"):
        raise AnomalyHuntError(f"fit_family: test '{test}' is neither 'ftest' nor 'wilks'")
    _, fit_mask = bin_masks(edges, *sr)
    candidates, cap, sparse = _sparse_plan(functions, counts, fit_mask, events_per_parameter)
    fits: list[FunctionFit] = []
    for i, function in enumerate(candidates):
        fits.append(
            fit_function(
                function.name,
                edges,
                counts,
                fit_mask,
                starts=_padded_starts(fits, function),
                log_offset=log_offset,
                step_down=step_down and i == 0,
                max_free=cap,
            )
        )
    skipped = [
        _failed(f, edges, counts, fit_mask, "not fitted: " + sparse["sparse_action"])
        for f in functions
        if f not in candidates
    ]
    # one representative per number of free parameters: the valid fit with the smallest deviance
    best: dict[int, FunctionFit] = {}
    for f in fits:
        if f.valid and (f.n_free not in best or f.chi2 < best[f.n_free].chi2):
            best[f.n_free] = f
    valid = [best[k] for k in sorted(best)]
    tests = []
    chosen: FunctionFit | None = None
    for simple, complex_ in zip(valid, valid[1:], strict=False):
        f_stat, p = f_test(simple, complex_) if test == "ftest" else wilks_test(simple, complex_)
        tests.append(
            {
                "simple": simple.function,
                "complex": complex_.function,
                "test": test,
                "statistic": json_clean(f_stat),
                "F": json_clean(f_stat) if test == "ftest" else None,
                "pvalue": json_clean(p),
            }
        )
        if chosen is None and not (p <= threshold):  # NaN p counts as "not significant"
            chosen = simple
    if chosen is None and valid:
        chosen = valid[-1]
    # the next more flexible valid fit: its SR prediction differs from the chosen one's by what
    # the choice itself is uncertain about (the test has little power where data are few)
    later = [f for f in valid if chosen is not None and f.n_free > chosen.n_free]
    alternative = later[0].function if later else None
    b, sigma_b = chosen.predict(*sr) if chosen is not None else (float("nan"), float("nan"))
    return {
        "names": list(names),
        "test": test,
        "threshold": float(threshold),
        "sr": [float(sr[0]), float(sr[1])],
        "chosen": chosen.function if chosen is not None else None,
        "alternative": alternative,
        "fits": {f.function: f.to_dict() for f in [*fits, *skipped]},
        "f_tests": tests,
        "b": json_clean(b),
        "sigma_b": json_clean(sigma_b),
        "message": "ok" if chosen is not None else "every fit failed",
        **sparse,
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
        np.concatenate([f.theta, np.zeros(function.n_par - f.n_par)])
        for f in reversed(fits)
        if f.valid and f.theta is not None and _is_nested(f.function, function.name)
    ][:1]


def _is_nested(lower: str, higher: str) -> bool:
    """Whether ``lower`` is ``higher`` with its last parameters fixed to 0 (padding is exact)."""
    return any(lower.startswith(f) and higher.startswith(f) for f in ("dijet", "ratio"))


def choice_shift(record: dict[str, Any]) -> np.ndarray | None:
    """Per bin, the alternative fit's expected background minus the chosen one's (None if none).

    The F-test keeps the simpler function whenever the data cannot tell them apart, which is
    exactly where the simpler one may be biased (a few tens of events cannot show a slope of
    the cut efficiency). As in the ATLAS and CMS dijet searches, the difference to the next more
    flexible function is kept as an uncertainty on the background (a fully correlated shift).
    """
    chosen, alt = record.get("chosen"), record.get("alternative")
    if chosen is None or alt is None:
        return None
    a = np.asarray(record["fits"][alt]["expected"], dtype=float)
    c = np.asarray(record["fits"][chosen]["expected"], dtype=float)
    shift = a - c
    return shift if np.all(np.isfinite(shift)) else None
