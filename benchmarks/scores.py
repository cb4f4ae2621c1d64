"""Benchmark every registered anomaly score on the toy generator, without Snakemake.

For the default generator with signal injected (1000 events by default), in the window whose
signal region (3.3-3.7 TeV) holds the W', each method scores the window out of fold, for several
seeds (new data, injection, folds and models each time). Prints a Markdown table of max SIC
(median and range over seeds), SR AUC and training time per window.

    .venv/bin/python benchmarks/scores.py                       # 5 seeds, full size (slow)
    .venv/bin/python benchmarks/scores.py --mjj-correlation 2   # stronger feature-mjj correlation:
                                                                # CWoLa degrades, CATHODE should not
    .venv/bin/python benchmarks/scores.py --seeds 1 --n-background 200000 --fast   # smoke test
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt import config as cfgmod
from anomalyhunt.data import toy
from anomalyhunt.data.features import compute_features
from anomalyhunt.evaluate import evaluate_scores
from anomalyhunt.io import write_json
from anomalyhunt.regions import Window, build
from anomalyhunt.scores import available, get_scorer, resolve_device, score_out_of_fold
from anomalyhunt.scores.simulation import Simulation

SR = (3.3, 3.7)

#: --fast: smaller models, for a quick check that everything runs (numbers not representative).
FAST: dict[str, dict[str, Any]] = {
    "cwola": {"ensemble": 1},
    "idealized": {"ensemble": 1},
    "supervised": {"ensemble": 1, "n_background": 20000, "n_signal": 2000},
    "autoencoder": {"epochs": 20},
    "vae": {"epochs": 20},
}


def one_seed(seed: int, args: argparse.Namespace, methods: list[str]) -> dict[str, dict[str, Any]]:
    """Generate, inject, split and score one data set with every method; metrics per method."""
    overrides: dict[str, Any] = {
        "seed": seed,
        "threads": args.threads,
        "data": {
            "toy": {
                "n_background": args.n_background,
                "n_signal": args.n_signal,
                "mjj_correlation": args.mjj_correlation,
            }
        },
        "regions": {"n_inject": args.n_inject},
    }
    if args.fast:
        overrides["scores"] = {m: FAST[m] for m in methods if m in FAST}
    overrides = cfgmod.merge(overrides, cfgmod.parse_assignments(args.set))
    config = cfgmod.validate(overrides, source="benchmark")
    tc = config["data"]["toy"]
    events = toy.generate(
        tc["n_background"],
        tc["n_signal"],
        cfgmod.derive_seed(seed, "toy"),
        mjj_correlation=tc["mjj_correlation"],
        mjj_signal=tc["signal"]["mjj"],
        mx=tc["signal"]["mx"],
        my=tc["signal"]["my"],
    )
    data, meta = build(compute_features(events), config)
    wdict = next(w for w in meta["windows"] if tuple(w["sr"]) == SR)
    window = Window.from_dict(wdict)
    device = resolve_device(config["device"])
    out = {}
    for method in methods:
        cls = get_scorer(method)
        params = config["scores"].get(method, {})
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            if getattr(cls, "needs_simulation", False):
                cls = cls.bound_to(Simulation.from_config(config, window, method))
            scores = score_out_of_fold(
                cls,
                params,
                data,
                window,
                seed=cfgmod.derive_seed(seed, "scores", method, window.id),
                device=device,
                threads=args.threads,
                validation_fraction=float(params.get("validation_fraction", 0.2)),
                progress=False,
            )
        except Exception as exc:  # a benchmark reports a broken method and goes on
            out[method] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = evaluate_scores(scores)
        out[method] = {
            "max_sic": m["max_sic"],
            "auc": m["auc"],
            "seconds": seconds,
            "cpu": cpu,
            "n_signal_sr": m["n_signal_sr"],
            "n_sr": m["n_sr"],
        }
        print(
            f"  seed {seed} {method}: max SIC {m['max_sic']:.2f}, AUC {m['auc']:.3f}, "
            f"{seconds:.1f} s wall, {cpu:.1f} s CPU",
            flush=True,
        )
    return out


def merge_runs(runs: list[dict[str, Any]]) -> tuple[list[dict[str, dict[str, Any]]], list[str]]:
    """Per-seed results of several --out files; for a seed and method run twice, the later file wins.

    Lets a table combine runs of different methods and seeds, and replace a method's numbers after
    its defaults changed, without rerunning the others.
    """
    by_seed: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        first = int(run["args"]["first_seed"])
        for i, result in enumerate(run["results"]):
            by_seed.setdefault(first + i, {}).update(result)
    methods = list(dict.fromkeys(m for run in runs for m in run["methods"]))
    return [by_seed[s] for s in sorted(by_seed)], methods


def markdown(results: list[dict[str, dict[str, Any]]], methods: list[str]) -> str:
    """One row per method: max SIC median [min, max], AUC median, seconds per window median.

    CPU seconds (process time, all threads) are what a window costs on an otherwise idle core;
    wall seconds depend on what else the machine was doing.
    """
    rows = [
        "| method | max SIC median [min, max] | AUC median | CPU s/window | wall s/window | seeds ok |",
        "|---|---|---|---|---|---|",
    ]
    for method in methods:
        ran = [
            r[method] for r in results if method in r
        ]  # merged files: not every seed has every method
        ok = [r for r in ran if "error" not in r]
        if not ok:
            rows.append(f"| {method} | failed: {ran[0]['error'][:80]} | | | | 0/{len(ran)} |")
            continue
        sic = np.array([r["max_sic"] for r in ok])
        aucs = np.array([r["auc"] for r in ok])
        secs = np.array([r["seconds"] for r in ok])
        cpus = np.array([r["cpu"] for r in ok])
        rows.append(
            f"| {method} | {np.median(sic):.2f} [{sic.min():.2f}, {sic.max():.2f}] | "
            f"{np.median(aucs):.3f} | {np.median(cpus):.0f} | {np.median(secs):.0f} | "
            f"{len(ok)}/{len(ran)} |"
        )
    return "\n".join(rows)


def main() -> None:
    """Parse options, run every seed, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (data sets)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument(
        "--methods", nargs="+", default=None, help=f"default: all ({', '.join(available())})"
    )
    p.add_argument("--n-background", type=int, default=1_000_000)
    p.add_argument("--n-signal", type=int, default=20_000, help="signal pool to inject from")
    p.add_argument("--n-inject", type=int, default=1000)
    p.add_argument("--mjj-correlation", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fast", action="store_true", help="smaller models: a smoke test")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="extra config, e.g. scores.cathode.flow.margin=0.001",
    )
    p.add_argument("--out", type=Path, help="also write the per-seed results here (JSON)")
    p.add_argument("--merge", type=Path, nargs="+", help="print one table from earlier --out files")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.merge:
        print(markdown(*merge_runs([json.loads(f.read_text()) for f in args.merge])))
        return
    methods = args.methods or available()
    print(
        f"toy: {args.n_background} background, {args.n_inject} signal injected, "
        f"mjj_correlation {args.mjj_correlation}; SR {SR[0]}-{SR[1]} TeV; "
        f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}",
        flush=True,
    )
    results = [
        one_seed(s, args, methods) for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    n_sig = [r[m]["n_signal_sr"] for r in results for m in r if "n_signal_sr" in r[m]][:1]
    n_sr = [r[m]["n_sr"] for r in results for m in r if "n_sr" in r[m]][:1]
    if n_sig:
        print(f"\nSR of seed {args.first_seed}: {n_sr[0]} events, {n_sig[0]} of them signal\n")
    print(markdown(results, methods))
    if args.out:
        write_json(
            {
                "args": vars(args) | {"out": str(args.out), "merge": None},
                "methods": methods,
                "results": results,
            },
            args.out,
        )


if __name__ == "__main__":
    main()
