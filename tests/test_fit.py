"""Sideband fits of dijet4: recovery of an injected bump, calibrated uncertainties, batch == Migrad."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.fit import FunctionFit, fit_function
from anomalyhunt.stats.functions import SQRT_S, bin_masks, get_function
from anomalyhunt.stats.significance import discovery

EDGES = np.round(np.arange(2.9, 4.1 + 1e-9, 0.05), 6)
SR = (3.3, 3.7)
TRUTH = np.array([1.0, 10.0, 5.0, 0.0])
SR_MASK = (EDGES[:-1] >= SR[0] - 1e-9) & (EDGES[1:] <= SR[1] + 1e-9)
dijet = get_function("dijet4").density


def fit_sidebands(edges: np.ndarray, counts: np.ndarray, sr: tuple[float, float]) -> FunctionFit:
    """The classic dijet sideband fit: dijet4, stepping down to fewer parameters if it fails."""
    return fit_function("dijet4", edges, counts, bin_masks(edges, *sr)[1], step_down=True)


def background(n_total: float) -> np.ndarray:
    """Bin-integrated dijet spectrum over EDGES normalised to n_total (fine numeric integral)."""
    fine = np.linspace(EDGES[0], EDGES[-1], 24 * 200 + 1)
    dens = dijet(0.5 * (fine[1:] + fine[:-1]), TRUTH) * np.diff(fine)
    per_bin = dens.reshape(24, 200).sum(axis=1)
    return n_total * per_bin / per_bin.sum()


def bump(n_signal: float, mass: float = 3.5, width: float = 0.1) -> np.ndarray:
    return n_signal * np.diff(stats.norm.cdf(EDGES, mass, width))


def test_dijet_formula() -> None:
    p = np.array([2.0, 8.0, 4.5, 0.3])
    m = 3.0
    x = m / SQRT_S
    expected = p[0] * (1 - x) ** p[1] / x ** (p[2] + p[3] * np.log(x))
    assert dijet(np.array([m]), p)[0] == pytest.approx(expected, rel=1e-12)


def test_fit_recovers_injected_bump() -> None:
    rng = np.random.default_rng(11)
    n_inject = 2500.0
    mean = background(2e5) + bump(n_inject)
    counts = rng.poisson(mean).astype(float)
    fit = fit_sidebands(EDGES, counts, SR)
    assert fit.valid, fit.message
    assert fit.n_free == 4
    assert not fit.fit_mask[SR_MASK].any() and fit.fit_mask[~SR_MASK].all()
    b, sigma_b = fit.predict(*SR)
    n_sr = counts[SR_MASK].sum()
    injected_in_sr = bump(n_inject)[SR_MASK].sum()
    total_sigma = np.sqrt(b + sigma_b**2)
    assert abs((n_sr - b) - injected_in_sr) < 2.0 * total_sigma
    z = discovery(n_sr, b, sigma_b)["z"]
    assert z > 4.0
    # the sidebands alone are described well: the bump is (almost) only in the SR
    assert fit.chi2_pvalue > 1e-3


def test_no_bump_no_discovery() -> None:
    rng = np.random.default_rng(12)
    counts = rng.poisson(background(2e5)).astype(float)
    fit = fit_sidebands(EDGES, counts, SR)
    assert fit.valid, fit.message
    b, sigma_b = fit.predict(*SR)
    assert abs(b / background(2e5)[SR_MASK].sum() - 1) < 3 * sigma_b / b
    assert discovery(counts[SR_MASK].sum(), b, sigma_b)["z"] < 2.5
    assert fit.ndf == int(fit.fit_mask.sum()) - 4
    assert 0.0 < fit.chi2_pvalue <= 1.0
    # the fitted expectation is bin-integrated: it sums to the sideband total (Poisson MLE)
    assert fit.expected[fit.fit_mask].sum() == pytest.approx(counts[fit.fit_mask].sum(), rel=1e-4)


@pytest.mark.parametrize("n_total", [2e5, 3e3])
def test_batch_fit_matches_iminuit(n_total: float) -> None:
    rng = np.random.default_rng(13)
    mean = background(n_total)
    nominal = fit_sidebands(EDGES, rng.poisson(mean).astype(float), SR)
    assert nominal.valid
    toys = rng.poisson(mean, size=(8, mean.size)).astype(float)
    b, sigma_b, ok = fit_batch("dijet4", EDGES, toys, SR, nominal.params)[:3]
    assert ok.all()
    for i, counts in enumerate(toys):
        fit = fit_sidebands(EDGES, counts, SR)
        assert fit.valid
        b_ref, s_ref = fit.predict(*SR)
        assert b[i] == pytest.approx(b_ref, rel=1e-3)
        assert sigma_b[i] == pytest.approx(s_ref, rel=0.05)


def test_prediction_uncertainty_is_calibrated() -> None:
    """Pulls (b - b_true) / sigma_b of many background-only fits have mean 0 and width 1."""
    rng = np.random.default_rng(14)
    mean = background(2e4)
    nominal = fit_sidebands(EDGES, mean, SR)
    toys = rng.poisson(mean, size=(600, mean.size)).astype(float)
    b, sigma_b, ok = fit_batch("dijet4", EDGES, toys, SR, nominal.params)[:3]
    assert ok.mean() > 0.99
    pulls = (b[ok] - mean[SR_MASK].sum()) / sigma_b[ok]
    assert abs(pulls.mean()) < 0.15
    assert 0.85 < pulls.std() < 1.15


def test_low_counts_do_not_crash() -> None:
    rng = np.random.default_rng(15)
    for n_total in (5, 20, 60):
        for _ in range(5):
            counts = rng.poisson(background(n_total)).astype(float)
            fit = fit_sidebands(EDGES, counts, SR)
            if fit.valid:
                b, sigma_b = fit.predict(*SR)
                assert np.isfinite(b) and np.isfinite(sigma_b) and b >= 0
                assert fit.n_free in (2, 3, 4)
            else:
                assert fit.message
            json.dumps(fit.to_dict(), allow_nan=False)


def test_empty_or_too_narrow_sidebands_are_invalid() -> None:
    counts = np.zeros(EDGES.size - 1)
    counts[SR_MASK] = 50
    fit = fit_sidebands(EDGES, counts, SR)
    assert not fit.valid and "no events" in fit.message
    assert np.isnan(fit.params).all() and (fit.expected == 0).all()
    assert np.isnan(fit.predict(*SR)[0])
    edges = np.round(np.arange(3.2, 3.8 + 1e-9, 0.05), 6)
    narrow = fit_sidebands(edges, np.full(edges.size - 1, 100.0), SR)
    assert not narrow.valid and "fitted bins" in narrow.message
    d = narrow.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["valid"] is False and d["params"] == [None] * 4


def test_bad_inputs_raise() -> None:
    with pytest.raises(AnomalyHuntError):
        fit_sidebands(EDGES, np.ones(5), SR)
    with pytest.raises(AnomalyHuntError):
        fit_sidebands(EDGES, -np.ones(EDGES.size - 1), SR)
    with pytest.raises(AnomalyHuntError):
        fit_function("dijet4", EDGES, np.ones(EDGES.size - 1), np.ones(5, bool))
    with pytest.raises(AnomalyHuntError):
        fit_batch("dijet4", EDGES, np.ones((2, EDGES.size - 1)), SR, np.full(4, np.nan))


def test_to_dict_round_trips_through_json() -> None:
    fit = fit_sidebands(EDGES, np.round(background(1e4)), SR)
    d = json.loads(json.dumps(fit.to_dict(), allow_nan=False))
    assert d["valid"] and len(d["params"]) == 4 and len(d["cov"]) == 4
    assert d["chi2_kind"] == "deviance"
    np.testing.assert_allclose(d["expected"], fit.expected)


def test_batch_fit_keeps_the_nominal_free_parameters() -> None:
    """Toys refit with at most the nominal fit's free parameters, and match Migrad doing the same."""
    rng = np.random.default_rng(16)
    mean = background(3e3)
    fit_mask = bin_masks(EDGES, *SR)[1]
    nominal = fit_function("dijet4", EDGES, mean, fit_mask, max_free=3)
    assert nominal.valid and nominal.n_free == 3 and nominal.params[3] == 0.0
    toys = rng.poisson(mean, size=(6, mean.size)).astype(float)
    res = fit_batch("dijet4", EDGES, toys, SR, nominal.params, max_free=3)
    assert res.ok.all() and (res.n_free == 3).all()
    for i, counts in enumerate(toys):
        ref = fit_function("dijet4", EDGES, counts, fit_mask, max_free=3)
        b_ref, s_ref = ref.predict(*SR)
        assert res.b[i] == pytest.approx(b_ref, rel=1e-4)
        assert res.sigma_b[i] == pytest.approx(s_ref, rel=0.02)
    # the one-bin view of the multi-bin output
    np.testing.assert_allclose(res.b_groups[:, 0], res.b)
    np.testing.assert_allclose(res.cov_groups[:, 0, 0], res.sigma_b**2)
