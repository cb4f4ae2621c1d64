"""Coverage and calibration of the search statistics on pseudo-data; prints a Markdown table.

    python benchmarks/stats_validation.py                    # defaults: ~1-2 minutes on 2 cores
    python benchmarks/stats_validation.py --toys 10000 --limit-toys 400 --scan-toys 10000

Pseudo-data are Poisson fluctuations of a falling dijet spectrum. Each toy goes through the same
code as the search: the dijet4 sideband fit (``stats.fit``, ``stats.batch``), the pyhf model's discovery test and CLs
limit (``stats.significance``) and the look-elsewhere tools (``stats.trials``). Checked:

1. local p0 of background-only toys: the rates of p0 < 0.05 and p0 < 0.01 should be the nominal
   ones (z from the closed form, which the tests show equals pyhf's; a pyhf subset is compared);
2. the fitted-background uncertainty: spread of b around the truth against the reported sigma_b;
3. the pull of the fitted signal yield, (n - b - s) / sqrt(b + s + sigma_b^2), with and without
   an injected narrow bump of s events (the variance in the denominator is that of n - b);
4. CLs 95% upper-limit coverage: with s injected, the limit should exceed s in >= 95% of toys.
   CLs = CLs+b / CLb over-covers wherever CLb < 1 matters, i.e. for s of the order of the
   expected limit; the default s (twice the median expected limit) is large enough for CLb ~ 1,
   where the rate should come close to the nominal 95%;
5. the global p-value of a local Z = 3 from correlated toy scans (one spectrum, 11 overlapping
   windows), from independent per-window toys (what the search's toys assume) and from the
   Gross-Vitells extrapolation (classic single level u0 = 1, and the smooth + lattice fit over
   many levels that the search uses), both from the scans' upcrossings;
6. the multi-bin SR model (4 SR bins, eigen-variations of the fit covariance, Gaussian signal
   shape): pull of the fitted yield of an injected Gaussian bump, and its median Z against the
   one-bin model.
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import stats

from anomalyhunt.stats import trials
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.fit import FunctionFit, fit_function
from anomalyhunt.stats.functions import bin_masks, get_function, sr_groups
from anomalyhunt.stats.model import eigen_variations
from anomalyhunt.stats.significance import (
    discovery,
    fit_signal_multi,
    upper_limit,
    z_fast,
    z_fast_multi,
)

PARAMS = np.array([1.0, 10.0, 5.0, 0.0])
WIDTH = 0.05
SIGNAL_MJJ, SIGNAL_SIGMA = 3.5, 0.04  # narrow: > 99.99% of it inside the SR 3.3-3.7 TeV
dijet = get_function("dijet4").density


def fit_sidebands(edges: np.ndarray, counts: np.ndarray, sr: tuple[float, float]) -> FunctionFit:
    """The search's sideband fit of one function: dijet4, stepping down if it fails."""
    return fit_function("dijet4", edges, counts, bin_masks(edges, *sr)[1], step_down=True)


def bin_means(edges: np.ndarray, total: float) -> np.ndarray:
    """Expected background per bin (20-point midpoint integral), ``total`` events over ``edges``."""
    sub = (np.arange(20) + 0.5) / 20
    widths = np.diff(edges)
    dens = np.array(
        [
            dijet(lo + w * sub, PARAMS).sum() * w / 20
            for lo, w in zip(edges[:-1], widths, strict=True)
        ]
    )
    return total * dens / dens.sum()


def signal_means(edges: np.ndarray, s: float) -> np.ndarray:
    return s * np.diff(stats.norm.cdf(edges, SIGNAL_MJJ, SIGNAL_SIGMA))


def one_window(events: float) -> tuple[np.ndarray, tuple[float, float], np.ndarray, np.ndarray]:
    """The test window of the local checks: 2.9-4.1 TeV, SR 3.3-3.7 TeV."""
    edges = np.round(np.arange(2.9, 4.1 + 1e-9, WIDTH), 6)
    sr = (3.3, 3.7)
    sr_mask = (edges[:-1] >= sr[0] - 1e-9) & (edges[1:] <= sr[1] + 1e-9)
    return edges, sr, sr_mask, bin_means(edges, events)


def fit_toys(counts: np.ndarray, edges, sr, sr_mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n, b, sigma_b of every toy from the Migrad sideband fit (NaN where the fit failed)."""
    n = counts[:, sr_mask].sum(axis=1)
    b = np.full(len(counts), np.nan)
    sig = np.full(len(counts), np.nan)
    for i, c in enumerate(counts):
        fit = fit_sidebands(edges, c, sr)
        if fit.valid:
            b[i], sig[i] = fit.predict(*sr)
    return n, b, sig


def _limit(args: tuple[float, float, float]) -> float:
    try:
        return upper_limit(*args)["observed"]
    except Exception:
        return float("nan")


def rate(k: int, n: int) -> str:
    p = k / n if n else float("nan")
    return f"{p:.4f} ± {math.sqrt(max(p * (1 - p), 1.0 / n) / n):.4f}" if n else "n/a"


def p0_rows(p0: np.ndarray, model: str) -> list[tuple[str, str, str, str]]:
    """Rates of small p0 and a KS test of uniformity for background-only local p-values.

    The one-sided q0 puts every downward fluctuation at p0 = 0.5, so uniformity is tested on
    2 p0 of the upward half, and the size of that half should be 1/2.
    """
    m = len(p0)
    up = p0 < 0.5
    rows = [
        (
            f"P(local p0 < {alpha}), {model}",
            rate(int((p0 < alpha).sum()), m),
            f"{alpha}",
            "asymptotic q0, background only",
        )
        for alpha in (0.05, 0.01)
    ]
    ks = stats.kstest(2 * p0[up], "uniform")
    rows.append(
        (
            f"KS p-value, 2 p0 uniform (p0 < 0.5), {model}",
            f"{ks.pvalue:.2f}",
            "> 0.01",
            f"{int(up.sum())} of {m} toys fluctuate up ({up.mean():.3f}, expected 0.5)",
        )
    )
    return rows


def multibin_rows(
    args: argparse.Namespace,
    rng: np.random.Generator,
    edges: np.ndarray,
    sr: tuple[float, float],
    sr_mask: np.ndarray,
    mean: np.ndarray,
    s: float,
) -> list[tuple]:
    """Background-only p0, and pulls and median Z of an injected bump, of the multi-bin SR model.

    The signal shape of the test is the search's default Gaussian (``--resolution``); the bump
    injected in the second half has that shape too.
    """
    centre = 0.5 * (sr[0] + sr[1])
    sig = s * np.diff(stats.norm.cdf(edges, centre, args.resolution * centre))
    s_sr = float(sig[sr_mask].sum())
    nominal = fit_sidebands(edges, mean, sr)
    masks = sr_groups(edges, sr, args.sr_bins)
    shape = np.array([sig[m].sum() for m in masks])

    def fit(counts: np.ndarray) -> tuple[np.ndarray, ...]:
        res = fit_batch("dijet4", edges, counts, sr, nominal.params, sr_bins=args.sr_bins)
        ok1 = res.ok
        n_g = np.stack([counts[:, m].sum(axis=1) for m in masks], axis=1)[ok1]
        var = eigen_variations(res.cov_groups[ok1])
        b1, sig1, b_g = res.b, res.sigma_b, res.b_groups
        return n_g, b_g[ok1], var, b1[ok1], sig1[ok1]

    n_g, b_g, var, _, _ = fit(rng.poisson(mean, size=(args.toys, mean.size)).astype(float))
    z0 = z_fast_multi(n_g, b_g, var, shape)
    rows = p0_rows(np.where(z0 > 0, stats.norm.sf(z0), 0.5), f"{args.sr_bins} SR bins")
    n_g, b_g, var, b1, sig1 = fit(
        rng.poisson(mean + sig, size=(args.toys, mean.size)).astype(float)
    )
    s_hat, s_err = fit_signal_multi(n_g, b_g, var, shape)
    pull = (s_hat - s_sr) / s_err
    z_multi = z_fast_multi(n_g, b_g, var, shape)
    z_one = z_fast(n_g.sum(axis=1), b1, sig1)
    note = f"{args.sr_bins} SR bins, Gaussian bump sigma = {args.resolution:g} x {centre:g} TeV, {s_sr:.0f} events in the SR"
    return rows + [
        (
            f"multi-bin pull of the fitted yield, s = {s_sr:.0f}: mean / width",
            f"{pull.mean():+.3f} / {pull.std():.3f}",
            "0 / 1",
            note,
        ),
        (
            "median Z_local: multi-bin / one bin",
            f"{np.median(z_multi):.2f} / {np.median(z_one):.2f}",
            "multi-bin >= one bin",
            "same toys; a narrow bump gains from the shape",
        ),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--toys", type=int, default=2000, help="toys of the p0 and pull checks")
    p.add_argument("--limit-toys", type=int, default=100, help="toys of the CLs coverage check")
    p.add_argument("--scan-toys", type=int, default=10000, help="toy scans of the global check")
    p.add_argument(
        "--gv-scans",
        type=int,
        default=None,
        help="scans Gross-Vitells may use (default: all, as the search does)",
    )
    p.add_argument("--sr-bins", type=int, default=4, help="SR bins of the multi-bin check")
    p.add_argument(
        "--resolution",
        type=float,
        default=0.02,
        help="relative width of the injected Gaussian bump of the multi-bin check",
    )
    p.add_argument("--events", type=float, default=20000, help="background events in the window")
    p.add_argument(
        "--signal",
        type=float,
        default=None,
        help="injected yield (default: twice the median expected 95%% limit)",
    )
    p.add_argument("--pyhf-check", type=int, default=40, help="toys also tested with pyhf")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    t_start = time.perf_counter()
    rows: list[tuple[str, str, str, str]] = []
    timings: list[str] = []

    edges, sr, sr_mask, mean = one_window(args.events)
    b_true = float(mean[sr_mask].sum())

    # 1-3: background only
    t0 = time.perf_counter()
    counts = rng.poisson(mean, size=(args.toys, mean.size)).astype(float)
    n, b, sig = fit_toys(counts, edges, sr, sr_mask)
    ok = np.isfinite(b)
    z = z_fast(n[ok], b[ok], sig[ok])
    p0 = np.where(z > 0, stats.norm.sf(z), 0.5)
    m = int(ok.sum())
    rows.append(
        (
            "fit success (background only)",
            f"{m}/{args.toys}",
            "all",
            f"b_true = {b_true:.1f} in the SR",
        )
    )
    rows += p0_rows(p0, "one SR bin")
    n_check = min(args.pyhf_check, m)
    dz = [abs(discovery(n[ok][i], b[ok][i], sig[ok][i])["z"] - z[i]) for i in range(n_check)]
    rows.append(
        ("max abs(z_pyhf - z_closed)", f"{max(dz, default=0):.2g}", "~0", f"{n_check} toys")
    )
    resid = b[ok] - b_true
    rows.append(
        (
            "std(b - b_true) / median(sigma_b)",
            f"{resid.std() / np.median(sig[ok]):.3f}",
            "1",
            f"median sigma_b = {np.median(sig[ok]):.1f}",
        )
    )
    rows.append(
        (
            "mean(b - b_true) / median(sigma_b)",
            f"{resid.mean() / np.median(sig[ok]):+.3f}",
            "0",
            "bias of the interpolation",
        )
    )
    pull0 = (n[ok] - b[ok]) / np.sqrt(b[ok] + sig[ok] ** 2)
    rows.append(
        (
            "pull, s = 0: mean / width",
            f"{pull0.mean():+.3f} / {pull0.std():.3f}",
            "0 / 1",
            "(n - b) / sqrt(b + sigma_b^2)",
        )
    )
    timings.append(f"background-only fits: {time.perf_counter() - t0:.1f} s")

    # injected signal: by default twice the median expected limit, where CLs is nearly CLs+b
    s = args.signal
    if s is None:
        s = 2.0 * float(upper_limit(b_true, b_true, float(np.median(sig[ok])))["expected"])
    t0 = time.perf_counter()
    sig_mean = signal_means(edges, s)
    counts = rng.poisson(mean + sig_mean, size=(args.toys, mean.size)).astype(float)
    n, b, sig = fit_toys(counts, edges, sr, sr_mask)
    ok = np.isfinite(b)
    pull = (n[ok] - b[ok] - s) / np.sqrt(b[ok] + s + sig[ok] ** 2)
    rows.append(
        (
            f"pull, s = {s:.0f}: mean / width",
            f"{pull.mean():+.3f} / {pull.std():.3f}",
            "0 / 1",
            "(n - b - s) / sqrt(b + s + sigma_b^2)",
        )
    )
    rows.append(
        (
            f"median Z_local, s = {s:.0f}",
            f"{np.median(z_fast(n[ok], b[ok], sig[ok])):.2f}",
            "",
            "for scale",
        )
    )
    timings.append(f"signal fits: {time.perf_counter() - t0:.1f} s")

    # 4: CLs coverage
    t0 = time.perf_counter()
    idx = np.flatnonzero(ok)[: args.limit_toys]
    jobs = [(float(n[i]), float(b[i]), float(sig[i])) for i in idx]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            limits = np.array(list(pool.map(_limit, jobs, chunksize=4)))
    else:
        limits = np.array([_limit(j) for j in jobs])
    good = np.isfinite(limits)
    k = int((limits[good] >= s).sum())
    rows.append(
        (
            f"CLs 95% coverage, s = {s:.0f}",
            rate(k, int(good.sum())),
            ">= 0.95",
            f"limit >= s; {int((~good).sum())} limit failures",
        )
    )
    timings.append(f"CLs limits ({len(jobs)}): {time.perf_counter() - t0:.1f} s")

    # 5: global p-value at Z_local = 3 over 11 overlapping windows of one spectrum
    t0 = time.perf_counter()
    full = np.round(np.arange(2.5, 6.1 + 1e-9, WIDTH), 6)
    full_mean = bin_means(full, 10 * args.events)
    windows = []
    for w in range(11):
        lo = 0.2 * w
        i0 = round(lo / WIDTH)
        sl = slice(i0, i0 + 32)  # 1.6 TeV span: 0.6 TeV sidebands around a 0.4 TeV SR
        e = full[i0 : i0 + 33]
        sr_w = (round(e[0] + 0.6, 6), round(e[0] + 1.0, 6))
        nominal = fit_sidebands(e, full_mean[sl], sr_w)
        windows.append((sl, e, sr_w, nominal))
    spectra = rng.poisson(full_mean, size=(args.scan_toys, full_mean.size)).astype(float)
    zc = np.zeros((args.scan_toys, len(windows)))
    for j, (sl, e, sr_w, nominal) in enumerate(windows):
        inside = (e[:-1] >= sr_w[0] - 1e-9) & (e[1:] <= sr_w[1] + 1e-9)
        bw, sw, okw = fit_batch("dijet4", e, spectra[:, sl], sr_w, nominal.params)[:3]
        zc[okw, j] = z_fast(spectra[:, sl][:, inside].sum(axis=1)[okw], bw[okw], sw[okw])
    z_ref = 3.0
    corr = trials.global_significance(z_ref, zc.max(axis=1))
    tests = [
        {"edges": e, "expected": nom.expected, "sr": sr_w, "start": nom.params}
        for _sl, e, sr_w, nom in windows
    ]
    zi = trials.toy_scans(tests, args.scan_toys, args.seed + 1, n_jobs=1, progress=False)
    indep = trials.global_significance(z_ref, zi.max(axis=1))
    n_gv = args.scan_toys if args.gv_scans is None else args.gv_scans
    gv1 = trials.gross_vitells(zc[:n_gv], z_ref, method="single")
    gv = trials.gross_vitells(zc[:n_gv], z_ref)
    fmt = "{p_global:.4f} ± {p_global_err:.4f} (Z = {z_global:.2f})"
    rows.append(
        (
            "p_global(Z_loc = 3), correlated toys",
            fmt.format(**corr),
            "reference",
            f"{args.scan_toys} scans of one spectrum, 11 windows",
        )
    )
    rows.append(
        (
            "p_global(Z_loc = 3), independent toys",
            fmt.format(**indep),
            ">= reference",
            "windows fluctuated separately, as trials.toy_scans",
        )
    )
    rows.append(
        (
            "p_global(Z_loc = 3), Gross-Vitells, single level",
            f"{gv1['p_global']:.4f} (Z = {gv1['z_global']:.2f})",
            "~ reference",
            f"N0 = {gv1['N0']:.2f} from {gv1['n_scans']} scans, u0 = 1: exp(-u^2/2) extrapolation",
        )
    )
    rows.append(
        (
            "p_global(Z_loc = 3), Gross-Vitells, fit (search)",
            f"{gv['p_global']:.4f} (Z = {gv['z_global']:.2f})",
            "~ reference",
            f"a exp(-u^2/2) + c P(z>u), a = {gv['smooth_coeff']:.2f}, c = {gv['lattice_coeff']:.2f}, "
            f"levels {gv['levels'][0]:g}-{gv['levels'][-1]:g}; ratio to correlated toys "
            f"{gv['p_global'] / corr['p_global']:.2f}",
        )
    )
    rows.append(
        (
            "p_local(Z = 3) x 11 windows",
            f"{min(1.0, 11 * stats.norm.sf(z_ref)):.4f}",
            ">= reference",
            "Bonferroni bound",
        )
    )
    timings.append(
        f"global ({args.scan_toys} scans x 11 windows, twice): {time.perf_counter() - t0:.1f} s"
    )

    # 6: multi-bin SR model with an injected Gaussian bump at the SR centre
    t0 = time.perf_counter()
    rows += multibin_rows(args, rng, edges, sr, sr_mask, mean, s)
    timings.append(f"multi-bin ({args.toys} toys): {time.perf_counter() - t0:.1f} s")

    print(
        f"## Statistics validation (seed {args.seed}, {args.toys} toys, window 2.9-4.1 TeV, "
        f"SR 3.3-3.7 TeV, {args.events:.0f} background events)\n"
    )
    print("| check | measured | expected | note |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nwall time {time.perf_counter() - t_start:.1f} s ({'; '.join(timings)})")


if __name__ == "__main__":
    main()
