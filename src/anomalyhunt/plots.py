"""Figures a physicist reads instead of tables: fits per window, local Z scans, score shapes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from anomalyhunt.io import atomic_path  # noqa: E402

plt.style.use(hep.style.ROOT)
plt.rcParams.update({"font.size": 13, "axes.titlesize": 13, "figure.dpi": 90})


def _save(fig: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


def window_fits(result: Mapping[str, Any], path: str | os.PathLike) -> None:
    """mjj with the sideband fit at every cut, residuals beneath, the SR shaded."""
    cuts = result["cuts"]
    if not cuts:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, f"window {result['window']} skipped:\n{result['skipped']}", ha="center",
                va="center", transform=ax.transAxes, wrap=True)
        ax.set_axis_off()
        _save(fig, path)
        return
    fig, axes = plt.subplots(2, len(cuts), figsize=(4.6 * len(cuts), 6.2), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1]}, squeeze=False)
    for k, cut in enumerate(cuts):
        ax, rax = axes[0, k], axes[1, k]
        fit = cut["fit"]
        edges = np.asarray(fit["edges"])
        counts = np.asarray(fit["counts"])
        centres = 0.5 * (edges[1:] + edges[:-1])
        for a in (ax, rax):
            a.axvspan(*result["sr"], color="tab:orange", alpha=0.15, lw=0)
        ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="o", ms=3, color="k", label="data")
        if cut["valid"]:
            expected = np.asarray(fit["expected"])
            ax.stairs(expected, edges, baseline=None, color="tab:blue", lw=1.8, label="sideband fit")
            resid = (counts - expected) / np.sqrt(np.maximum(expected, 1e-9))
            rax.bar(centres, resid, width=np.diff(edges), color="tab:gray")
            title = f"keep {100 * cut['efficiency']:g}%: Z = {cut['z']:.2f}"
        else:
            title = f"keep {100 * cut['efficiency']:g}%: fit failed"
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylim(bottom=0.5)
        rax.axhline(0, color="k", lw=0.8)
        rax.set_xlabel(r"$m_{jj}$ [TeV]")
        if k == 0:
            ax.set_ylabel(f"events / {edges[1] - edges[0]:.2f} TeV")
            rax.set_ylabel("pull")
            ax.legend(loc="upper right", fontsize=10)
    fig.suptitle(f"{result['method']}, window {result['window']}: SR {result['sr'][0]:.2f}-"
                 f"{result['sr'][1]:.2f} TeV", y=1.0)
    _save(fig, path)


def local_z_scan(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Local Z against SR centre, one line per method and cut, with 1-5 sigma guide lines."""
    ok = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for (method, eff), grp in ok.groupby(["method", "efficiency"]):
        grp = grp.sort_values("centre")
        ax.plot(grp["centre"], grp["z"], "o-", label=f"{method}, keep {100 * eff:g}%")
    for z in range(1, 6):
        ax.axhline(z, color="gray", ls=":", lw=0.8)
        ax.text(1.0, z, f" {z}$\\sigma$", transform=ax.get_yaxis_transform(), va="center", color="gray")
    ax.set_xlabel(r"signal-region centre $m_{jj}$ [TeV]")
    ax.set_ylabel(r"local significance $Z$")
    ax.set_ylim(bottom=0)
    if not ok.empty:
        ax.legend(fontsize=10)
    _save(fig, path)


def score_distributions(scores: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Score shapes in SR and sidebands (and by truth where known): what the classifier learnt."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if scores.empty:
        ax.text(0.5, 0.5, "no scored events", ha="center", transform=ax.transAxes)
    else:
        s = scores["score"].to_numpy()
        bins = np.linspace(np.quantile(s, 0.001), np.quantile(s, 0.9999) + 1e-12, 60)
        groups = {"sidebands": scores["region"] == 1, "signal region": scores["region"] == 2}
        if (scores["label"] == 1).any():
            groups["injected signal (truth)"] = scores["label"] == 1
        for name, sel in groups.items():
            ax.hist(s[sel.to_numpy()], bins=bins, histtype="step", density=True, lw=1.6, label=name)
        ax.set_yscale("log")
        ax.legend(fontsize=10)
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("normalised")
    ax.set_title(title)
    _save(fig, path)
