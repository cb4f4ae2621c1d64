"""Spurious-signal test: small for a matching function, flagged for a badly mismatched one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.select import fit_family
from anomalyhunt.stats.spurious import signal_template, spurious_signal, truth_counts

EDGES = np.round(np.arange(2.5, 4.5 + 1e-9, 0.05), 6)
SR = (3.3, 3.7)


def test_signal_template() -> None:
    t = signal_template(EDGES, 3.5, 0.05)
    assert t.sum() == pytest.approx(1.0, abs=1e-6)
    mid = 0.5 * (EDGES[1:] + EDGES[:-1])
    assert (t * mid).sum() == pytest.approx(3.5, abs=1e-3)
    with pytest.raises(AnomalyHuntError):
        signal_template(EDGES, 3.5, 0.0)


def test_matching_function_has_no_spurious_signal() -> None:
    truth = truth_counts("dijet4", np.array([1.0, 10.0, 5.0, 0.3]), EDGES, 1e5)
    res = spurious_signal(EDGES, truth, SR, function="dijet4")
    assert res["asimov"]["valid"]
    assert abs(res["ratio"]) < 0.05 and res["flag"] is False
    assert res["asimov"]["sigma_signal"] > 0
    json.dumps(res, allow_nan=False)


def test_matching_function_toys() -> None:
    truth = truth_counts("dijet4", np.array([1.0, 10.0, 5.0, 0.3]), EDGES, 1e5)
    res = spurious_signal(EDGES, truth, SR, function="dijet4", n_toys=30, seed=1)
    toys = res["toys"]
    assert res["source"] == "toys" and toys["n_valid"] == 30
    assert abs(toys["mean_ratio"]) < 4 * toys["mean_ratio_error"]
    assert 0.5 < toys["std_ratio"] < 1.5


def test_mismatched_function_is_flagged() -> None:
    truth = truth_counts("dijet5", np.array([1.0, 10.0, 5.0, 2.0, 1.0]), EDGES, 1e5)
    res = spurious_signal(EDGES, truth, SR, function="dijet3")
    assert res["flag"] is True and abs(res["ratio"]) > 0.5
    # the flexible enough function is not
    assert spurious_signal(EDGES, truth, SR, function="dijet5")["flag"] is False


def test_chosen_fit_as_truth() -> None:
    counts = np.random.default_rng(7).poisson(truth_counts("dijet4", [1, 10, 5, 3.0], EDGES, 1e6))
    family = fit_family(EDGES, counts.astype(float), SR)
    chosen = family["chosen"]
    truth = np.array(family["fits"][chosen]["expected"])
    res = spurious_signal(EDGES, truth, SR, function=chosen)
    assert res["flag"] is False


def test_failed_fit_gives_no_flag() -> None:
    res = spurious_signal(EDGES, np.zeros(EDGES.size - 1), SR)
    assert res["flag"] is None and res["ratio"] is None and not res["asimov"]["valid"]
    with pytest.raises(AnomalyHuntError):
        spurious_signal(EDGES, np.ones(3), SR)


def test_truth_fit_falls_back_to_a_nested_function() -> None:
    """A truth function that cannot be fitted gives way to the most flexible one that can."""
    from anomalyhunt.stats.fit import fit_function
    from anomalyhunt.stats.functions import bin_masks
    from anomalyhunt.stats.select import fit_with_fallback

    rng = np.random.default_rng(3)
    counts = rng.poisson(truth_counts("dijet4", np.array([1.0, 10.0, 5.0, 0.3]), EDGES, 1e5))
    counts = counts.astype(float)
    _, fit_mask = bin_masks(EDGES, *SR)
    full = fit_with_fallback("dijet5", EDGES, counts, fit_mask)
    assert full is not None and full.function == "dijet5" and full.valid
    assert full.chi2 <= fit_function("dijet4", EDGES, counts, fit_mask).chi2 + 1e-6
    # five sideband bins: too few for dijet5 (5 parameters), enough for dijet4
    few = np.zeros_like(fit_mask)
    few[np.flatnonzero(fit_mask)[::3][:5]] = True
    assert not fit_function("dijet5", EDGES, counts, few).valid
    fallback = fit_with_fallback("dijet5", EDGES, counts, few)
    assert fallback is not None and fallback.function == "dijet4" and fallback.valid
