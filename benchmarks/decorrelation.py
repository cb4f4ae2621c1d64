"""Decorrelation penalties in the search: sculpting, false bumps and lost signal, over seeds.

    python benchmarks/decorrelation.py                      # none vs disco, seeds 1-5
    python benchmarks/decorrelation.py --modes none disco adversary --seeds 1 2 3

On the generator with strong feature-mjj correlation (``data.toy.mjj_correlation: 3``, where
CWoLa sculpts most), each seed runs two searches per mode: background only (is there a fake
excess?) and with ``--inject`` signal events (what does the penalty cost?). The searches are
small so that 5 seeds fit in a CPU session: 300,000 background events, three windows around the
signal (SR 3.1-3.5, 3.3-3.7, 3.5-3.9 TeV), 3 folds, CWoLa with one MLP per fold, 500 toys.
Runs are ordinary runs ``results/bench-s<seed>-i<n>-dec-<mode>/`` made through
``benchmarks/search.py``, so finished ones are reused. Prints one row per mode: the medians over
seeds (and the per-seed values) of the background-only largest Z_local and Z_global, the largest
1%-cut sculpting JSD over the windows, and, with signal, the signal window's max SIC, AUC and
best-cut Z_local, and how many seeds put the largest excess outside the signal window.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from search import run_search  # noqa: E402

SIGNAL_WINDOW = "w01"


def settings(mode: str, strength: float) -> dict:
    cwola = {"classifier": "mlp", "ensemble": 1, "decorrelate": mode}
    if mode in ("disco", "adversary"):
        cwola["decorrelation_strength"] = strength
    return {
        "data": {"toy": {"n_background": 300_000, "mjj_correlation": 3.0}},
        "regions": {"scan": {"min": 2.5, "max": 4.5}, "folds": 3},
        "scores": {"cwola": cwola},
        "summary": {"toys": 500},
    }


def evaluation(run: str, window: str) -> dict:
    path = REPO / "results" / run / "windows" / window / "evaluation" / "metrics.json"
    return json.loads(path.read_text())["scores"]["cwola"]


def windows(run: str) -> list[str]:
    return sorted(p.name for p in (REPO / "results" / run / "windows").iterdir() if p.is_dir())


def measure(seed: int, mode: str, inject: int, strength: float, cores: int) -> dict:
    tag = f"dec-{mode}" + (f"{strength:g}" if mode in ("disco", "adversary") else "")
    extra = settings(mode, strength)
    null, t_null = run_search(seed, 0, extra, cores, tag)
    sig, t_sig = run_search(seed, inject, extra, cores, tag)
    run0, run1 = f"bench-s{seed}-i0-{tag}", f"bench-s{seed}-i{inject}-{tag}"
    jsd = max(evaluation(run0, w)["sculpting"]["0.01"]["jsd"] for w in windows(run0))
    ev = evaluation(run1, SIGNAL_WINDOW)
    in_window = [r for r in sig["local"] if r["window"] == SIGNAL_WINDOW]
    return {
        "null_z_local": null["best"]["z"],
        "null_z_global": null["global"]["toys"]["z_global"],
        "jsd_1pct": jsd,
        "max_sic": ev.get("max_sic", float("nan")),
        "auc": ev.get("auc", float("nan")),
        "signal_z_local": max(r["z"] for r in in_window),
        "signal_z_global": sig["global"]["toys"]["z_global"],
        "elsewhere": sig["best"]["window"] != SIGNAL_WINDOW,
        "minutes": (t_null + t_sig) / 60,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--modes", nargs="+", default=["none", "disco"])
    p.add_argument("--strength", type=float, default=10.0, help="decorrelation_strength")
    p.add_argument("--inject", type=int, default=300, help="signal events in the second search")
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args()
    keys = ("null_z_local", "null_z_global", "jsd_1pct", "max_sic", "auc", "signal_z_local")
    print(
        "| decorrelate | background only: largest Z_local | Z_global (500 toys) "
        "| largest JSD, 1% cut | with signal: max SIC (w01) | AUC (w01) | Z_local (w01, best cut) "
        "| largest excess elsewhere | minutes per seed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        rows = [measure(s, mode, args.inject, args.strength, args.cores) for s in args.seeds]
        cells = []
        for k in keys:
            values = [r[k] for r in rows]
            cells.append(
                f"{statistics.median(values):.3g} ({', '.join(f'{v:.3g}' for v in values)})"
            )
        name = mode if mode == "none" else f"{mode} ({args.strength:g})"
        elsewhere = sum(r["elsewhere"] for r in rows)
        minutes = statistics.mean(r["minutes"] for r in rows)
        print(
            f"| {name} | {' | '.join(cells)} | {elsewhere} of {len(rows)} | {minutes:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
