"""The branch's figures: amplification, the paper's quantile-MSE curves, and the toys themselves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomalyhunt.ganplify import metrics as m
from anomalyhunt.ganplify.toy import Camel, Shell, Toy
from anomalyhunt.plots import plt, save_figure

COLOURS = {"camel": "tab:blue", "ring": "tab:orange", "shell": "tab:green"}
STYLES = ["-", "--", ":", "-."]


def _label(row: Mapping[str, Any]) -> str:
    return f"{row['toy']} ({row['dimension']}-D), N={row['n_train']}"


def amplification(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Amplification against generated events (left) and against the dimension (right).

    Parameters
    ----------
    rows : sequence of dict
        One :func:`experiment.summarise` result per toy and N.
    path : path
        The PNG to write.
    """
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    sizes_n = sorted({r["n_train"] for r in rows})
    for r in rows:
        ls = STYLES[sizes_n.index(r["n_train"]) % len(STYLES)]
        gen = np.array([int(k) for k in r["amplification_by_n_generated"]])
        amp = np.array(list(r["amplification_by_n_generated"].values()))
        ax.plot(gen, amp, ls, marker="o", ms=4, color=COLOURS[r["toy"]], label=_label(r))
    ax.axhline(1.0, color="k", lw=1)
    ax.text(
        0.02, 0.03, "below 1: worse than the training sample", transform=ax.transAxes, fontsize=10
    )
    ax.set(
        xscale="log", yscale="log", xlabel="generated events", ylabel="amplification  N_equiv / N"
    )
    ax.legend(fontsize=9, loc="upper left")
    for i, n in enumerate(sizes_n):
        sel = sorted((r for r in rows if r["n_train"] == n), key=lambda r: r["dimension"])
        dims = [r["dimension"] for r in sel]
        bx.plot(
            dims,
            [r["amplification_gan"] for r in sel],
            "o" + STYLES[i % 4],
            color="k",
            label=f"GAN, N={n}",
        )
        bx.plot(
            dims,
            [r["amplification_fit"] for r in sel],
            "s" + STYLES[i % 4],
            color="tab:red",
            mfc="none",
            label=f"fit, N={n}",
        )
    bx.axhline(1.0, color="k", lw=1)
    bx.set(yscale="log", xlabel="dimension of the toy", ylabel="amplification at most generated")
    bx.set_xticks(sorted({r["dimension"] for r in rows}))
    bx.legend(fontsize=9)
    fig.suptitle("GANplifying: how many true events the GAN's events are worth", fontsize=13)
    fig.tight_layout()
    save_figure(fig, path)


def quantile_mse(
    rows: Sequence[Mapping[str, Any]],
    truth_curves: Mapping[str, Mapping[int, float]],
    path: str | os.PathLike,
) -> None:
    """The paper's view: quantile MSE against the number of events, per toy (columns) and N (rows).

    The grey line is the 1/n law of true samples (points: measured on the pool); the GAN's
    events follow it at first and flatten where its own error takes over; the horizontal lines
    are the training sample and the fit.
    """
    toys = list(dict.fromkeys(r["toy"] for r in rows))
    sizes_n = sorted({r["n_train"] for r in rows})
    fig, axes = plt.subplots(
        len(sizes_n), len(toys), figsize=(4.6 * len(toys), 3.8 * len(sizes_n)), squeeze=False
    )
    for r in rows:
        ax = axes[sizes_n.index(r["n_train"]), toys.index(r["toy"])]
        gen = np.array([int(k) for k in r["mse_gan_by_n_generated"]])
        lo, hi = min(gen.min(), r["n_train"]) / 2, gen.max() * 2
        grid = np.geomspace(lo, hi, 50)
        ax.plot(
            grid,
            [m.expected_sample_mse(r["n_cells"], n) for n in grid],
            color="0.6",
            label="true events, (1-1/K)/(K n)",
        )
        pts = truth_curves[r["toy"]]
        ax.plot(
            list(pts), list(pts.values()), "o", color="0.4", ms=3, label="true events, measured"
        )
        ax.plot(
            gen,
            list(r["mse_gan_by_n_generated"].values()),
            "o-",
            color=COLOURS[r["toy"]],
            label="GAN events",
        )
        ax.axhline(r["mse_training_sample"], color="k", ls="--", lw=1.2, label="training sample")
        ax.axhline(r["mse_fit"], color="tab:red", ls=":", lw=1.5, label="fit")
        ax.axvline(r["n_train"], color="k", lw=0.6)
        ax.set(xscale="log", yscale="log", xlabel="events", ylabel="quantile MSE")
        ax.set_title(
            f"{r['toy']} {r['dimension']}-D, K={r['n_cells']}, N={r['n_train']}: "
            f"A={r['amplification_gan']:.2g}",
            fontsize=11,
        )
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


def _cell_ratios(ax: Any, toy: Toy, parts: Mapping[str, np.ndarray]) -> None:
    k = toy.n_cells
    for (name, probs), style in zip(parts.items(), ["k_", "o", "s"], strict=False):
        ax.plot(np.arange(k), np.asarray(probs) * k, style, ms=4 if k > 30 else 6, label=name)
    ax.axhline(1.0, color="0.5", lw=1)
    ax.set(xlabel="cell (equal true probability)", ylabel="probability x K")
    ax.legend(fontsize=8)


def densities(panels: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Per toy: truth, training events and GAN events (top), per-cell probability / truth (bottom).

    Parameters
    ----------
    panels : sequence of dict
        ``toy``, ``train`` (N events), ``gan`` (generated events), ``fit`` (the fit's cell
        probabilities).
    path : path
        The PNG to write.
    """
    fig, axes = plt.subplots(2, len(panels), figsize=(4.8 * len(panels), 8), squeeze=False)
    for j, p in enumerate(panels):
        toy, train, gan = p["toy"], np.asarray(p["train"]), np.asarray(p["gan"])
        ax = axes[0, j]
        if isinstance(toy, Camel):
            edges = np.linspace(-9, 9, 61)
            grid = np.linspace(-9, 9, 400)
            ax.plot(grid, toy.pdf(grid), color="0.4", label="truth")
            ax.hist(
                gan[:, 0],
                edges,
                density=True,
                histtype="step",
                color=COLOURS["camel"],
                lw=1.5,
                label="GAN",
            )
            ax.hist(
                train[:, 0],
                edges,
                density=True,
                histtype="step",
                color="k",
                ls="--",
                label=f"training, N={len(train)}",
            )
            ax.set(xlabel="x", ylabel="density")
        elif isinstance(toy, Shell) and toy.dim == 2:
            ax.plot(
                gan[:3000, 0],
                gan[:3000, 1],
                ".",
                ms=1.5,
                color=COLOURS["ring"],
                alpha=0.5,
                label="GAN",
            )
            ax.plot(train[:, 0], train[:, 1], "k.", ms=4, label=f"training, N={len(train)}")
            ax.set(xlabel="x1", ylabel="x2", aspect="equal")
        else:
            edges = np.linspace(0, 8, 41)
            grid = np.linspace(0, 8, 300)
            ax.plot(grid, toy.radial.pdf(grid), color="0.4", label="truth")
            ax.hist(
                toy.radius(gan),
                edges,
                density=True,
                histtype="step",
                color=COLOURS["shell"],
                lw=1.5,
                label="GAN",
            )
            ax.hist(
                toy.radius(train),
                edges,
                density=True,
                histtype="step",
                color="k",
                ls="--",
                label=f"training, N={len(train)}",
            )
            ax.set(xlabel=f"radius |x| ({toy.dim}-D)", ylabel="density")
        ax.set_title(f"{toy.name} ({toy.dim}-D)", fontsize=12)
        ax.legend(fontsize=8, loc="upper right")
        _cell_ratios(
            axes[1, j],
            toy,
            {
                "fit": p["fit"],
                "training": m.cell_fractions(toy.cells(train), toy.n_cells),
                "GAN": m.cell_fractions(toy.cells(gan), toy.n_cells),
            },
        )
    fig.tight_layout()
    save_figure(fig, path)
