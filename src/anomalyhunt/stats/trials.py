"""Global significance: the look-elsewhere effect over all windows and anomaly-score cuts.

Two estimates: background-only pseudo-experiments of the whole fit stage (:func:`toy_scans` and
:func:`global_significance`), and the Gross-Vitells upcrossing extrapolation for 1D scans
(:func:`gross_vitells`, :func:`gross_vitells_multi`), which gives a number beyond the toys' reach.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.functions import bin_masks, sr_groups
from anomalyhunt.stats.model import eigen_variations
from anomalyhunt.stats.significance import z_fast, z_fast_multi

log = logging.getLogger(__name__)


def _one_test(test: dict[str, Any], n_toys: int, seed_seq: np.random.SeedSequence) -> np.ndarray:
    """Local z of ``n_toys`` background-only pseudo-experiments of one test (window x cut).

    Each toy is refitted with the test's own background function and free parameters and tested
    with its own SR model (one counting bin, or ``sr_bins`` bins with the fit's eigen-variations),
    as the data were, the function-choice uncertainty (``choice_shift``) included.
    """
    edges = np.asarray(test["edges"], dtype=float)
    expected = np.asarray(test["expected"], dtype=float)
    sr = (float(test["sr"][0]), float(test["sr"][1]))
    sr_bins = int(test.get("sr_bins") or 1)
    offset = test.get("log_offset")
    rng = np.random.default_rng(seed_seq)
    counts = rng.poisson(expected, size=(n_toys, expected.size)).astype(float)
    res = fit_batch(
        test.get("function") or "dijet4",
        edges,
        counts,
        sr,
        np.asarray(test["start"], dtype=float),
        sr_bins=sr_bins,
        log_offset=None if offset is None else np.asarray(offset, dtype=float),
        max_free=test.get("n_free"),
    )
    ok = res.ok
    z = np.zeros(n_toys)
    shift = test.get("choice_shift")
    shift = np.zeros(edges.size - 1) if shift is None else np.asarray(shift, dtype=float)
    if sr_bins == 1:
        n_sr = counts[:, bin_masks(edges, *sr)[0]].sum(axis=1)
        sigma_b = np.hypot(res.sigma_b[ok], shift[bin_masks(edges, *sr)[0]].sum())
        z[ok] = z_fast(n_sr[ok], res.b[ok], sigma_b)
        return z
    groups = sr_groups(edges, sr, sr_bins)
    n_g = np.stack([counts[ok][:, m].sum(axis=1) for m in groups], axis=1)
    shape = np.asarray(test["signal_shape"], dtype=float)
    shift_g = np.array([shift[m].sum() for m in groups])
    cov = res.cov_groups[ok] + np.outer(shift_g, shift_g)[None]
    z[ok] = z_fast_multi(n_g, res.b_groups[ok], eigen_variations(cov), shape)
    return z


def _run_chunk(args: tuple) -> tuple[int, np.ndarray]:
    index, test, n_toys, seed_seq = args
    return index, _one_test(test, n_toys, seed_seq)


def toy_scans(
    tests: list[dict], n_toys: int, seed: int, n_jobs: int = 1, progress: bool = True
) -> np.ndarray:
    """Local z of every test in background-only pseudo-experiments of the whole fit stage.

    Each test dict holds ``edges``, ``expected`` (the nominal fitted background in every bin of
    the window: the Poisson mean of the toys), ``sr`` and ``start`` (the nominal fit's params),
    and optionally ``function`` (the background function the nominal fit chose; default dijet4;
    a ratio member also needs ``log_offset``, the uncut spectrum it multiplies), ``n_free`` (its
    number of free parameters; default all), ``sr_bins`` and ``signal_shape`` (the multi-bin SR
    model). Per toy the histogram is
    fluctuated, the sidebands refitted with that function (vectorized Newton fit, tested to agree
    with Migrad) and z computed in closed form or by a vectorized profile fit (both tested to
    agree with pyhf). A toy whose fit
    fails gets z = 0: a failed fit can never claim an excess, as in the nominal stage.

    Tests are fluctuated independently. Overlapping windows and nested score cuts share events in
    reality, so real local z values are positively correlated; ignoring that makes the toys' max z
    larger than it should be and the trial factor conservative. Each test has its own random
    stream (``SeedSequence(seed).spawn``), so results are identical for any ``n_jobs``.
    Returns an array (n_toys, n_tests).
    """
    if n_toys < 1:
        raise AnomalyHuntError(f"toy_scans: n_toys = {n_toys} must be at least 1")
    for i, t in enumerate(tests):
        missing = {"edges", "expected", "sr", "start"} - set(t)
        if missing:
            raise AnomalyHuntError(f"toy_scans: test {i} lacks {sorted(missing)}")
    seeds = np.random.SeedSequence(seed).spawn(len(tests))
    out = np.zeros((n_toys, len(tests)))
    jobs = [(i, t, n_toys, seeds[i]) for i, t in enumerate(tests)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tests), desc="toy scans", unit="test")
    try:
        if n_jobs > 1 and len(tests) > 1:
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(tests))) as pool:
                for i, z in pool.map(_run_chunk, jobs):
                    out[:, i] = z
                    if bar is not None:
                        bar.update()
        else:
            for job in jobs:
                i, z = _run_chunk(job)
                out[:, i] = z
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return out


def global_significance(z_obs_max: float, toy_max_z: np.ndarray) -> dict[str, Any]:
    """Global p-value of the largest observed local z from the toys' largest local z.

    p_global = (k + 1) / (n + 1), with k of n toys at or above z_obs_max: the standard valid
    (slightly conservative) permutation-test estimate, never zero. p_global_err is its binomial
    standard error. With k = 0 the toys only bound the p-value: ``is_upper_bound`` is set,
    p_global = 1/(n + 1) is then an upper bound and z_global a lower bound.
    """
    toys = np.asarray(toy_max_z, dtype=float).ravel()
    toys = toys[np.isfinite(toys)]
    n = int(toys.size)
    if n == 0:
        raise AnomalyHuntError("global_significance: no pseudo-experiments to compare with")
    k = int((toys >= z_obs_max).sum())
    p = (k + 1) / (n + 1)
    err = math.sqrt(p * (1.0 - p) / (n + 1))
    # 95% CL Clopper-Pearson upper bound, useful when k is small
    p_up95 = float(stats.beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0
    return {
        "p_global": p,
        "p_global_err": err,
        "p_global_upper95": p_up95,
        "z_global": float(max(stats.norm.isf(p), 0.0)),
        "n_toys": n,
        "n_exceed": k,
        "is_upper_bound": k == 0,
        "method": "toys, (k+1)/(n+1)",
    }


def _upcrossings(z_scans: np.ndarray, u: float) -> np.ndarray:
    """Number of upcrossings of level u in each row (ordered scan); NaN counts as below."""
    z = np.where(np.isfinite(z_scans), z_scans, -np.inf)
    return ((z[:, :-1] < u) & (z[:, 1:] >= u)).sum(axis=1)


#: Fewest upcrossings (summed over all scans) for a level to enter the Gross-Vitells fit.
GV_MIN_COUNT = 25


def _upcrossing_levels(z: np.ndarray, u0: float, z_max: float, step: float = 0.25) -> np.ndarray:
    """Reference levels from u0 up to z_max (exclusive) where the scans cross often enough."""
    levels = [u0]
    u = u0 + step
    while u < z_max - 1e-9:
        if _upcrossings(z, u).sum() < GV_MIN_COUNT:
            break
        levels.append(u)
        u += step
    return np.asarray(levels)


def gross_vitells(
    z_scans: np.ndarray, z_max: float, u0: float = 1.0, method: str = "fit"
) -> dict[str, Any]:
    """Gross-Vitells estimate of the global p-value of a local z_max in one ordered 1D scan.

    Rows of ``z_scans`` are background-only scans (local z vs window centre, one score cut); a
    single row may be the observed scan itself (a rough estimate). Any ordered scan obeys
    p_global <= P(first point >= u) + E[N(u)], N(u) its upcrossings of u; the question is E[N]
    at a high u from counts at low levels.

    ``method="single"`` is the classic extrapolation from one level, E[N(u)] =
    N(u0) exp(-(u^2 - u0^2) / 2), exact for a smooth (continuous) field. A coarse scan of nearly
    independent windows is not smooth: there E[N(u)] ~ P(z > u), which falls faster by a factor
    ~ u, so extrapolating from u0 = 1 to 3 overestimates p by ~2x. ``method="fit"`` (default)
    therefore fits E[N(u)] = a exp(-u^2 / 2) + c P(z > u), a, c >= 0 (the smooth term and the
    lattice term of the expected Euler characteristic), to the mean upcrossings at every level
    from u0 up to the highest one crossed at least ``GV_MIN_COUNT`` times over all scans, and
    uses it at z_max. With one level only (one scan, few crossings) it is the single-level form.
    """
    z = np.atleast_2d(np.asarray(z_scans, dtype=float))
    if z.shape[1] < 2:
        raise AnomalyHuntError("gross_vitells: a scan needs at least two points")
    if method not in ("fit", "single"):
        raise AnomalyHuntError(f"gross_vitells: method '{method}' is neither 'fit' nor 'single'")
    n0 = float(_upcrossings(z, u0).mean())
    p_local = float(stats.norm.sf(z_max))
    levels = _upcrossing_levels(z, u0, z_max) if method == "fit" else np.array([u0])
    a, c = n0 * math.exp(u0**2 / 2.0), 0.0
    if levels.size >= 2:
        from scipy.optimize import nnls

        counts = np.array([_upcrossings(z, u).sum() for u in levels], dtype=float)
        mean = counts / z.shape[0]
        # Poisson errors of the counts: sigma(mean) = mean / sqrt(count), so every level counts
        inv_sigma = np.sqrt(np.maximum(counts, 1.0)) / np.maximum(mean, 1e-300)
        design = np.stack([np.exp(-(levels**2) / 2.0), stats.norm.sf(levels)], axis=1)
        (a, c), _ = nnls(design * inv_sigma[:, None], mean * inv_sigma)
    expected_n = a * math.exp(-(z_max**2) / 2.0) + c * p_local
    p = min(1.0, p_local + expected_n)
    return {
        "p_global": p,
        "z_global": float(max(stats.norm.isf(p), 0.0)),
        "p_local": p_local,
        "N0": n0,
        "u0": u0,
        "method": method if levels.size >= 2 else "single",
        "levels": [float(u) for u in levels],
        "smooth_coeff": float(a),
        "lattice_coeff": float(c),
        "expected_upcrossings": expected_n,
        "n_scans": int(z.shape[0]),
    }


def gross_vitells_multi(
    z_scans_per_cut: list[np.ndarray], z_max: float, u0: float = 1.0, method: str = "fit"
) -> dict[str, Any]:
    """Gross-Vitells over several 1D scans (one per score cut): the bounds of each scan add.

    p_global <= sum over scans [p_local + E[N_c(z_max)]]: a union bound, conservative when the
    scans are correlated (nested cuts share events).
    """
    if not z_scans_per_cut:
        raise AnomalyHuntError("gross_vitells_multi: no scans given")
    parts = [gross_vitells(z, z_max, u0, method) for z in z_scans_per_cut]
    p_local = parts[0]["p_local"]
    expected_n = sum(p["expected_upcrossings"] for p in parts)
    p = min(1.0, len(parts) * p_local + expected_n)
    return {
        "p_global": p,
        "z_global": float(max(stats.norm.isf(p), 0.0)),
        "p_local": p_local,
        "N0": [p["N0"] for p in parts],
        "u0": u0,
        "expected_upcrossings": expected_n,
        "method": method,
        "n_cuts": len(parts),
    }
