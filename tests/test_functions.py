"""Background-function family: formulas, bin integrals, F-test choice, SR prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.fit import fit_function
from anomalyhunt.stats.functions import FUNCTIONS, SQRT_S, bin_masks, get_function
from anomalyhunt.stats.select import fit_family, select_function

# a 2 TeV window, enough events that a wrong shape shows
EDGES = np.round(np.arange(2.5, 4.5 + 1e-9, 0.05), 6)
SR = (3.3, 3.7)
SR_MASK = (EDGES[:-1] >= SR[0] - 1e-9) & (EDGES[1:] <= SR[1] + 1e-9)
N_EVENTS = 1e6


def mean_counts(name: str, params: list[float], total: float = N_EVENTS) -> np.ndarray:
    mean = get_function(name).expected(EDGES, params)
    return mean * total / mean.sum()


def test_formulas() -> None:
    m = np.array([3.0, 3.9])
    x = m / SQRT_S
    lx = np.log(x)
    p = [2.0, 8.0, 4.5, 0.3, 0.1]
    np.testing.assert_allclose(
        get_function("dijet3").density(m, p[:3]), p[0] * (1 - x) ** p[1] / x ** p[2], rtol=1e-12
    )
    np.testing.assert_allclose(
        get_function("dijet4").density(m, p[:4]),
        p[0] * (1 - x) ** p[1] / x ** (p[2] + p[3] * lx),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        get_function("dijet5").density(m, p),
        p[0] * (1 - x) ** p[1] / x ** (p[2] + p[3] * lx + p[4] * lx**2),
        rtol=1e-12,
    )
    q = [2.0, 5.0, 10.0, 20.0]
    np.testing.assert_allclose(
        get_function("ua2").density(m, q),
        q[0] * x ** -q[1] * np.exp(-q[2] * x - q[3] * x**2),
        rtol=1e-12,
    )
    assert {f.name: f.n_par for f in FUNCTIONS.values()} == {
        "dijet3": 3,
        "dijet4": 4,
        "dijet5": 5,
        "ua2": 4,
        "ratio1": 1,
        "ratio2": 2,
        "ratio3": 3,
    }


@pytest.mark.parametrize("name", [n for n, f in FUNCTIONS.items() if not f.ratio])
def test_expected_is_the_bin_integral(name: str) -> None:
    params = {
        "dijet3": [1, 10, 5],
        "dijet4": [1, 10, 5, 0.3],
        "dijet5": [1, 10, 5, 2, 1],
        "ua2": [1, 5, 10, 20],
    }[name]
    function = get_function(name)
    fine = np.linspace(EDGES[0], EDGES[-1], (EDGES.size - 1) * 400 + 1)
    mid = 0.5 * (fine[1:] + fine[:-1])
    numeric = (function.density(mid, params) * np.diff(fine)).reshape(-1, 400).sum(axis=1)
    np.testing.assert_allclose(function.expected(EDGES, params), numeric, rtol=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_f_test_keeps_dijet3_for_dijet3_data(seed: int) -> None:
    mean = mean_counts("dijet3", [1, 10, 5])
    counts = np.random.default_rng(seed).poisson(mean).astype(float)
    res = fit_family(EDGES, counts, SR)
    assert res["chosen"] == "dijet3", res["f_tests"]
    assert all(f["valid"] for f in res["fits"].values())
    assert res["f_tests"][0]["pvalue"] > 0.05
    pull = (res["b"] - mean[SR_MASK].sum()) / res["sigma_b"]
    assert abs(pull) < 3
    json.dumps(res, allow_nan=False)


@pytest.mark.parametrize("seed", [1, 2])
def test_f_test_climbs_for_curved_data(seed: int) -> None:
    mean = mean_counts("dijet4", [1, 10, 5, 3.0])
    counts = np.random.default_rng(seed).poisson(mean).astype(float)
    res = fit_family(EDGES, counts, SR)
    assert res["chosen"] in ("dijet4", "dijet5"), res["f_tests"]
    assert res["f_tests"][0]["pvalue"] < 0.05
    # dijet3 leaves the curvature in the residuals
    assert res["fits"]["dijet3"]["chi2"] > res["fits"]["dijet4"]["chi2"] + 10
    pull = (res["b"] - mean[SR_MASK].sum()) / res["sigma_b"]
    assert abs(pull) < 3


def test_threshold_is_configurable() -> None:
    counts = np.random.default_rng(3).poisson(mean_counts("dijet4", [1, 10, 5, 3.0]))
    strict = fit_family(EDGES, counts.astype(float), SR, threshold=0.0)
    assert strict["chosen"] == "dijet3"  # nothing is ever significant at p <= 0
    loose = fit_family(EDGES, counts.astype(float), SR, threshold=1.0)
    assert loose["chosen"] == "dijet5"  # everything is


def test_step_down_is_the_nested_lower_order() -> None:
    """dijet4 with p3 fixed at 0 is dijet3: same prediction, deviance and ndf, to fit tolerance."""
    counts = np.random.default_rng(4).poisson(mean_counts("dijet4", [1, 10, 5, 0.3], 2e4))
    counts = counts.astype(float)
    _, fit_mask = bin_masks(EDGES, *SR)
    three = fit_function("dijet3", EDGES, counts, fit_mask)
    capped = fit_function("dijet4", EDGES, counts, fit_mask, max_free=3)
    assert three.valid and capped.valid and capped.n_free == 3 and capped.n_par == 4
    assert capped.params[3] == 0.0 and np.all(capped.cov[3] == 0.0)
    assert capped.ndf == three.ndf and "3 of 4 free" in capped.message
    b3, s3 = three.predict(*SR)
    b, s = capped.predict(*SR)
    assert b == pytest.approx(b3, rel=1e-6)
    assert s == pytest.approx(s3, rel=1e-3)
    assert capped.chi2 == pytest.approx(three.chi2, abs=1e-3)
    # all four free: a different (more flexible) fit
    full = fit_function("dijet4", EDGES, counts, fit_mask)
    assert full.n_free == 4 and full.chi2 < three.chi2 and full.predict(*SR)[1] > s3


def test_ua2_fit() -> None:
    mean = mean_counts("ua2", [1, 5, 10, 20])
    counts = np.random.default_rng(5).poisson(mean).astype(float)
    res = fit_family(EDGES, counts, SR, names=("ua2",))
    fit = res["fits"]["ua2"]
    assert res["chosen"] == "ua2" and fit["valid"] and fit["chi2_pvalue"] > 1e-3
    assert abs(res["b"] - mean[SR_MASK].sum()) < 3 * res["sigma_b"]


def test_failed_fits_are_recorded() -> None:
    counts = np.zeros(EDGES.size - 1)
    counts[SR_MASK] = 50.0
    res = fit_family(EDGES, counts, SR)
    assert res["chosen"] is None and res["b"] is None and res["message"] == "every fit failed"
    assert all(not f["valid"] and "no events" in f["message"] for f in res["fits"].values())
    json.dumps(res, allow_nan=False)
    # very few events: whatever fails is recorded, nothing raises
    sparse = np.random.default_rng(6).poisson(mean_counts("dijet3", [1, 10, 5], 15)).astype(float)
    res = fit_family(EDGES, sparse, SR)
    json.dumps(res, allow_nan=False)
    assert all(f["valid"] or f["message"] for f in res["fits"].values())


def test_bad_inputs_raise() -> None:
    counts = np.ones(EDGES.size - 1)
    with pytest.raises(AnomalyHuntError):
        fit_family(EDGES, counts, SR, names=("dijet4", "dijet3"))
    with pytest.raises(AnomalyHuntError):
        fit_family(EDGES, counts, SR, names=("dijet3", "nope"))
    with pytest.raises(AnomalyHuntError):
        fit_family(EDGES, counts[:-1], SR)
    with pytest.raises(AnomalyHuntError):
        fit_family(EDGES, counts, (4.4, 4.8))


@pytest.mark.parametrize("name", ["dijet3", "dijet5", "ua2"])
def test_batch_fit_matches_migrad_for_every_function(name: str) -> None:
    params = {"dijet3": [1, 10, 5], "dijet5": [1, 10, 5, 1.0, 0.2], "ua2": [1, 5, 10, 20]}[name]
    mean = mean_counts(name, params, 5e4)
    rng = np.random.default_rng(11)
    counts = rng.poisson(mean, size=(20, mean.size)).astype(float)
    _, fit_mask = bin_masks(EDGES, *SR)
    nominal = fit_function(name, EDGES, mean, fit_mask)
    b, sigma, ok = fit_batch(name, EDGES, counts, SR, nominal.params)[:3]
    assert ok.all()
    compared = 0
    for i in range(6):
        ref = fit_function(name, EDGES, counts[i], fit_mask)
        if not ref.valid:  # dijet5 sometimes runs off along a flat direction; the batch steps down
            continue
        compared += 1
        b_ref, s_ref = ref.predict(*SR)
        assert b[i] == pytest.approx(b_ref, rel=2e-4)
        assert sigma[i] == pytest.approx(s_ref, rel=0.02)
    assert compared >= 4


def test_wilks_selection_and_equal_parameter_counts() -> None:
    counts = np.random.default_rng(3).poisson(mean_counts("dijet4", [1, 10, 5, 3.0])).astype(float)
    res = fit_family(EDGES, counts, SR, names=("dijet3", "dijet4", "ua2", "dijet5"), test="wilks")
    assert res["test"] == "wilks" and res["chosen"] in ("dijet4", "ua2", "dijet5")
    # dijet4 and ua2 (both 4 parameters) compete: only the one with the smaller deviance is tested
    four = [t for t in res["f_tests"] if t["simple"] in ("dijet4", "ua2")]
    assert len(four) == 1
    better = min(("dijet4", "ua2"), key=lambda n: res["fits"][n]["chi2"])
    assert four[0]["simple"] == better
    with pytest.raises(AnomalyHuntError):
        fit_family(EDGES, counts, SR, test="chi2")


def _sideband_sample(n_events: int, seed: int) -> np.ndarray:
    """Exactly ``n_events`` in the sidebands (multinomial over a dijet4 shape), none in the SR."""
    shape = mean_counts("dijet4", [1, 10, 5, 0.3], 1.0)
    _, fit_mask = bin_masks(EDGES, *SR)
    counts = np.zeros(EDGES.size - 1)
    p = shape[fit_mask] / shape[fit_mask].sum()
    counts[fit_mask] = np.random.default_rng(seed).multinomial(n_events, p)
    return counts


def test_sparse_spectrum_is_flagged_and_fitted_with_few_parameters() -> None:
    """30 sideband events constrain at most 3 free parameters: dijet4 and dijet5 are not fitted,
    a single dijet4 keeps 3 of its 4; 20,000 events constrain them all."""
    sparse = _sideband_sample(30, seed=8)
    assert (sparse[~SR_MASK] > 0).sum() >= 6  # so the events, not the bins, set the limit
    res = fit_family(EDGES, sparse, SR)
    assert res["sparse"] is True and res["max_free"] == 3 and res["n_fit_events"] == 30
    assert res["chosen"] == "dijet3" and res["fits"]["dijet3"]["valid"]
    assert "at most 3 free parameters" in res["sparse_action"] and "dijet4" in res["sparse_action"]
    for name in ("dijet4", "dijet5"):
        assert not res["fits"][name]["valid"] and res["fits"][name]["message"].startswith(
            "not fitted"
        )
    assert res["f_tests"] == []
    json.dumps(res, allow_nan=False)
    one, fit = select_function(EDGES, sparse, SR, ("dijet4",))
    assert one["sparse"] and fit.function == "dijet4" and fit.n_free == 3 and fit.params[3] == 0.0
    assert "dijet4 fitted with 3 of 4 free parameters" in one["sparse_action"]
    # 15 events: even the least flexible candidate keeps only its slope and normalisation
    few, fit = select_function(EDGES, _sideband_sample(15, seed=8), SR, ("dijet4",))
    assert few["max_free"] == 1 and fit.n_free == 2 and "treat with care" in few["sparse_action"]
    # the rule can be switched off: every function is fitted with all its parameters
    off, _ = select_function(EDGES, sparse, SR, events_per_parameter=0)
    assert off["sparse"] is False and off["sparse_action"] is None
    assert not any(f["message"].startswith("not fitted") for f in off["fits"].values())
    rich = fit_family(EDGES, _sideband_sample(20_000, seed=8), SR)
    assert rich["sparse"] is False and rich["sparse_action"] is None and rich["max_free"] >= 5
    assert all(f["valid"] and f["n_free"] == f["n_par"] for f in rich["fits"].values())
