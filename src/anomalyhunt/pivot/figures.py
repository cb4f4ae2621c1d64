"""The branch's two figures: the paper's figure 2 (f at three nuisance values) and the trade-off."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.ticker
import numpy as np

from anomalyhunt.plots import plt, save_figure

#: Colours of the nuisance values -1, 0, +1.
Z_COLOURS = {-1.0: "tab:blue", 0.0: "black", 1.0: "tab:red"}


def _signed(z: float) -> str:
    return "0" if z == 0 else f"{z:+g}"


def _distributions(ax: plt.Axes, edges: np.ndarray, hists: Mapping[float, np.ndarray]) -> None:
    for z, h in sorted(hists.items()):
        ax.stairs(h, edges, color=Z_COLOURS.get(z, "grey"), lw=1.8, label=f"$Z = {_signed(z)}$")
    ax.set_xlabel("classifier output $f(X)$")
    ax.set_ylabel("density $p(f(X) \\mid Z)$")
    ax.set_xlim(edges[0], edges[-1])


def pivot_figure(
    edges: np.ndarray,
    without: Mapping[float, np.ndarray],
    with_adversary: Mapping[float, np.ndarray],
    strength: float,
    ks: tuple[float, float],
    grid: tuple[np.ndarray, np.ndarray],
    surfaces: tuple[np.ndarray, np.ndarray],
    cuts: tuple[float, float],
    events: tuple[np.ndarray, np.ndarray, np.ndarray],
    path: str | os.PathLike,
) -> None:
    """Densities of ``f`` at ``Z = -1, 0, +1`` without and with the adversary, and both cuts.

    Parameters
    ----------
    edges : array
        Bin edges of ``f``.
    without, with_adversary : mapping z -> array
        Normalised histograms of ``f`` (signal and background) for each nuisance value.
    strength : float
        The adversary's ``lambda``.
    ks : (float, float)
        KS distance of signal ``f`` between ``Z = -1`` and ``+1``, without and with.
    grid : (array, array)
        The ``x1`` and ``x2`` axes of the decision surfaces.
    surfaces : (array, array)
        ``f`` on the grid (shape ``(len(x2), len(x1))``) without and with the adversary.
    cuts : (float, float)
        Each classifier's threshold at the working point.
    events : (x, y, z)
        A few events to draw behind the decision boundaries.
    path : path
        The PNG to write.
    """
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    _distributions(axes[0], edges, without)
    axes[0].set_title(f"without adversary ($\\lambda = 0$): KS {ks[0]:.2f}")
    _distributions(axes[1], edges, with_adversary)
    axes[1].set_title(f"with adversary ($\\lambda = {strength:g}$): KS {ks[1]:.2f}")
    top = max(axes[0].get_ylim()[1], axes[1].get_ylim()[1])
    for ax in axes[:2]:
        ax.set_ylim(0, top)
        ax.legend(loc="upper center", fontsize=11)
    ax = axes[2]
    x, y, z = events
    bkg = y < 0.5
    ax.scatter(x[bkg, 0], x[bkg, 1], s=3, c="0.6", alpha=0.5, label="background")
    sc = ax.scatter(x[~bkg, 0], x[~bkg, 1], s=3, c=z[~bkg], cmap="coolwarm", vmin=-2, vmax=2)
    fig.colorbar(sc, ax=ax, label="signal's nuisance $Z$")
    for surface, cut, style, name in zip(
        surfaces, cuts, ("--", "-"), ("$\\lambda = 0$", f"$\\lambda = {strength:g}$"), strict=True
    ):
        ax.contour(grid[0], grid[1], surface, levels=[cut], colors="k", linestyles=style)
        ax.plot([], [], "k" + style, label=f"cut at the working point, {name}")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_xlim(grid[0][0], grid[0][-1])
    ax.set_ylim(grid[1][0], grid[1][-1])
    ax.legend(loc="upper left", fontsize=10, markerscale=4, framealpha=0.9)
    ax.set_title("decision boundaries (signal to the upper right)")
    save_figure(fig, path)


def tradeoff_figure(
    rows: Sequence[Mapping[str, float]],
    optimal: Mapping[str, float],
    efficiency: float,
    path: str | os.PathLike,
) -> None:
    """Power against independence over ``lambda``, and the nuisance's effect on a cut's efficiency.

    Parameters
    ----------
    rows : sequence of mapping
        One per ``lambda`` (key ``lambda``), with the keys of
        :func:`~anomalyhunt.pivot.metrics.summarise`.
    optimal : mapping
        The same numbers for the best classifier that ignores ``z``.
    efficiency : float
        The working point's signal efficiency at ``z = 0``.
    path : path
        The PNG to write.
    """
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    ks = [r["ks_signal_z_minus1_vs_plus1"] for r in rows]
    rej = [r["background_rejection"] for r in rows]
    ax.plot(ks, rej, "o-", color="tab:purple")
    for r, k, j in zip(rows, ks, rej, strict=True):
        ax.annotate(
            f"$\\lambda={r['lambda']:g}$", (k, j), textcoords="offset points", xytext=(6, 4)
        )
    ax.plot(
        [optimal["ks_signal_z_minus1_vs_plus1"]],
        [optimal["background_rejection"]],
        "*",
        ms=14,
        color="tab:green",
        label="best classifier ignoring $Z$ (exact)",
    )
    ax.set_xlabel("KS distance of signal $f$, $Z=-1$ vs $Z=+1$ (0 = pivot)")
    ax.set_ylabel(f"background rejection at {100 * efficiency:g}% signal eff.")
    ax.set_yscale("log")
    ax.set_xlim(0, 1.15 * max(ks + [optimal["ks_signal_z_minus1_vs_plus1"]]))
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.legend(loc="lower right", fontsize=11)
    lam = np.array([r["lambda"] for r in rows], dtype=float)
    for z, colour in Z_COLOURS.items():
        key = {-1.0: "z_minus1", 0.0: "z_0", 1.0: "z_plus1"}[z]
        bx.plot(
            lam,
            [r[f"signal_efficiency_{key}"] for r in rows],
            "o-",
            color=colour,
            label=f"$Z = {_signed(z)}$",
        )
    bx.set_xscale("symlog", linthresh=1.0)
    bx.set_xlabel("adversary strength $\\lambda$")
    bx.set_ylabel("signal efficiency of the cut")
    bx.set_ylim(0, 1)
    bx.legend(loc="upper right", fontsize=11)
    bx.set_title(f"one cut on $f$ ({100 * efficiency:g}% at $Z = 0$)")
    save_figure(fig, path)
