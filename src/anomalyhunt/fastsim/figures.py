"""The branch's figures: response marginals, the pT resolution curve, distances per pT bin."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from anomalyhunt.fastsim.toy import RESPONSE, RESPONSE_LABELS
from anomalyhunt.plots import plt, save_figure

#: Legend names and colours of the fast simulations.
NAMES = {
    "cgan": "conditional GAN",
    "wgan_gp": "WGAN-GP",
    "flow": "conditional flow",
    "mdn": "mixture density net",
}
COLOURS = {"cgan": "tab:orange", "wgan_gp": "tab:red", "flow": "tab:blue", "mdn": "tab:green"}


def marginals(
    r_true: np.ndarray, generated: Mapping[str, np.ndarray], path: str | os.PathLike
) -> None:
    """Each response feature: the toy detector (filled) against every fast simulation (lines).

    Log scale, so the non-Gaussian tails (the wide component) are visible.
    """
    fig, axes = plt.subplots(2, 4, figsize=(17, 8))
    for j, ax in enumerate(axes.flat):
        lo, hi = np.percentile(r_true[:, j], [0.05, 99.95])
        pad = 0.15 * (hi - lo)
        bins = np.linspace(lo - pad, hi + pad, 61)
        ax.hist(r_true[:, j], bins=bins, color="0.8", label="toy detector")
        for kind, r in generated.items():
            ax.hist(
                np.clip(r[:, j], bins[0], bins[-1]),
                bins=bins,
                histtype="step",
                lw=1.6,
                color=COLOURS[kind],
                label=NAMES[kind],
            )
        ax.set_yscale("log")
        ax.set_xlabel(RESPONSE_LABELS[j], fontsize=12)
        ax.set_title(RESPONSE[j], fontsize=12)
    axes[0, 0].set_ylabel("muons")
    axes[1, 0].set_ylabel("muons")
    axes[0, 0].legend(fontsize=9, loc="upper left")
    fig.suptitle("Detector response given the generator-level muon (overflow in the end bins)")
    fig.tight_layout()
    save_figure(fig, path)


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def resolution(
    edges: np.ndarray,
    truth: Mapping[str, list[float]],
    models: Mapping[str, Mapping[str, list[float]]],
    path: str | os.PathLike,
    *,
    probe: Mapping[str, Any] | None = None,
) -> None:
    """pT resolution (core width), tails and charge-dependent bias against generator-level pT.

    ``probe``: the out-of-range check (edges, truth and per-model cores beyond the trained
    maximum), drawn in a shaded band: a clipped simulation stays at the edge's resolution.
    """
    x = _centres(edges)
    fig, (a_core, a_tail, a_bias) = plt.subplots(1, 3, figsize=(17, 5.2))
    a_core.plot(x, truth["core"], "ko", label="toy detector")
    a_tail.plot(x, truth["tails"], "ko")
    a_bias.plot(x, truth["bias_mu_plus"], "k^", label=r"toy $\mu^+$")
    a_bias.plot(x, truth["bias_mu_minus"], "kv", label=r"toy $\mu^-$")
    for kind, res in models.items():
        c = COLOURS[kind]
        a_core.plot(x, res["core"], "-", color=c, label=NAMES[kind])
        a_tail.plot(x, res["tails"], "-", color=c)
        a_bias.plot(x, res["bias_mu_plus"], "-", color=c)
        a_bias.plot(x, res["bias_mu_minus"], "--", color=c)
    if probe is not None and probe.get("truth_core"):
        px = _centres(np.asarray(probe["pt_edges_gev"]))
        a_core.axvspan(probe["pt_edges_gev"][0], probe["pt_edges_gev"][-1], color="0.93")
        a_core.plot(px, probe["truth_core"], "ko", mfc="none")
        for kind, core in probe["model_core"].items():
            a_core.plot(px, core, ":", color=COLOURS[kind])
        a_core.text(
            0.98,
            0.04,
            "beyond the trained range:\nclipped condition",
            transform=a_core.transAxes,
            ha="right",
            fontsize=10,
        )
    a_core.set_ylabel(r"core $\sigma(p_T)/p_T$ [%]")
    a_tail.set_ylabel(r"muons beyond 3 core $\sigma$ [%]")
    a_bias.set_ylabel(r"median $(p_T^{reco} - p_T)/p_T$ [%]")
    a_bias.axhline(0, color="0.6", lw=0.8)
    for ax in (a_core, a_tail, a_bias):
        ax.set_xlabel(r"generator-level muon $p_T$ [GeV]")
    a_core.legend(fontsize=9, loc="upper left")
    a_bias.legend(fontsize=9, loc="center left", title="models: solid $\\mu^+$, dashed $\\mu^-$")
    fig.tight_layout()
    save_figure(fig, path)


def distances(
    edges: np.ndarray,
    floor: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
) -> None:
    """KS per pT bin and W1 / sigma per feature of every simulation, the toy-vs-toy floor grey."""
    x = _centres(edges)
    fig, (a_ks, a_w1) = plt.subplots(1, 2, figsize=(15, 5.2))
    a_ks.plot(x, floor["ks_by_pt_bin"], "o-", color="0.5", label="toy vs toy (statistical floor)")
    for kind, d in models.items():
        a_ks.plot(x, d["ks_by_pt_bin"], "o-", color=COLOURS[kind], label=NAMES[kind])
    a_ks.set_xlabel(r"generator-level muon $p_T$ [GeV]")
    a_ks.set_ylabel("KS statistic, mean over the 8 features")
    a_ks.set_yscale("log")
    a_ks.legend(fontsize=9)
    width = 0.8 / (len(models) + 1)
    pos = np.arange(len(RESPONSE))
    a_w1.bar(pos, [floor["w1_over_sigma_by_feature"][f] for f in RESPONSE], width, color="0.6")
    for i, (kind, d) in enumerate(models.items(), start=1):
        vals = [d["w1_over_sigma_by_feature"][f] for f in RESPONSE]
        a_w1.bar(pos + i * width, vals, width, color=COLOURS[kind])
    a_w1.set_xticks(pos + 0.4 - width / 2, RESPONSE, rotation=30, fontsize=10)
    a_w1.set_ylabel(r"Wasserstein-1 / $\sigma_{true}$, mean over $p_T$ bins")
    a_w1.set_yscale("log")
    a_w1.set_title("grey: toy vs toy (statistical floor)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
