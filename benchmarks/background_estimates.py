"""Compare background estimates after a score cut on the scores of finished runs, by truth label.

    python benchmarks/background_estimates.py --run default                # signal run: Z vs oracle
    python benchmarks/background_estimates.py --run bench-s1-i0-c3 --null  # background only: worst Z

For every window and cut of the run's scores, each candidate background model (the bump hunt's
own code, ``bumphunt.hunt`` with other options) predicts the signal region; the table gives its
prediction b +- sigma_b beside the true background count in the SR (labels), its local Z, and the
oracle Z: the same cut with the true background known exactly. With ``--null`` it prints, per
candidate, the largest Z over all tests and the pull (b - b_true) / sqrt(sigma_b^2 + b_true) of
every test, the measure of a biased estimate.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import yaml

from anomalyhunt import bumphunt as bh
from anomalyhunt.io import read_parquet
from anomalyhunt.regions import Window
from anomalyhunt.sensitivity import oracle_z

REPO = Path(__file__).resolve().parents[1]

CANDIDATES = {
    "fit (dijet4 on the post-cut sidebands)": {"background": "fit"},
    "ratio (uncut x efficiency, F-test of the configured orders)": {"background": "ratio"},
    "ratio, log-linear efficiency only": {"background": "ratio", "ratio_functions": ("ratio2",)},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a finished run under results/")
    p.add_argument("--method", default="cwola")
    p.add_argument("--null", action="store_true", help="background only: summarise the worst tests")
    p.add_argument("--efficiencies", type=float, nargs="+", default=[0.1, 0.01, 0.001])
    args = p.parse_args()
    logging.disable(logging.WARNING)
    run = REPO / "results" / args.run
    config = yaml.safe_load((run / "config.yaml").read_text())
    windows = json.loads((run / "regions" / "windows.json").read_text())["windows"]
    rows = []
    for w in windows:
        path = run / "windows" / w["id"] / args.method / "scores.parquet"
        if w.get("skipped") or not path.exists():
            continue
        scores = read_parquet(path)
        window = Window.from_dict(w)
        for name, change in CANDIDATES.items():
            opts = bh.HuntOptions.from_config(
                {
                    **config["bumphunt"],
                    **change,
                    "spurious": {**config["bumphunt"]["spurious"], "enabled": False},
                }
            )
            for cut in bh.hunt(
                scores, window, args.efficiencies, config["bumphunt"]["bin_width"], opts
            ):
                b_true = cut["n_background_sr"]
                rows.append(
                    {
                        "candidate": name,
                        "window": w["id"],
                        "keep": cut["efficiency"],
                        "n": cut["n_obs"],
                        "b_true": b_true,
                        "s_true": cut["n_signal_sr"],
                        "b": cut["b"],
                        "sigma_b": cut["sigma_b"],
                        "z": cut["z"] or 0.0,
                        "function": cut["function"],
                        "oracle": oracle_z(cut["n_obs"], b_true) if b_true is not None else None,
                    }
                )
    if args.null:
        print(
            "| candidate | tests | largest Z (window, keep) | tests with Z > 2 | pull of b: mean / rms |"
        )
        print("|---|---|---|---|---|")
        for name in CANDIDATES:
            sel = [r for r in rows if r["candidate"] == name and r["b"] is not None]
            worst = max(sel, key=lambda r: r["z"])
            pulls = np.array(
                [
                    (r["b"] - r["b_true"]) / math.sqrt(r["sigma_b"] ** 2 + max(r["b_true"], 1))
                    for r in sel
                ]
            )
            print(
                f"| {name} | {len(sel)} | {worst['z']:.2f} ({worst['window']}, {worst['keep']:g}) "
                f"| {sum(r['z'] > 2 for r in sel)} | {pulls.mean():+.2f} / {np.sqrt((pulls**2).mean()):.2f} |"
            )
        return
    print(
        "| candidate | window | keep | n (SR) | signal / background in SR (truth) | b ± sigma_b | function "
        "| Z local | oracle Z | Z / oracle |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    best = max((r for r in rows if r["oracle"] is not None), key=lambda r: r["oracle"])
    for r in rows:
        if r["window"] != best["window"]:
            continue
        b = "fit failed" if r["b"] is None else f"{r['b']:.1f} ± {r['sigma_b']:.1f}"
        ratio = f"{r['z'] / r['oracle']:.2f}" if r["oracle"] else "-"
        print(
            f"| {r['candidate']} | {r['window']} | {r['keep']:g} | {r['n']:.0f} | {r['s_true']} / {r['b_true']} "
            f"| {b} | {r['function']} | {r['z']:.2f} | {r['oracle']:.2f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
