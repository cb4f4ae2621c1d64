"""pyhf significance and limits of one signal region, and the closed-form z used by the toys."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.fit import fit_function
from anomalyhunt.stats.functions import bin_masks, get_function
from anomalyhunt.stats.model import build_model, observations
from anomalyhunt.stats.significance import discovery, upper_limit, z_fast

EDGES = np.round(np.arange(2.9, 4.1 + 1e-9, 0.05), 6)
SR = (3.3, 3.7)
SR_MASK = (EDGES[:-1] >= SR[0] - 1e-9) & (EDGES[1:] <= SR[1] + 1e-9)


def background(n_total: float) -> np.ndarray:
    fine = np.linspace(EDGES[0], EDGES[-1], 24 * 100 + 1)
    dens = get_function("dijet4").density(
        0.5 * (fine[1:] + fine[:-1]), np.array([1.0, 10.0, 5.0, 0.0])
    ) * np.diff(fine)
    per_bin = dens.reshape(24, 100).sum(axis=1)
    return n_total * per_bin / per_bin.sum()


def test_model_layout() -> None:
    model = build_model(100.0, 10.0)
    assert model.config.poi_name == "mu"
    assert "bkg_fit" in model.config.parameters
    data = observations(model, 130)
    assert data[0] == 130 and len(data) == 2
    # with s = 1, mu is the signal yield: expected = b + mu at the nominal nuisance
    pars = model.config.suggested_init()
    pars[model.config.poi_index] = 25.0
    assert model.expected_actualdata(pars)[0] == pytest.approx(125.0)
    lo, hi = model.config.suggested_bounds()[model.config.poi_index]
    assert lo == 0.0 and hi > 100 + 10 * 10 + 10
    with pytest.raises(AnomalyHuntError):
        build_model(-1.0, 1.0)


@pytest.mark.parametrize(
    ("n", "b", "sigma_b"), [(130, 100, 10), (25, 5, 1), (51000, 50000, 300), (12, 0.5, 0.6)]
)
def test_sqrt_q0_is_z(n: float, b: float, sigma_b: float) -> None:
    r = discovery(n, b, sigma_b)
    assert math.sqrt(r["q0"]) == pytest.approx(r["z"], abs=1e-6)
    assert r["p0"] == pytest.approx(stats.norm.sf(r["z"]), rel=1e-6)


def test_deficits_and_edge_cases() -> None:
    assert discovery(90, 100, 10) == {"p0": 0.5, "z": 0.0, "q0": 0.0}
    assert discovery(0, 0, 0)["z"] == 0.0
    assert discovery(0, 5, 1)["p0"] == 0.5
    big = discovery(5, 0.0, 0.0)
    assert big["z"] > 5 and np.isfinite(big["z"])
    assert z_fast(np.array([90.0]), np.array([100.0]), np.array([10.0]))[0] == 0.0
    with pytest.raises(AnomalyHuntError):
        discovery(-1, 5, 1)
    with pytest.raises(AnomalyHuntError):
        upper_limit(5, 5, float("nan"))


def test_large_counts_match_gaussian_limit() -> None:
    """For b >> 1 the significance is (n - b) / sqrt(b + sigma_b^2)."""
    b, sigma_b = 1e4, 100.0
    n = b + 3.0 * math.sqrt(b + sigma_b**2)
    assert discovery(n, b, sigma_b)["z"] == pytest.approx(3.0, rel=0.02)
    # a larger background uncertainty always dilutes the same excess
    assert discovery(n, b, 200.0)["z"] < discovery(n, b, 50.0)["z"]


def test_z_fast_matches_pyhf_on_a_grid() -> None:
    worst = 0.0
    for b in (1.0, 20.0, 1e3, 5e5):
        for rel in (0.0, 0.3, 2.0):  # sigma_b in units of sqrt(b)
            sigma_b = rel * math.sqrt(b)
            for z_target in (0.5, 2.0, 4.0):
                n = round(b + z_target * math.sqrt(b + sigma_b**2) + 1)
                z_ref = discovery(n, b, sigma_b)["z"]
                z = float(z_fast(np.array([n]), np.array([b]), np.array([sigma_b]))[0])
                worst = max(worst, abs(z - z_ref))
    assert worst < 1e-3


def test_background_only_p0_is_uniform() -> None:
    """Local p0 of background-only toys through the whole fit stage: P(p0 < a) = a for a <= 0.5.

    Every deficit has p0 = 0.5, so only toys with p0 < 0.5 are tested: 2 p0 ~ U(0, 1) there, and
    about half the toys have p0 < 0.5. The full path (Migrad + pyhf) runs on 150 toys, the
    vectorized path (tested above to agree with it) on 3000.
    """
    rng = np.random.default_rng(21)
    mean = background(2e4)
    toys = rng.poisson(mean, size=(150, mean.size)).astype(float)
    p0_full = []
    for counts in toys:
        fit = fit_function("dijet4", EDGES, counts, bin_masks(EDGES, *SR)[1], step_down=True)
        assert fit.valid
        b, sigma_b = fit.predict(*SR)
        p0_full.append(discovery(counts[SR_MASK].sum(), b, sigma_b)["p0"])
    p0_full = np.array(p0_full)
    nominal = fit_function("dijet4", EDGES, mean, bin_masks(EDGES, *SR)[1], step_down=True)
    many = rng.poisson(mean, size=(3000, mean.size)).astype(float)
    b, sigma_b, ok = fit_batch("dijet4", EDGES, many, SR, nominal.params)[:3]
    assert ok.all()
    p0_fast = stats.norm.sf(z_fast(many[:, SR_MASK].sum(axis=1), b, sigma_b))
    for p0, n in ((p0_full, 150), (p0_fast, 3000)):
        below = p0 < 0.5
        frac = below.mean()
        assert abs(frac - 0.5) < 3.5 * math.sqrt(0.25 / n)
        assert stats.kstest(2 * p0[below], "uniform").pvalue > 0.01
        # the tail that matters for a discovery: p0 < 0.05 in ~5% of the toys
        assert abs((p0 < 0.05).mean() - 0.05) < 3.5 * math.sqrt(0.05 * 0.95 / n) + 1e-9


def test_cls_limit_background_only_matches_expected() -> None:
    r = upper_limit(100, 100, 10)
    assert r["observed"] == pytest.approx(r["expected"], rel=0.01)
    band = r["expected_band"]
    assert all(lo < hi for lo, hi in zip(band, band[1:], strict=False))
    assert band[2] == r["expected"]
    # asymptotic median CLs limit: 1.96 sqrt(b + sigma_b^2)
    big = upper_limit(1e4, 1e4, 50.0)
    assert big["expected"] == pytest.approx(1.96 * math.sqrt(1e4 + 50.0**2), rel=0.03)


def test_limits_grow_with_background_uncertainty_and_excess() -> None:
    limits = [upper_limit(100, 100, s)["observed"] for s in (0.0, 10.0, 30.0)]
    assert limits[0] < limits[1] < limits[2]
    assert upper_limit(140, 100, 10)["observed"] > limits[1] > upper_limit(80, 100, 10)["observed"]
    # small counts: the limit stays finite and positive
    small = upper_limit(0, 0.5, 0.2)
    assert 0.5 < small["observed"] < 10


def test_eigen_variations_reproduce_the_covariance() -> None:
    from anomalyhunt.stats.model import eigen_variations

    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 3))  # rank 3, as a 3-parameter fit predicting 4 bins
    cov = a @ a.T
    var = eigen_variations(cov)
    assert var.shape == (3, 4)
    np.testing.assert_allclose(var.T @ var, cov, atol=1e-10)
    np.testing.assert_allclose(eigen_variations(np.array([[4.0]])), [[2.0]])


@pytest.mark.parametrize(
    ("n", "b", "sigma"), [(130, 100, 8), (1000, 900, 40), (50, 60, 5), (300, 100, 10)]
)
def test_one_bin_multibin_model_is_the_closed_form(n: float, b: float, sigma: float) -> None:
    from anomalyhunt.stats.significance import discovery_multi, z_fast_multi

    z = z_fast(n, b, sigma)
    multi = discovery_multi(np.array([n]), np.array([b]), np.array([[sigma**2]]), np.array([1.0]))
    assert multi["z"] == pytest.approx(float(z), abs=1e-5)
    assert multi["z"] == pytest.approx(discovery(n, b, sigma)["z"], abs=1e-5)
    assert z_fast_multi(np.array([[n]]), np.array([[b]]), np.array([[[sigma]]]), np.array([1.0]))[
        0
    ] == (pytest.approx(float(z), abs=1e-9))


def test_multibin_closed_form_agrees_with_pyhf_and_recovers_a_bump() -> None:
    from anomalyhunt.stats.model import eigen_variations
    from anomalyhunt.stats.significance import discovery_multi, fit_signal_multi, z_fast_multi

    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T * 4
    b = np.array([200.0, 150, 120, 90])
    shape = np.array([0.2, 0.4, 0.3, 0.1])
    var = eigen_variations(cov)
    for _ in range(3):
        n = rng.poisson(b + 40 * shape).astype(float)
        ref = discovery_multi(n, b, cov, shape)
        assert z_fast_multi(n[None], b[None], var[None], shape)[0] == pytest.approx(
            ref["z"], abs=1e-4
        )
        s_hat, _ = fit_signal_multi(n[None], b[None], var[None], shape)
        assert s_hat[0] == pytest.approx(ref["signal_hat"], abs=1e-3 * max(1.0, ref["signal_hat"]))
    # pulls of an injected yield: toys fluctuate data and the background prediction alike
    n_toys, s_true = 2000, 60.0
    b_toys = b + rng.standard_normal((n_toys, var.shape[0])) @ var
    n = rng.poisson(b + s_true * shape, size=(n_toys, 4)).astype(float)
    s_hat, sigma = fit_signal_multi(n, b_toys, np.broadcast_to(var, (n_toys, *var.shape)), shape)
    pull = (s_hat - s_true) / sigma
    assert abs(pull.mean()) < 0.1 and abs(pull.std() - 1.0) < 0.08
