"""Run whole searches through Snakemake and print a Markdown table of their outcomes and times.

    python benchmarks/search.py                         # the default search (seed 1, 1000 injected)
    python benchmarks/search.py --inject 0 --seeds 1 2 3 # background only: is there a fake excess?
    python benchmarks/search.py --inject 0 1000 --seeds 1 2 3 --set summary.toys=2000

Each (seed, injection) is its own run under results/bench-s<seed>-i<n>/, so finished runs are reused.
Numbers printed are what the README quotes; timings are wall clock on this machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from anomalyhunt.config import parse_assignments

REPO = Path(__file__).resolve().parents[1]


def run_search(
    seed: int, inject: int, extra: dict, cores: int, tag: str = ""
) -> tuple[dict, float]:
    run = f"bench-s{seed}-i{inject}{'-' + tag if tag else ''}"
    config = {"run": run, "seed": seed, "regions": {"n_inject": inject}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value) if isinstance(value, dict) else config.update(
            {key: value}
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(config, fh)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(REPO),
            "--configfile",
            fh.name,
            "--cores",
            str(cores),
            "--quiet",
            "progress",
        ],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"run {run} failed:\n{proc.stderr[-3000:]}")
    return json.loads((REPO / "results" / run / "summary.json").read_text()), elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--inject", type=int, nargs="+", default=[1000])
    p.add_argument("--cores", type=int, default=2)
    p.add_argument(
        "--set", action="append", default=[], help="extra config, e.g. summary.toys=2000"
    )
    p.add_argument(
        "--tag", default="", help="suffix of the run names, to keep runs of other settings apart"
    )
    args = p.parse_args()
    extra = parse_assignments(args.set)
    print(
        "| seed | injected | best: method, window (SR, TeV) | cut (keep) | Z local | Z local, no cut, same window "
        "| Z global (toys) | Z global (Gross-Vitells) | per method: Z local max / Z global (toys) | wall time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for inject in args.inject:
        for seed in args.seeds:
            summary, elapsed = run_search(seed, inject, extra, args.cores, args.tag)
            best = summary["best"]
            no_cut = [
                r["z"]
                for r in summary["local"]
                if r["window"] == best["window"]
                and r["method"] == best["method"]
                and r["efficiency"] == 1.0
            ]
            g = summary["global"]
            toys, gv = g.get("toys", {}), g.get("gross_vitells", {})
            z_toys = f"{'>' if toys.get('is_upper_bound') else ''}{toys.get('z_global', float('nan')):.2f}"
            per = (
                "; ".join(
                    f"{m} {pm['z_local_max']:.2f} / {'>' if pm['is_upper_bound'] else ''}{pm['z_global']:.2f}"
                    for m, pm in g.get("per_method", {}).items()
                )
                or "-"
            )
            print(
                f"| {seed} | {inject} | {best['method']} {best['window']} ({best['sr_lo']:.2f}-{best['sr_hi']:.2f}) "
                f"| {100 * best['efficiency']:g}% | {best['z']:.2f} | {no_cut[0]:.2f} | {z_toys} "
                f"| {gv.get('z_global', float('nan')):.2f} | {per} | {elapsed / 60:.1f} min |",
                flush=True,
            )


if __name__ == "__main__":
    main()
