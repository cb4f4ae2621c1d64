"""The branch's figures: the cell-energy spectrum, and the shower profiles and responses.

Toy showers are grey (filled), the BIB-AE alone dashed blue, BIB-AE plus post-processor solid
red, everywhere, so the figures read together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from anomalyhunt.plots import plt, save_figure
from anomalyhunt.showers import metrics
from anomalyhunt.showers.toy import MIP_MEV, Calorimeter

STYLE = {
    "toy": {"color": "0.55", "label": "toy simulation"},
    "bibae": {"color": "tab:blue", "ls": "--", "label": "BIB-AE"},
    "bibae_pp": {"color": "tab:red", "ls": "-", "label": "BIB-AE + post-processor"},
}


def _step(ax, edges: np.ndarray, values: np.ndarray, key: str, label: str | None = None) -> None:
    style = dict(STYLE[key])
    style["label"] = label or style["label"]
    if key == "toy":
        ax.stairs(values, edges, fill=True, alpha=0.35, color=style["color"], label=style["label"])
    else:
        ax.stairs(values, edges, lw=1.8, **style)


def cell_energy(
    samples: Mapping[str, np.ndarray],
    calo: Calorimeter,
    path: str | os.PathLike,
    results: Mapping[str, Mapping[str, float]],
) -> None:
    """Hits per shower against cell energy (log-log), with the model/toy ratio beneath.

    The MIP peak sits just above the readout threshold; the BIB-AE alone cannot make it (its
    cells are smooth means), the post-processor should.
    """
    top = max(float(v.max()) for v in samples.values())
    low = calo.threshold_mev if calo.threshold_mev > 0 else 0.01 * MIP_MEV
    edges = np.geomspace(0.8 * low, 1.2 * top, 61)
    counts = {}
    for key, cells in samples.items():
        counts[key] = np.histogram(cells[cells > 0], edges)[0] / len(cells)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(7.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for key, c in counts.items():
        label = STYLE[key]["label"]
        if key != "toy":
            w = results[key]["w_cell_energy_log10"]
            label = f"{label} (W = {w:.3f} decades)"
        _step(ax, edges, c, key, label)
    for a in (ax, rax):
        if calo.threshold_mev > 0:
            a.axvline(calo.threshold_mev, color="k", ls=":", lw=1)
        a.axvline(MIP_MEV, color="k", ls="-.", lw=1)
    ax.text(MIP_MEV * 1.05, 0.97, "1 MIP", transform=ax.get_xaxis_transform(), va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("hits per shower per bin")
    ax.set_title(f"cell-energy spectrum, {len(samples['toy'])} showers, threshold dotted")
    ax.legend(fontsize=10, loc="lower left", frameon=True, framealpha=0.9)
    with np.errstate(divide="ignore", invalid="ignore"):
        for key in ("bibae", "bibae_pp"):
            ratio = np.where(counts["toy"] > 0, counts[key] / counts["toy"], np.nan)
            rax.stairs(ratio, edges, lw=1.5, color=STYLE[key]["color"], ls=STYLE[key].get("ls"))
    rax.axhline(1.0, color="0.4", lw=1)
    rax.set_ylim(0, 2)
    rax.set_ylabel("model / toy")
    rax.set_xlabel("visible cell energy [MeV]")
    save_figure(fig, path)


def profiles(
    samples: Mapping[str, np.ndarray],
    points: Sequence[tuple[float, Mapping[str, np.ndarray]]],
    calo: Calorimeter,
    path: str | os.PathLike,
) -> None:
    """Longitudinal and radial profiles, hits per shower, and visible energy at fixed energies."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.5))
    depth = metrics.depth_of_layers(calo)
    ax = axes[0, 0]
    for key, cells in samples.items():
        _step(ax, depth, metrics.longitudinal_profile(cells), key)
    ax.set_yscale("log")
    ax.set_xlabel("depth [X0]")
    ax.set_ylabel("mean visible energy per layer [MeV]")
    ax.set_title("longitudinal profile")
    ax.legend(fontsize=9)

    ax = axes[0, 1]
    for key, cells in samples.items():
        _step(ax, metrics.radial_edges(calo), metrics.radial_profile(cells, calo), key)
    ax.set_yscale("log")
    ax.set_xlabel("distance of the cell from the shower axis [Moliere radii]")
    ax.set_ylabel("mean energy density [MeV / R_M^2]")
    ax.set_title("radial profile")

    ax = axes[1, 0]
    n_hits = {k: (v > 0).sum(axis=(1, 2, 3)) for k, v in samples.items()}
    edges = np.linspace(0, 1.1 * max(h.max() for h in n_hits.values()) + 1, 41)
    for key, h in n_hits.items():
        _step(ax, edges, np.histogram(h, edges)[0] / len(h), key)
    ax.set_xlabel("hits above threshold per shower (incident energies uniform)")
    ax.set_ylabel("fraction of showers")
    ax.set_title("number of hits")

    ax = axes[1, 1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (energy, gen) in enumerate(points):
        visible = {k: v.sum(axis=(1, 2, 3), dtype=np.float64) for k, v in gen.items()}
        spread = visible["toy"].std()
        lo = min(v.min() for v in visible.values()) - spread
        hi = max(v.max() for v in visible.values()) + spread
        edges = np.linspace(lo, hi, 31)
        colour = colours[i % len(colours)]
        ax.stairs(
            np.histogram(visible["toy"], edges, density=True)[0],
            edges,
            fill=True,
            alpha=0.3,
            color=colour,
            label=f"{energy:g} GeV toy",
        )
        for key in ("bibae", "bibae_pp"):
            ax.stairs(
                np.histogram(visible[key], edges, density=True)[0],
                edges,
                color=colour,
                ls=STYLE[key]["ls"],
                lw=1.6,
                label=f"{energy:g} GeV {STYLE[key]['label']}" if i == 0 else None,
            )
    ax.set_xlabel("visible energy per shower [MeV]")
    ax.set_ylabel("density")
    ax.set_title("visible energy at fixed incident energy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
