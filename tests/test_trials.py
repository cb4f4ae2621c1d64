"""Look-elsewhere effect: toy scans of the whole fit stage, toy global p-values, Gross-Vitells."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import ndimage, stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.fit import fit_function
from anomalyhunt.stats.functions import bin_masks, get_function
from anomalyhunt.stats.trials import (
    global_significance,
    gross_vitells,
    gross_vitells_multi,
    toy_scans,
)

CUTS = (1.0, 0.1, 0.01, 0.001)


def _window_density(edges: np.ndarray, params: np.ndarray) -> np.ndarray:
    sub = (np.arange(20) + 0.5) / 20
    return np.array(
        [
            (get_function("dijet4").density(lo + 0.05 * sub, params) * 0.05 / 20).sum()
            for lo in edges[:-1]
        ]
    )


def make_tests(n_windows: int = 11) -> list[dict]:
    """Nominal fits of 11 windows x 4 score cuts of a falling dijet spectrum: 5e5 events in the
    first window without a cut, ~40 in the last window with the tightest cut."""
    params = np.array([1.0, 10.0, 5.0, 0.0])
    first = np.round(2.9 + 0.05 * np.arange(25), 6)
    scale = 5e5 / _window_density(first, params).sum()
    tests = []
    for k in range(n_windows):
        lo = round(2.9 + 0.1 * k, 6)
        edges = np.round(lo + 0.05 * np.arange(25), 6)
        sr = (round(lo + 0.4, 6), round(lo + 0.8, 6))
        per_bin = scale * _window_density(edges, params)
        for cut in CUTS:
            fit = fit_function(
                "dijet4", edges, cut * per_bin, bin_masks(edges, *sr)[1], step_down=True
            )
            assert fit.valid, fit.message
            tests.append({"edges": edges, "expected": fit.expected, "sr": sr, "start": fit.params})
    return tests


@pytest.fixture(scope="module")
def tests44() -> list[dict]:
    return make_tests()


def test_toy_scans_reproducible_and_parallel(tests44: list[dict]) -> None:
    a = toy_scans(tests44, n_toys=100, seed=5, n_jobs=1, progress=False)
    b = toy_scans(tests44, n_toys=100, seed=5, n_jobs=2, progress=False)
    assert a.shape == (100, 44)
    np.testing.assert_array_equal(a, b)
    c = toy_scans(tests44, n_toys=100, seed=6, n_jobs=1, progress=False)
    assert not np.array_equal(a, c)
    with pytest.raises(AnomalyHuntError):
        toy_scans([{"edges": [1, 2]}], n_toys=10, seed=1, progress=False)


def test_toy_scans_statistics_and_timing(tests44: list[dict]) -> None:
    n_toys = 1000
    timings = {}
    for n_jobs in (1, 2):
        t0 = time.perf_counter()
        z = toy_scans(tests44, n_toys=n_toys, seed=7, n_jobs=n_jobs, progress=False)
        timings[n_jobs] = time.perf_counter() - t0
    print(
        f"\ntoy_scans {n_toys} toys x 44 tests: {timings[1]:.1f} s (1 job), {timings[2]:.1f} s (2 jobs)"
    )
    assert np.all(np.isfinite(z)) and np.all(z >= 0)
    # high-count tests (no cut, 10% cut): z is a half-normal: P(z > 0) = 1/2, P(z > 2) = 2.3%
    high = z[:, [4 * k + j for k in range(11) for j in (0, 1)]]
    assert abs((high > 0).mean() - 0.5) < 0.02
    assert abs((high > 2).mean() - stats.norm.sf(2)) < 0.006
    # the maximum over 44 tests: a local 3 sigma is far less rare globally, but the independent
    # tests can never exceed the union bound
    z_max = z.max(axis=1)
    p_glob = (z_max >= 3).mean()
    assert stats.norm.sf(3) < p_glob < 44 * stats.norm.sf(3) * 1.5
    g = global_significance(3.0, z_max)
    assert g["z_global"] < 3.0 and g["n_toys"] == n_toys


def test_global_significance_independent_normals() -> None:
    rng = np.random.default_rng(31)
    n_toys, n_tests = 20000, 44
    toy_max = rng.standard_normal((n_toys, n_tests)).max(axis=1)
    g = global_significance(3.0, toy_max)
    expected = 1 - (1 - stats.norm.sf(3.0)) ** n_tests
    assert abs(g["p_global"] - expected) < 4 * g["p_global_err"]
    assert not g["is_upper_bound"]
    assert g["z_global"] == pytest.approx(stats.norm.isf(g["p_global"]))
    # nothing reaches a local 8 sigma: only a bound
    far = global_significance(8.0, toy_max)
    assert far["is_upper_bound"] and far["n_exceed"] == 0
    assert far["p_global"] == pytest.approx(1 / (n_toys + 1))
    assert far["p_global_upper95"] == pytest.approx(3.0 / n_toys, rel=0.01)


def smooth_scans(
    rng: np.random.Generator, n: int, length: int = 200, width: float = 5.0
) -> np.ndarray:
    pad = int(6 * width)
    white = rng.standard_normal((n, length + 2 * pad))
    smooth = ndimage.gaussian_filter1d(white, width, axis=1, mode="wrap")[:, pad:-pad]
    kernel = ndimage.gaussian_filter1d(np.eye(1, 8 * pad + 1, 4 * pad)[0], width)
    return smooth / math.sqrt((kernel**2).sum())


def test_gross_vitells_agrees_with_toys() -> None:
    rng = np.random.default_rng(32)
    few = np.maximum(smooth_scans(rng, 200), 0.0)  # one-sided local z as in the search
    many = np.maximum(smooth_scans(rng, 8000), 0.0)
    z_max = 3.0
    p_toys = (many.max(axis=1) >= z_max).mean()
    gv = gross_vitells(few, z_max, u0=1.0)
    assert gv["N0"] > 1
    assert gv["p_global"] == pytest.approx(p_toys, rel=0.25)
    # a single (observed) scan gives a rough but finite estimate
    one = gross_vitells(few[0], z_max)
    assert 0 < one["p_global"] <= 1 and one["n_scans"] == 1
    # several independent scans (one per score cut): the bounds add up
    four_few = [np.maximum(smooth_scans(rng, 200), 0.0) for _ in range(4)]
    four_many = np.stack([np.maximum(smooth_scans(rng, 3000), 0.0) for _ in range(4)])
    p_toys4 = (four_many.max(axis=(0, 2)) >= z_max).mean()
    gv4 = gross_vitells_multi(four_few, z_max)
    assert gv4["n_cuts"] == 4 and len(gv4["N0"]) == 4
    assert gv4["p_global"] == pytest.approx(p_toys4, rel=0.3)


def test_gross_vitells_on_a_coarse_scan_of_independent_windows() -> None:
    """11 nearly independent windows: the single-level extrapolation from u0 = 1 overestimates
    p_global(3) by ~2x (E[N(u)] falls like P(z > u), not exp(-u^2/2)); the fit does not."""
    rng = np.random.default_rng(33)
    scans = np.maximum(rng.standard_normal((10000, 11)), 0.0)
    exact = 1 - (1 - stats.norm.sf(3.0)) ** 11
    single = gross_vitells(scans, 3.0, method="single")
    fit = gross_vitells(scans, 3.0)
    assert single["p_global"] > 1.6 * exact
    assert fit["p_global"] == pytest.approx(exact, rel=0.2)
    assert fit["method"] == "fit" and fit["levels"][-1] > 2.5 and fit["lattice_coeff"] > 5
    with pytest.raises(AnomalyHuntError):
        gross_vitells(scans, 3.0, method="euler")
