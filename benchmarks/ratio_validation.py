"""Are the bump hunt's local p-values after a score cut uniform on background only? Markdown table.

    python benchmarks/ratio_validation.py                 # 200 pseudo-searches, ~2 min on 2 cores
    python benchmarks/ratio_validation.py --toys 1000

Each pseudo-search is one window (SR 3.3-3.7 TeV, sidebands 2.7-3.3 and 3.7-4.3 TeV) of
background-only events from a falling dijet spectrum, with a score whose cut efficiency varies
smoothly with mjj (as a score that does not sculpt would), cut at the search's per-fold
thresholds. The whole bump hunt runs on it (``bumphunt.hunt``: the uncut dijet fit, the ratio
background with its F-test after each cut, the 4-bin pyhf SR model), and the asymptotic local p0
of every cut is collected, beside its p-value from its own toys (as the summary computes it).
Under the null an excess's u (2 p0, or the toy p-value over the toys' fraction of excesses) is
uniform: the table gives the rate of u < 0.1 (nominal 0.1) and the KS p-value, and how many
fits were flagged sparse. The 0.1% and 0.01% cuts keep about 400 and 40 events in the window:
the sparse, tight-cut tests where asymptotics are most in doubt.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy import stats

from anomalyhunt import bumphunt as bh
from anomalyhunt import summary
from anomalyhunt.regions import Window
from anomalyhunt.stats import trials

WINDOW = Window(id="w", sr=(3.3, 3.7), sb_low=(2.7, 3.3), sb_high=(3.7, 4.3))
EFFICIENCIES = (1.0, 0.1, 0.01, 0.001, 0.0001)


def pseudo_events(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Falling spectrum (power law in mjj over the window) and a smoothly mjj-dependent score."""
    lo, hi = WINDOW.span
    alpha = 6.0
    u = rng.uniform(size=n)
    mjj = (lo ** (1 - alpha) + u * (hi ** (1 - alpha) - lo ** (1 - alpha))) ** (1 / (1 - alpha))
    score = rng.normal(size=n) + 0.8 * np.log(mjj / 3.5)
    return pd.DataFrame(
        {
            "mjj": mjj,
            "region": WINDOW.region_of(mjj),
            "fold": rng.integers(0, 5, n),
            "label": np.zeros(n, dtype=np.int64),
            "score": score,
        }
    )


def one(seed: int, n: int, n_toys: int) -> list[tuple[float, float, float, bool]]:
    """(keep, asymptotic u, own-toys u, sparse) per cut; u is uniform for an excess (z > 0).

    u = 2 p0 asymptotically; from the test's own toys (the summary's local Z: the whole fit
    redone on fluctuations of the fitted background) u = p_toys / P_toys(z > 0), since a fit with
    few events need not give z > 0 in exactly half the toys. NaN for z = 0 (a deficit).
    """
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(seed)
    events = pseudo_events(rng, rng.poisson(n))
    opts = bh.HuntOptions(spurious=False, limits=False)
    cuts = bh.hunt(events, WINDOW, EFFICIENCIES, 0.05, opts)
    record = {
        "skipped": None,
        "cuts": cuts,
        "sr": list(WINDOW.sr),
        "method": "toy",
        "window": "w",
        "centre": WINDOW.centre,
    }
    tests, keys = summary.toy_tests([record])
    z_toys = trials.toy_scans(tests, n_toys, seed, progress=False)
    by_eff = {k[2]: i for i, k in enumerate(keys)}
    out = []
    for cut in cuts:
        sparse = bool((cut.get("fit") or {}).get("sparse", False))
        i = by_eff.get(cut["efficiency"])
        z = cut.get("z")
        if i is None or z is None or z <= 0:
            out.append((cut["efficiency"], np.nan, np.nan, sparse))
            continue
        zt = z_toys[:, i]
        p_toys = ((zt >= z).sum() + 1) / (zt.size + 1)
        out.append((cut["efficiency"], 2 * cut["p0"], p_toys / max((zt > 0).mean(), 1e-9), sparse))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--toys", type=int, default=200)
    p.add_argument(
        "--events", type=int, default=400_000, help="mean events per window before the cut"
    )
    p.add_argument("--local-toys", type=int, default=1000, help="toys per test for its own p-value")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    start = time.perf_counter()
    n = args.toys
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, range(n), [args.events] * n, [args.local_toys] * n))
    rows = pd.DataFrame(
        [r for res in results for r in res], columns=["efficiency", "u_asym", "u_toys", "sparse"]
    )
    print(
        f"{n} pseudo-searches of {args.events:,} events per window, {args.local_toys} toys per test, "
        f"{time.perf_counter() - start:.0f} s\n"
    )
    print(
        "| keep | events in window after the cut (mean) | excesses (z > 0) of tests "
        "| asymptotic: u < 0.1 / KS p | own toys: u < 0.1 / KS p | fits flagged sparse |"
    )
    print("|---|---|---|---|---|---|")
    for eff, g in rows.groupby("efficiency", sort=False):
        cells = []
        for col in ("u_asym", "u_toys"):
            u = g[col].dropna().to_numpy()
            ks = stats.kstest(np.clip(u, 0, 1), "uniform").pvalue if u.size > 5 else float("nan")
            cells.append(f"{np.mean(u < 0.1):.3f} / {ks:.3f}")
        print(
            f"| {100 * eff:g}% | {args.events * eff:,.0f} | {g['u_asym'].notna().sum()} of {len(g)} "
            f"| {cells[0]} | {cells[1]} | {int(g['sparse'].sum())} |"
        )


if __name__ == "__main__":
    main()
