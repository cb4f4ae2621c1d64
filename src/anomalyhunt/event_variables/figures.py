"""The branch's figure: the learned variable against the known one, and how each tracks m_A."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from anomalyhunt.event_variables.toy import KNOWN
from anomalyhunt.plots import plt, save_figure

LABELS = {"m_bc": r"$m_{bc}$", "m_T": r"$m_T(b, p_T^\mathrm{miss})$", "M_T2": r"$M_{T2}$"}
TITLES = {
    "visible": r"$A \to b\,c$",
    "invisible": r"$A \to b\,C$ ($C$ unseen)",
    "pair": r"$AA \to bC\,bC$",
}


def _quantile(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)) / max(len(x) - 1, 1)


def _band(ax: Any, mass: np.ndarray, y: np.ndarray, colour: str, label: str) -> None:
    edges = np.quantile(mass, np.linspace(0, 1, 16))
    centres = 0.5 * (edges[1:] + edges[:-1])
    idx = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, len(centres) - 1)
    q = np.array([np.quantile(y[idx == k], [0.16, 0.5, 0.84]) for k in range(len(centres))])
    ax.fill_between(centres, q[:, 0], q[:, 2], color=colour, alpha=0.25, lw=0)
    ax.plot(centres, q[:, 1], color=colour, label=label)


def event_variables_figure(
    results: Mapping[str, Mapping[str, Any]], path: str | os.PathLike
) -> None:
    """Top: the learned V (oriented to rise with m_A) against the known variable, per toy, with
    the rank correlation. Bottom: both variables' quantiles against the true m_A (median and
    16-84% band): the narrower band carries more information, as the I(.; m_A) in the title say.

    Parameters
    ----------
    results : mapping of toy to dict
        Per toy: ``v``, ``known``, ``mass`` (validation arrays) and ``metrics`` (its numbers).
    path : path
        The PNG to write.
    """
    toys = list(results)
    fig, axes = plt.subplots(2, len(toys), figsize=(5.2 * len(toys), 9.4), squeeze=False)
    for k, toy in enumerate(toys):
        r = results[toy]
        m = r["metrics"]
        name = LABELS[KNOWN[toy]]
        ax = axes[0, k]
        ax.hexbin(r["known"], r["v"], gridsize=45, mincnt=1, bins="log", cmap="viridis")
        ax.set_xlabel(f"{name} [GeV]")
        ax.set_ylabel("learned $V$")
        ax.set_title(f"{TITLES[toy]}: |Spearman| = {m['spearman_with_known']:.3f}", fontsize=12)
        bax = axes[1, k]
        _band(bax, r["mass"], _quantile(r["v"]), "tab:red", "learned $V$")
        _band(bax, r["mass"], _quantile(r["known"]), "tab:blue", name)
        bax.set_xlabel(r"true $m_A$ [GeV]")
        bax.set_ylabel("quantile of the variable")
        bax.set_ylim(0, 1)
        bax.legend(fontsize=10, loc="upper left")
        bax.set_title(
            f"$I(V; m_A)$ = {m['mi_binned_learned']:.2f}, "
            f"$I$({name}; $m_A$) = {m['mi_binned_known']:.2f} nats",
            fontsize=11,
        )
    fig.subplots_adjust(hspace=0.4, wspace=0.3)
    save_figure(fig, path)
