"""The branch's figures: spectra and A_FB against the truth, and what the weights cost."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from anomalyhunt.plots import plt, save_figure
from anomalyhunt.weighted_gan.metrics import pearson_chi2
from anomalyhunt.weighted_gan.toy import M_Z, DrellYanToy, WeightedSample

#: Colours: truth, hit-or-miss, uwGAN, the flat proposal.
TRUTH, HOM, GAN, FLAT = "black", "tab:red", "tab:blue", "tab:gray"


@dataclass
class ToyRun:
    """One toy's events and numbers: the weighted sample, hit-or-miss, the uwGAN's events."""

    name: str
    sample: WeightedSample
    kept: np.ndarray
    generated: np.ndarray
    edges: list[np.ndarray]
    probabilities: np.ndarray
    metrics: dict[str, Any]


def _density(x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts, _ = np.histogram(x, edges)
    norm = max(len(x), 1) * np.diff(edges)
    return counts / norm, np.sqrt(counts) / norm


def _afb_profile(x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.digitize(x[:, 0], edges) - 1
    afb, err = np.full(len(edges) - 1, np.nan), np.full(len(edges) - 1, np.nan)
    for k in range(len(edges) - 1):
        c = x[idx == k, 1]
        n = int(np.sum(c != 0))
        if n:
            a = (np.sum(c > 0) - np.sum(c < 0)) / n
            afb[k], err[k] = a, np.sqrt(max(1 - a * a, 1 / n) / n)
    return afb, err


def distributions(
    toy: DrellYanToy, one: ToyRun, two: ToyRun, *, tail_min: float, path: str | os.PathLike
) -> None:
    """Left: the 1-D mass spectrum and its ratio to the truth; right: A_FB(m) of the 2-D toy."""
    fig, axes = plt.subplots(
        2, 2, figsize=(14, 8.5), sharex="col", gridspec_kw={"height_ratios": [3, 1.3]}
    )
    edges = np.geomspace(toy.mass_min, toy.mass_max, 61)
    centres = np.sqrt(edges[1:] * edges[:-1])
    truth = toy.bin_probabilities(edges) / np.diff(edges)
    hom, hom_err = _density(one.kept[:, 0], edges)
    gan, gan_err = _density(one.generated[:, 0], edges)
    ax, rax = axes[0, 0], axes[1, 0]
    ax.stairs(truth, edges, color=TRUTH, lw=1.5, baseline=None, label="truth (exact)")
    ax.axhline(1 / (toy.mass_max - toy.mass_min), color=FLAT, ls=":", label="flat proposal")
    ax.errorbar(
        centres,
        hom,
        hom_err,
        fmt="o",
        ms=3.5,
        color=HOM,
        label=f"hit-or-miss: {len(one.kept)} of {len(one.sample)} events kept",
    )
    ax.stairs(
        gan, edges, color=GAN, lw=1.5, baseline=None, label=f"uwGAN: {len(one.generated)} events"
    )
    ax.set_yscale("log")
    ax.set_ylabel(r"$1/\sigma\; d\sigma/dm_{\mu\mu}$ [1/GeV]")
    ax.set_title("1-D toy: Drell-Yan-like mass spectrum")
    ax.legend(fontsize=10)
    ok = truth > 0
    rax.errorbar(
        centres[ok], hom[ok] / truth[ok], hom_err[ok] / truth[ok], fmt="o", ms=3, color=HOM
    )
    rax.stairs(gan / np.where(ok, truth, 1), edges, color=GAN, lw=1.5, baseline=None)
    rax.fill_between(
        edges[:-1].repeat(2)[1:],
        np.repeat(1 - gan_err / np.where(ok, truth, 1), 2)[:-1],
        np.repeat(1 + gan_err / np.where(ok, truth, 1), 2)[:-1],
        color=GAN,
        alpha=0.2,
        lw=0,
    )
    rax.axhline(1, color=TRUTH, lw=1)
    rax.axvspan(tail_min, toy.mass_max, color=FLAT, alpha=0.12, label="tail")
    rax.set_ylim(0.5, 1.5)
    rax.set_xscale("log")
    rax.set_xlabel(r"$m_{\mu\mu}$ [GeV]")
    rax.set_ylabel("/ truth")

    a_edges = np.geomspace(toy.mass_min, toy.mass_max, 19)
    a_centres = np.sqrt(a_edges[1:] * a_edges[:-1])
    p = np.array(
        [
            toy.bin_probabilities(np.array([lo, hi]), np.array([-1.0, 0.0, 1.0]))[0]
            for lo, hi in zip(a_edges[:-1], a_edges[1:], strict=True)
        ]
    )
    truth_afb = (p[:, 1] - p[:, 0]) / p.sum(axis=1)
    hom_afb, hom_afb_err = _afb_profile(two.kept, a_edges)
    gan_afb, gan_afb_err = _afb_profile(two.generated, a_edges)
    ax, rax = axes[0, 1], axes[1, 1]
    fine = np.geomspace(toy.mass_min, toy.mass_max, 400)
    ax.plot(fine, toy.afb(fine), color=TRUTH, lw=1, ls="--", label=r"$A_{FB}(m)$ of the toy")
    ax.stairs(truth_afb, a_edges, color=TRUTH, lw=1.5, baseline=None, label="truth (bin average)")
    ax.errorbar(
        a_centres,
        hom_afb,
        hom_afb_err,
        fmt="o",
        ms=3.5,
        color=HOM,
        label=f"hit-or-miss: {len(two.kept)} of {len(two.sample)} events kept",
    )
    ax.errorbar(
        a_centres,
        gan_afb,
        gan_afb_err,
        fmt="s",
        ms=3.5,
        color=GAN,
        label=f"uwGAN: {len(two.generated)} events",
    )
    ax.axvline(M_Z, color=FLAT, lw=0.8)
    ax.set_ylabel(r"forward-backward asymmetry $A_{FB}$")
    ax.set_title(r"2-D toy: $(m_{\mu\mu}, \cos\theta^*)$, $A_{FB}$ across the Z")
    ax.set_ylim(-0.9, 1.1)
    ax.legend(fontsize=10, loc="upper left")
    rax.errorbar(a_centres, hom_afb - truth_afb, hom_afb_err, fmt="o", ms=3, color=HOM)
    rax.errorbar(a_centres, gan_afb - truth_afb, gan_afb_err, fmt="s", ms=3, color=GAN)
    rax.axhline(0, color=TRUTH, lw=1)
    rax.set_ylim(-0.4, 0.4)
    rax.set_xscale("log")
    rax.set_xlabel(r"$m_{\mu\mu}$ [GeV]")
    rax.set_ylabel("- truth")
    fig.tight_layout()
    save_figure(fig, path)


def chi2_curve(run: ToyRun, sizes: np.ndarray) -> np.ndarray:
    """The uwGAN's chi2 per bin against the truth for its first ``n`` events, for each size."""
    out = []
    for n in sizes:
        counts, _ = np.histogramdd(run.generated[: int(n)], bins=run.edges)
        out.append(pearson_chi2(counts, run.probabilities, int(n)) / run.probabilities.size)
    return np.asarray(out)


def weights(runs: list[ToyRun], path: str | os.PathLike) -> None:
    """Left: the spread of the weights; right: chi2 per bin against the number of events."""
    fig, (ax, cax) = plt.subplots(1, 2, figsize=(14, 5.5))
    colours = ["tab:purple", "tab:green"]
    for run, colour in zip(runs, colours, strict=False):
        w = run.sample.w[run.sample.w > 0]
        m = run.metrics["weights"]
        bins = np.linspace(np.log10(w.min()), np.log10(w.max()), 60)
        ax.hist(
            np.log10(w),
            bins=bins,
            histtype="step",
            lw=1.5,
            color=colour,
            label=f"{run.name}: efficiency {100 * m['unweighting_efficiency']:.2f} %, "
            f"Kish {m['kish_effective_events']:.0f} of {m['events']}",
        )
        ax.axvline(np.log10(m["max"]), color=colour, ls="--", lw=1)
    ax.axvline(0, color=TRUTH, ls=":", lw=1, label="mean weight 1")
    ax.set_yscale("log")
    ax.set_ylim(0.5, None)
    ax.set_xlabel(r"$\log_{10}$ weight (dashed: maximum)")
    ax.set_ylabel("weighted events")
    ax.set_title("weights: truth / flat proposal")
    ax.legend(fontsize=9.5, loc="lower left")

    for run, colour in zip(runs, colours, strict=False):
        n_kept = len(run.kept)
        start = max(min(n_kept, len(run.generated)) // 2, 50)
        sizes = np.unique(np.geomspace(start, len(run.generated), 14).astype(int))
        cax.plot(sizes, chi2_curve(run, sizes), "-s", ms=4, color=colour, label=f"uwGAN {run.name}")
        cax.errorbar(
            [n_kept],
            [run.metrics["hit_or_miss"]["chi2_per_bin"]],
            [np.sqrt(2 / run.probabilities.size)],
            fmt="o",
            ms=8,
            color=colour,
            mfc="white",
            label=f"hit-or-miss {run.name}",
        )
        eq = run.metrics["uwgan"]["equivalent_events"]
        cax.axvline(eq, color=colour, ls="--", lw=1)
        cax.axvline(run.metrics["weights"]["kish_effective_events"], color=colour, ls=":", lw=1)
    cax.axhline(1, color=TRUTH, lw=1, label="perfect sample")
    cax.set_xscale("log")
    cax.set_yscale("log")
    cax.set_xlabel("unweighted events (dashed: uwGAN equivalent, dotted: Kish of the weights)")
    cax.set_ylabel(r"$\chi^2$ per bin vs truth")
    cax.set_title("precision against sample size")
    cax.legend(fontsize=9.5, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)
