"""The branch's figures: ratio panels, calibration curves, one event's posterior, OmniFold."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomalyhunt.plots import plt, save_figure
from anomalyhunt.unfolding.toy import OBSERVABLES

LABELS = {
    "pt": r"$p_T$",
    "eta": r"$\eta$",
    "phi": r"$\phi$",
    "m_ll": r"$m_{\ell\ell}$ [GeV]",
    "m_jj": r"$m_{jj}$ [GeV]",
    "pt_ll": r"$p_{T,\ell\ell}$ [GeV]",
}
STYLE = {
    "truth": {"color": "0.6", "histtype": "stepfilled", "alpha": 0.5},
    "detector": {"color": "k", "ls": ":"},
    "prior": {"color": "tab:brown", "ls": "-."},
    "fcgan": {"color": "tab:red"},
    "cinn": {"color": "tab:blue"},
    "omnifold": {"color": "tab:green"},
}
NAMES = {
    "truth": "parton truth",
    "detector": "detector (no unfolding)",
    "prior": "simulation truth (prior)",
    "fcgan": "FCGAN",
    "cinn": "cINN",
    "omnifold": "OmniFold",
}


def label(name: str) -> str:
    """Axis label of an observable (pT [GeV] of objects, eta, phi, masses)."""
    if name in LABELS:
        return LABELS[name]
    var, obj = name.split("_", 1)
    obj = obj.replace("l+", r"\ell^+").replace("l-", r"\ell^-").replace("j", "j_")
    unit = " [GeV]" if var == "pt" else ""
    return LABELS[var][:-1] + rf"\,({obj})$" + unit


def _grid(n: int, cols: int) -> tuple[Any, list[tuple[Any, Any]]]:
    """A figure of ``n`` (histogram, ratio) panel pairs, ``cols`` per row."""
    rows = -(-n // cols)
    fig = plt.figure(figsize=(4.2 * cols, 4.4 * rows))
    outer = fig.add_gridspec(rows, cols, hspace=0.32, wspace=0.25)
    pairs = []
    for k in range(n):
        inner = outer[divmod(k, cols)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.05)
        ax = fig.add_subplot(inner[0])
        pairs.append((ax, fig.add_subplot(inner[1], sharex=ax)))
    return fig, pairs


def ratio_panels(
    samples: Mapping[str, np.ndarray],
    edges: Sequence[np.ndarray],
    path: str | os.PathLike,
    *,
    title: str,
    weights: Mapping[str, np.ndarray] | None = None,
    names: Sequence[str] = OBSERVABLES,
) -> None:
    """Unit-normalised histograms of each observable, with method / truth beneath.

    ``samples`` maps "truth", "detector" and method names to observables (n, 15).
    """
    weights = weights or {}
    fig, pairs = _grid(len(names), 4)
    truth = samples["truth"]
    for (ax, rax), name in zip(pairs, names, strict=True):
        i = OBSERVABLES.index(name)
        e = edges[i]
        q, _ = np.histogram(truth[:, i], bins=e, density=True)
        for key, x in samples.items():
            w = weights.get(key)
            style = {"histtype": "step", "lw": 1.6, **STYLE[key]}
            ax.hist(x[:, i], bins=e, weights=w, density=True, label=NAMES[key], **style)
            if key in ("truth", "detector"):
                continue
            p, _ = np.histogram(x[:, i], bins=e, weights=w, density=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                rax.stairs(np.where(q > 0, p / q, np.nan), e, color=STYLE[key]["color"], lw=1.6)
        rax.axhspan(0.9, 1.1, color="0.9", zorder=0)
        rax.axhline(1.0, color="0.4", lw=0.8)
        rax.set_ylim(0.7, 1.3)
        rax.set_xlabel(label(name))
        ax.tick_params(labelbottom=False)
        ax.set_yticks([])
    pairs[0][1].set_ylabel("/ truth", fontsize=11)
    pairs[0][0].legend(fontsize=9, loc="upper right")
    fig.suptitle(title, y=0.92)
    save_figure(fig, path)


def calibration_curves(
    calib: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    names: Sequence[str] = ("pt_l+", "pt_j1", "pt_j2", "eta_j1", "phi_j1", "m_ll", "m_jj", "pt_ll"),
) -> None:
    """Fraction of events whose truth lies below the posterior's tau-quantile, against tau."""
    fig, axes = plt.subplots(2, 4, figsize=(15, 7.5), sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names, strict=True):
        ax.plot([0, 1], [0, 1], color="0.5", lw=0.8)
        for method, c in calib.items():
            dev = c["max_deviation"][name]
            ax.plot(
                c["taus"],
                c["fraction_below"][name],
                marker="o",
                ms=3,
                color=STYLE[method]["color"],
                label=f"{NAMES[method]} (max dev {dev:.2f})",
            )
        ax.set_title(label(name), fontsize=12)
        ax.legend(fontsize=8, loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel(r"quantile level $\tau$")
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of truths below")
    save_figure(fig, path)


def posterior(
    draws: Mapping[str, np.ndarray],
    truth: np.ndarray,
    detector: np.ndarray,
    path: str | os.PathLike,
    names: Sequence[str] = ("pt_l+", "m_ll", "pt_j1", "pt_j2", "eta_j1", "m_jj"),
) -> None:
    """One detector event's posterior of several observables, truth and measurement marked.

    ``draws`` maps method -> observables (S, 15) of that event; ``truth``, ``detector`` (15,).
    """
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for ax, name in zip(axes.flat, names, strict=True):
        i = OBSERVABLES.index(name)
        values = np.concatenate([d[:, i] for d in draws.values()] + [truth[[i]], detector[[i]]])
        lo, hi = np.percentile(values, [0.5, 99.5])
        pad = 0.1 * (hi - lo + 1e-9)
        e = np.linspace(lo - pad, hi + pad, 50)
        for method, d in draws.items():
            ax.hist(d[:, i], bins=e, density=True, histtype="step", lw=1.6, **STYLE[method])
            ax.plot([], [], color=STYLE[method]["color"], label=NAMES[method])
        ax.axvline(truth[i], color="k", lw=2, label="parton truth")
        ax.axvline(detector[i], color="k", ls=":", lw=2, label="measured")
        ax.set_xlabel(label(name))
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=9)
    fig.suptitle("posterior of one detector event", y=1.0)
    save_figure(fig, path)


def omnifold_gauss(result: Mapping[str, Any], path: str | os.PathLike) -> None:
    """OmniFold's Gaussian example: generator and detector level, and the mean per iteration."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    e = np.linspace(-4, 4, 61)
    for ax, level in zip(axes[:2], ("truth", "detector"), strict=True):
        s = result["samples"]
        ax.hist(s[f"data_{level}"], bins=e, density=True, **STYLE["truth"], label="data")
        ax.hist(s[f"sim_{level}"], bins=e, density=True, histtype="step", **STYLE["prior"])
        ax.plot([], [], **{k: v for k, v in STYLE["prior"].items()}, label="simulation")
        w = result["weights"]["pull" if level == "truth" else "push"]
        for k, wk in enumerate(w):
            last = k == len(w) - 1
            ax.hist(
                s[f"sim_{level}"],
                bins=e,
                weights=wk,
                density=True,
                histtype="step",
                lw=2.0 if last else 1.0,
                color="tab:green",
                alpha=1.0 if last else 0.35,
                label=f"OmniFold iteration {k + 1}" if last or k == 0 else None,
            )
        ax.set_xlabel("x (generator level)" if level == "truth" else "x (detector level)")
        ax.legend(fontsize=9)
    ax = axes[2]
    it = np.arange(len(result["unfolded_mean"]) + 1)
    ax.plot(it, [result["sim_truth_mean"], *result["unfolded_mean"]], "o-", label="unfolded mean")
    ax.plot(it, [result["sim_truth_sd"], *result["unfolded_sd"]], "s-", label="unfolded sd")
    ax.axhline(result["data_truth_mean_setup"], color="tab:blue", ls="--", lw=1, label="data truth")
    ax.axhline(result["data_truth_sd_setup"], color="tab:orange", ls="--", lw=1)
    ax.set_xticks(it)
    ax.set_xlabel("iteration (0: simulation)")
    ax.set_ylabel("generator level")
    ax.legend(fontsize=9)
    save_figure(fig, path)


def ranking(
    samples: Mapping[str, np.ndarray],
    edges: Sequence[np.ndarray],
    tri: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike,
    *,
    weights: Mapping[str, np.ndarray],
    shown: Sequence[str] = ("pt_ll", "pt_j1", "m_jj"),
) -> None:
    """The shifted-truth "data" unfolded three ways: a few observables, then every observable's
    triangular discriminator (x1000, smaller is better) per method with its rank."""
    fig = plt.figure(figsize=(16, 10))
    gs = fig.add_gridspec(2, len(shown), height_ratios=[1, 1.1], hspace=0.35)
    for k, name in enumerate(shown):
        ax = fig.add_subplot(gs[0, k])
        i = OBSERVABLES.index(name)
        for key, x in samples.items():
            style = {"histtype": "step", "lw": 1.6, **STYLE[key]}
            ax.hist(x[:, i], bins=edges[i], weights=weights.get(key), density=True, **style)
            ax.plot([], [], color=STYLE[key]["color"], label=NAMES[key])
        ax.set_xlabel(label(name))
        ax.set_yticks([])
    fig.axes[0].legend(fontsize=9)
    ax = fig.add_subplot(gs[1, :])
    methods = list(tri)
    grid = np.array([[tri[m][o] for o in OBSERVABLES] for m in methods])
    ax.imshow(np.log10(np.maximum(grid, 1e-3)), aspect="auto", cmap="viridis_r")
    ranks = grid.argsort(axis=0).argsort(axis=0) + 1
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            ax.text(
                c,
                r,
                f"{grid[r, c]:.1f}\n#{ranks[r, c]}",
                ha="center",
                va="center",
                fontsize=8,
                color="w" if ranks[r, c] > 2 else "k",
            )
    ax.set_yticks(range(len(methods)), [NAMES[m] for m in methods], fontsize=10)
    ax.set_xticks(range(len(OBSERVABLES)), [label(o) for o in OBSERVABLES], rotation=60, fontsize=9)
    ax.set_title(
        r"triangular discriminator $\times 10^3$ against the data's parton truth "
        "(#rank, 1 = closest)",
        fontsize=12,
    )
    save_figure(fig, path)
