"""The branch's figures: the proposal's path over the likelihood, and the fitted cos(A)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomalyhunt.avo.metrics import CONTOUR_LEVELS, likelihood_grid
from anomalyhunt.avo.toy import BOX, density
from anomalyhunt.plots import plt, save_figure

COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple")


def _plane_limits(paths: Sequence[Sequence[Mapping[str, Any]]], truth: Sequence[float]) -> Any:
    points = np.array([p["mean"] for path in paths for p in path] + [list(truth)])
    widths = np.array([p["width"] for path in paths for p in path[-1:]])
    lo = points.min(axis=0) - np.maximum(widths.max(axis=0), [0.3, 0.05]) * 1.5
    hi = points.max(axis=0) + np.maximum(widths.max(axis=0), [0.3, 0.05]) * 1.5
    lo = np.maximum(lo, [BOX[0][0], BOX[1][0]])
    hi = np.minimum(hi, [BOX[0][1], BOX[1][1]])
    return lo, hi


def path_figure(
    observed: np.ndarray,
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    truth: Sequence[float],
    path: str | os.PathLike,
) -> None:
    """Left: the proposal's mean per epoch over the exact -2 Delta ln L of the observed events
    (68/95/99.7% contours; the ridge of equal A_FB is why they are long), with the final
    proposal's 1-sigma ellipse. Right: the critic's value per epoch, falling towards zero.

    Parameters
    ----------
    observed : array
        Observed cos(A).
    runs : mapping of label to path
        Each run's recorded states (``mean``, ``width``, ``critic_value``), first one before
        training.
    truth : (E_beam, G_f)
        The point the observed events were simulated at.
    path : path
        The PNG to write.
    """
    fig, (ax, cax) = plt.subplots(1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [1.3, 1]})
    lo, hi = _plane_limits(list(runs.values()), truth)
    e_axis = np.linspace(lo[0], hi[0], 240)
    g_axis = np.linspace(lo[1], hi[1], 240)
    nll = likelihood_grid(observed, e_axis, g_axis)
    ax.contourf(e_axis, g_axis, nll, levels=[0, *CONTOUR_LEVELS], colors=["0.55", "0.72", "0.88"])
    ax.contour(e_axis, g_axis, nll, levels=list(CONTOUR_LEVELS), colors="0.35", linewidths=0.8)
    ax.plot([], [], color="0.6", lw=6, label=r"exact $-2\Delta\ln L$: 68/95/99.7%")
    t = np.linspace(0, 2 * np.pi, 100)
    for colour, (label, states) in zip(COLOURS, runs.items(), strict=False):
        means = np.array([s["mean"] for s in states])
        ax.plot(means[:, 0], means[:, 1], "o-", ms=3, color=colour, label=f"proposal mean, {label}")
        ax.plot(*means[0], "s", color=colour, ms=7, mfc="none")
        width = states[-1]["width"]
        ax.plot(
            means[-1, 0] + width[0] * np.cos(t),
            means[-1, 1] + width[1] * np.sin(t),
            "--",
            color=colour,
            lw=1.2,
        )
        epochs = np.arange(1, len(states))
        cax.plot(
            epochs,
            [s["critic_value"] for s in states[1:]],
            "o-",
            ms=3,
            color=colour,
            label=f"critic value, {label}",
        )
        cax.plot(
            epochs,
            [s["wasserstein"] for s in states[1:]],
            ":",
            color=colour,
            label=f"$W_1$(sim, obs), {label}",
        )
    ax.plot(*truth, "*", color="gold", mec="k", ms=16, label="true point")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(r"$E_\mathrm{beam}$ [GeV]")
    ax.set_ylabel(r"$G_f / G_F$")
    ax.legend(fontsize=9, loc="upper right", framealpha=0.9)
    ax.set_title("AVO path (squares: start, dashed: final $1\\sigma$)", fontsize=12)
    cax.axhline(0.0, color="k", lw=0.8)
    cax.set_xlabel("epoch")
    cax.set_ylabel(r"$E_\mathrm{obs}[d] - E_\mathrm{sim}[d]$")
    cax.legend(fontsize=9)
    cax.set_title("critic's Wasserstein estimate", fontsize=12)
    save_figure(fig, path)


def fit_figure(
    observed: np.ndarray,
    simulated: Mapping[str, np.ndarray],
    ks_p: Mapping[str, float],
    start: np.ndarray,
    true_afb: float,
    path: str | os.PathLike,
) -> None:
    """cos(A) of the observed events against events simulated at the start and the fitted
    proposals, with the true density, and the ratio to the observed beneath.

    Parameters
    ----------
    observed : array
        Observed cos(A).
    simulated : mapping of label to array
        cos(A) simulated from each run's final proposal.
    ks_p : mapping of label to float
        Each run's KS p-value against the observed events.
    start : array
        cos(A) simulated from the starting proposal.
    true_afb : float
        A_FB at the true point, for the density curve.
    path : path
        The PNG to write.
    """
    edges = np.linspace(-1, 1, 41)
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = edges[1] - edges[0]

    def hist(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, _ = np.histogram(x, edges)
        return n / (len(x) * width), np.sqrt(n) / (len(x) * width)

    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(7.5, 6.8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    obs, obs_err = hist(observed)
    c = np.linspace(-1, 1, 200)
    ax.plot(
        c, density(c, true_afb), color="k", lw=1, label=f"true density, $A_{{FB}}$={true_afb:.3f}"
    )
    ax.errorbar(centres, obs, obs_err, fmt="o", color="k", ms=3, label="observed")
    first, _ = hist(start)
    ax.stairs(first, edges, color="0.5", ls="--", baseline=None, label="start proposal")
    for colour, (label, sim) in zip(COLOURS, simulated.items(), strict=False):
        h, _ = hist(sim)
        ax.stairs(
            h,
            edges,
            color=colour,
            baseline=None,
            label=f"fitted, {label} (KS p = {ks_p[label]:.2f})",
        )
        rax.stairs(h / np.maximum(obs, 1e-9), edges, color=colour, baseline=None)
    rax.axhline(1.0, color="k", lw=0.8)
    rax.errorbar(centres, np.ones_like(obs), obs_err / np.maximum(obs, 1e-9), fmt="none", color="k")
    rax.set_ylim(0.8, 1.2)
    rax.set_ylabel("sim / obs")
    rax.set_xlabel(r"$\cos A$ ($\mu^-$ to $e^-$ beam)")
    ax.set_ylabel("density")
    ax.legend(fontsize=9, loc="upper center")
    save_figure(fig, path)
