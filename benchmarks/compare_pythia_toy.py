"""Overlay the embedded toy generator and Pythia 8 + FastJet on the search's features.

Generates a small Pythia sample (QCD and W' -> X(500) Y(100) signal, as data.source: pythia
does) and the same kind of toy events, and draws normalised histograms of mjj, the two jet
masses and both tau21 values, so the toy's shortcuts can be seen against a real shower and
clustering. About 2 minutes on one core with the defaults.

    .venv/bin/python benchmarks/compare_pythia_toy.py                  # writes docs/pythia_vs_toy.png
    .venv/bin/python benchmarks/compare_pythia_toy.py --n-qcd 2000 --out /tmp/cmp.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyhunt.data import pythia, toy
from anomalyhunt.data.features import compute_features
from anomalyhunt.io import atomic_path

REPO = Path(__file__).resolve().parents[1]

#: (column, axis label, bins) of each panel; masses in TeV.
PANELS = [
    ("mjj", r"$m_{jj}$ [TeV]", np.linspace(1.5, 6.0, 46)),
    ("mj_light", r"lighter jet mass [TeV]", np.linspace(0.0, 0.8, 41)),
    ("mj_heavy", r"heavier jet mass [TeV]", np.linspace(0.0, 0.8, 41)),
    ("tau21_light", r"$\tau_{21}$ of the lighter jet", np.linspace(0.0, 1.0, 26)),
    ("tau21_heavy", r"$\tau_{21}$ of the heavier jet", np.linspace(0.0, 1.0, 26)),
]


def _features(events: pd.DataFrame) -> pd.DataFrame:
    f = compute_features(events)
    f["mj_heavy"] = f["mj_light"] + f["delta_mj"]
    return f


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--n-qcd", type=int, default=4000, help="Pythia QCD events generated (~43%% kept)"
    )
    p.add_argument(
        "--n-signal", type=int, default=600, help="Pythia W' events generated (~78%% kept)"
    )
    p.add_argument(
        "--n-toy", type=int, default=100_000, help="toy QCD events (and a tenth as signal)"
    )
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", default=str(REPO / "docs" / "pythia_vs_toy.png"))
    args = p.parse_args()

    t = time.perf_counter()
    py = pd.concat(
        [
            pythia.generate_chunk("qcd", args.n_qcd, seed=args.seed),
            pythia.generate_chunk("signal", args.n_signal, seed=args.seed + 1),
        ],
        ignore_index=True,
    )
    print(f"pythia: {len(py)} events kept in {time.perf_counter() - t:.0f} s")
    samples = {
        "Pythia 8 + FastJet": _features(py),
        "toy": _features(toy.generate(args.n_toy, args.n_toy // 10, seed=args.seed)),
    }

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    styles = {"Pythia 8 + FastJet": {"color": "tab:blue"}, "toy": {"color": "tab:orange"}}
    for ax, (col, xlabel, bins) in zip(axes.flat, PANELS, strict=False):
        for name, f in samples.items():
            for label, ls, what in ((0, "-", "QCD"), (1, "--", "W'")):
                values = np.clip(f.loc[f.label == label, col], bins[0], bins[-1])
                ax.hist(
                    values,
                    bins=bins,
                    density=True,
                    histtype="step",
                    ls=ls,
                    lw=1.4,
                    label=f"{name} {what} ({len(values)})",
                    **styles[name],
                )
        ax.set_xlabel(xlabel)
        ax.set_yticks([])
    axes.flat[0].set_ylabel("normalised")
    axes.flat[3].set_ylabel("normalised")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].axis("off")
    axes.flat[-1].legend(
        handles,
        labels,
        loc="center",
        frameon=False,
        fontsize=9,
        title="W' -> X(500 GeV) Y(100 GeV)\nunderflow/overflow in the end bins",
    )
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    print(f"-> {args.out} ({Path(args.out).stat().st_size / 1e3:.0f} kB)")
    for name, f in samples.items():
        q = f[f.label == 0]
        print(
            f"{name} QCD medians: mjj {q.mjj.median():.2f} TeV, light mass {1e3 * q.mj_light.median():.0f} GeV, "
            f"heavy mass {1e3 * q.mj_heavy.median():.0f} GeV, tau21 light {q.tau21_light.median():.2f}, "
            f"heavy {q.tau21_heavy.median():.2f}"
        )


if __name__ == "__main__":
    main()
