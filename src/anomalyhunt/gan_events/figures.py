"""The branch's figures: the top mass peak, and the kinematics with GAN/truth ratio panels."""

from __future__ import annotations

import os

import numpy as np

from anomalyhunt.gan_events import metrics, toy
from anomalyhunt.plots import plt, save_figure

#: Sample name -> (label, colour, line style) in every figure.
STYLE = {
    "truth": ("truth", "black", "-"),
    "gan": ("GAN", "tab:orange", "--"),
    "gan_mmd": ("GAN + MMD", "tab:blue", "-"),
}
LABELS = {
    "pt": r"$p_T$ [GeV]",
    "eta": r"$\eta$",
    "phi": r"$\phi$",
    "m": "mass [GeV]",
}


def _ratio_panel(ax, rax, samples: dict[str, np.ndarray], edges: np.ndarray, xlabel: str) -> None:
    truth = metrics.histogram(samples["truth"], edges)
    width = np.diff(edges)
    for name, values in samples.items():
        label, colour, style = STYLE[name]
        frac = metrics.histogram(values, edges)
        ax.stairs(frac / width, edges, color=colour, linestyle=style, label=label, linewidth=1.6)
        if name != "truth":
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(truth > 0, frac / truth, np.nan)
            rax.stairs(ratio, edges, color=colour, linestyle=style, linewidth=1.4)
    rax.axhline(1.0, color="black", linewidth=0.8)
    for band in (0.9, 1.1):
        rax.axhline(band, color="grey", linewidth=0.6, linestyle=":")
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("GAN / truth", fontsize=10)
    rax.set_xlabel(xlabel)
    ax.set_ylabel("normalised")


def top_mass(
    samples: dict[str, np.ndarray], widths: dict[str, float], path: str | os.PathLike
) -> None:
    """Reconstructed top mass of truth, GAN and GAN + MMD, with the GAN/truth ratio beneath.

    Parameters
    ----------
    samples : dict
        "truth", "gan", "gan_mmd" -> top masses (GeV, both charges).
    widths : dict
        The same keys -> peak width (interquartile range, GeV), shown in the legend.
    path : path
        The PNG.
    """
    edges = np.linspace(toy.M_TOP - 12 * toy.GAMMA_TOP, toy.M_TOP + 12 * toy.GAMMA_TOP, 49)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(6.4, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    _ratio_panel(ax, rax, samples, edges, "top mass m(b q q) [GeV]")
    handles, labels = ax.get_legend_handles_labels()
    labels = [
        f"{lab} (width {widths[name]:.2f} GeV)" for lab, name in zip(labels, samples, strict=True)
    ]
    ax.legend(handles, labels, fontsize=10, loc="upper left", frameon=False, title="width: IQR")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.35)
    ax.set_title(
        rf"truth: Breit-Wigner, $m_t$ = {toy.M_TOP:g} GeV, $\Gamma_t$ = {toy.GAMMA_TOP} GeV",
        fontsize=12,
    )
    rax.set_ylim(0.0, 2.0)
    save_figure(fig, path)


def ratios(
    samples: dict[str, dict[str, np.ndarray]],
    edges: dict[str, np.ndarray],
    path: str | os.PathLike,
) -> None:
    """pT, eta, phi and mass of the reconstructed t and W: truth, GAN, GAN + MMD, with ratios.

    Parameters
    ----------
    samples : dict
        "truth", "gan", "gan_mmd" -> :func:`metrics.observables` of each sample.
    edges : dict
        :func:`metrics.bin_edges` (the binning of the numbers in metrics.json).
    path : path
        The PNG.
    """
    variables = ("pt", "eta", "phi", "m")
    fig = plt.figure(figsize=(4.2 * len(variables), 8.6))
    grid = fig.add_gridspec(
        5, len(variables), height_ratios=[3, 1, 0.55, 3, 1], hspace=0.08, wspace=0.32
    )
    for row, obj in enumerate(("t", "W")):
        for col, var in enumerate(variables):
            ax = fig.add_subplot(grid[3 * row, col])
            rax = fig.add_subplot(grid[3 * row + 1, col], sharex=ax)
            name = f"{var}_{obj}"
            data = {k: v[name] for k, v in samples.items()}
            _ratio_panel(ax, rax, data, edges[name], f"{LABELS[var]} ({obj})")
            ax.tick_params(labelbottom=False)
            if var == "m":
                rax.set_ylim(0.0, 2.0)
            if row == 0 and col == 0:
                ax.legend(fontsize=9)
    save_figure(fig, path)
