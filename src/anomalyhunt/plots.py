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
from scipy import stats  # noqa: E402

from anomalyhunt.io import atomic_path  # noqa: E402

plt.style.use(hep.style.ROOT)
plt.rcParams.update({"font.size": 13, "axes.titlesize": 13, "figure.dpi": 90})


def save_figure(fig: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


def window_fits(result: Mapping[str, Any], path: str | os.PathLike) -> None:
    """mjj with the sideband fit at every cut, residuals beneath, the SR shaded."""
    cuts = result["cuts"]
    if not cuts:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(
            0.5,
            0.5,
            f"window {result['window']} skipped:\n{result['skipped']}",
            ha="center",
            va="center",
            transform=ax.transAxes,
            wrap=True,
        )
        ax.set_axis_off()
        save_figure(fig, path)
        return
    fig, axes = plt.subplots(
        2,
        len(cuts),
        figsize=(4.6 * len(cuts), 6.2),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
        squeeze=False,
    )
    pulls = []
    for k, cut in enumerate(cuts):
        ax, rax = axes[0, k], axes[1, k]
        fit = cut["fit"]
        edges = np.asarray(fit["edges"])
        counts = np.asarray(fit["counts"])
        centres = 0.5 * (edges[1:] + edges[:-1])
        for a in (ax, rax):
            a.axvspan(*result["sr"], color="tab:orange", alpha=0.15, lw=0)
        ax.errorbar(centres, counts, yerr=np.sqrt(counts), fmt="o", ms=3, color="k", label="data")
        shown = counts[counts > 0]
        if cut["valid"]:
            expected = np.asarray(fit["expected"])
            ax.stairs(expected, edges, baseline=None, color="tab:blue", lw=1.8, label="background")
            _signal_overlay(ax, cut, edges, expected)
            resid = (counts - expected) / np.sqrt(np.maximum(expected, 1e-9))
            pulls.append(np.abs(resid))
            rax.bar(centres, resid, width=np.diff(edges), color="tab:gray")
            shown = np.concatenate([shown, expected[expected > 0]])
            title = f"keep {100 * cut['efficiency']:g}%: local Z = {cut['z']:.2f}"
        else:
            title = f"keep {100 * cut['efficiency']:g}%: fit failed"
        ax.set_yscale("log")
        ax.set_title(title)
        if shown.size:  # the data's own range, so no panel is mostly empty
            ax.set_ylim(0.5 * max(shown.min(), 0.5), 3.0 * shown.max())
        rax.axhline(0, color="k", lw=0.8)
        rax.set_xlabel(r"$m_{jj}$ [TeV]")
        if k == 0:
            ax.set_ylabel(f"events / {edges[1] - edges[0]:.2f} TeV")
            rax.set_ylabel("pull")
            ax.legend(loc="upper right", fontsize=10)
    # one pull scale for every cut, so the panels compare at a glance
    top = max(3.0, 1.1 * max((float(p.max()) for p in pulls if p.size), default=3.0))
    for rax in axes[1]:
        rax.set_ylim(-top, top)
    fig.suptitle(
        f"{result['method']}, window {result['window']}: SR {result['sr'][0]:.2f}-"
        f"{result['sr'][1]:.2f} TeV",
        y=1.0,
    )
    save_figure(fig, path)


def local_z_scan(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Local Z against SR centre, one line per method and cut, with 1-5 sigma guide lines."""
    ok = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for (method, eff), grp in ok.groupby(["method", "efficiency"]):
        grp = grp.sort_values("centre")
        ax.plot(grp["centre"], grp["z"], "o-", label=f"{method}, keep {100 * eff:g}%")
    for z in range(1, 6):
        ax.axhline(z, color="gray", ls=":", lw=0.8)
        ax.text(
            1.0, z, f" {z}$\\sigma$", transform=ax.get_yaxis_transform(), va="center", color="gray"
        )
    ax.set_xlabel(r"signal-region centre $m_{jj}$ [TeV]")
    ax.set_ylabel(r"local significance $Z$")
    ax.set_ylim(bottom=0)
    if not ok.empty:
        ax.legend(fontsize=10)
    save_figure(fig, path)


def _sigma_lines(ax: plt.Axes, max_sigma: int = 5) -> None:
    """Horizontal p0 guides at 1..max_sigma, labelled on the right, so a reader needs no table."""
    for z in range(1, max_sigma + 1):
        p = stats.norm.sf(z)
        ax.axhline(p, color="gray", ls=":", lw=0.8)
        ax.text(
            1.0, p, f" {z}$\\sigma$", transform=ax.get_yaxis_transform(), va="center", color="gray"
        )


def local_p0_scan(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Local p0 against SR centre on a log axis, one line per method and cut, 1-5 sigma guides.

    The log p0 scale shows at a glance how many sigma each window reaches and how far a dip
    stands out from the ~0.5 floor of windows with a deficit.
    """
    ok = table[(table["status"] == "ok") & (table["p0"] > 0)]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for (method, eff), grp in ok.groupby(["method", "efficiency"]):
        grp = grp.sort_values("centre")
        ax.plot(grp["centre"], grp["p0"], "o-", ms=4, label=f"{method}, keep {100 * eff:g}%")
    ax.set_yscale("log")
    _sigma_lines(ax)
    bottom = stats.norm.sf(5.5)
    if not ok.empty:
        bottom = min(bottom, float(ok["p0"].min()) / 5)
        ax.legend(fontsize=10, loc="lower left")
    else:
        ax.text(0.5, 0.5, "no valid window", ha="center", transform=ax.transAxes)
    ax.set_ylim(bottom, 1.0)
    ax.set_xlabel(r"signal-region centre $m_{jj}$ [TeV]")
    ax.set_ylabel(r"local $p_0$")
    save_figure(fig, path)


def _limit_points(fits: list[Mapping[str, Any]], method: str, eff: float) -> dict[str, np.ndarray]:
    """SR centre, observed and the 5 expected quantiles of every window with a usable limit."""
    rows = []
    for f in fits:
        if f["method"] != method or f.get("skipped"):
            continue
        for c in f["cuts"]:
            lim = c.get("limit") or {}
            band = lim.get("expected_band")
            if c["efficiency"] != eff or lim.get("observed") is None or not band or len(band) != 5:
                continue
            if any(v is None for v in band):
                continue
            rows.append((f["centre"], lim["observed"], *band))
    rows.sort()
    arr = np.array(rows, dtype=float).reshape(-1, 7)
    return {"centre": arr[:, 0], "observed": arr[:, 1], "band": arr[:, 2:]}


def _luminosity(fits: list[Mapping[str, Any]]) -> float | None:
    for f in fits:
        for c in f.get("cuts", []):
            xs = c.get("xsec_limit") or {}
            if xs.get("luminosity_fb"):
                return float(xs["luminosity_fb"])
    return None


def limit_scan(
    fits: list[Mapping[str, Any]], path: str | os.PathLike, luminosity_fb: float | None = None
) -> None:
    """95% CLs upper limits on the signal yield vs SR centre: one panel per method and cut.

    Observed (solid) over the expected median (dashed) with the usual green (1 sigma) and yellow
    (2 sigma) bands, so a window is read as an excess where the observed leaves the bands upward.
    The right axis reads the same limit as sigma x efficiency x acceptance = N / L (fb), with L
    given or taken from the fits' ``xsec_limit``.
    """
    lumi = luminosity_fb or _luminosity(fits)
    keys = sorted(
        {(f["method"], c["efficiency"]) for f in fits if not f.get("skipped") for c in f["cuts"]},
        key=lambda k: (k[0], -k[1]),
    )
    methods = sorted({k[0] for k in keys})
    effs = sorted({k[1] for k in keys}, reverse=True)
    if not keys:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no tested window: no limits", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        save_figure(fig, path)
        return
    fig, axes = plt.subplots(
        len(methods),
        len(effs),
        figsize=(5.6 * len(effs), 4.0 * len(methods)),
        squeeze=False,
        sharex=True,
        gridspec_kw={"wspace": 0.55},
    )
    for r, method in enumerate(methods):
        for k, eff in enumerate(effs):
            ax = axes[r, k]
            pts = _limit_points(fits, method, eff)
            ax.set_title(f"{method}, keep {100 * eff:g}%")
            if pts["centre"].size == 0:
                ax.text(0.5, 0.5, "no limit", ha="center", transform=ax.transAxes)
                continue
            x, band = pts["centre"], pts["band"]
            ax.fill_between(
                x, band[:, 0], band[:, 4], color="#ffcc00", lw=0, label=r"expected $\pm 2\sigma$"
            )
            ax.fill_between(
                x, band[:, 1], band[:, 3], color="#00cc00", lw=0, label=r"expected $\pm 1\sigma$"
            )
            ax.plot(x, band[:, 2], "k--", lw=1.2, label="expected")
            ax.plot(x, pts["observed"], "ko-", ms=3.5, lw=1.5, label="observed")
            ax.set_yscale("log")
            if lumi:
                sec = ax.secondary_yaxis(
                    "right", functions=(lambda n: n / lumi, lambda x: x * lumi)
                )
                # every panel titles both its axes: events left, cross section right
                sec.set_ylabel(rf"$\sigma \times \epsilon \times A$ [fb], {lumi:g} fb$^{{-1}}$")
            if r == len(methods) - 1:
                ax.set_xlabel(r"SR centre $m_{jj}$ [TeV]")
            ax.set_ylabel("limit [signal events]")
            if r == 0 and k == 0:
                ax.legend(fontsize=9, loc="upper right")
    fig.suptitle(r"95% CL$_s$ upper limits on the signal yield in the SR", y=1.0)
    save_figure(fig, path)


def _signal_overlay(
    ax: plt.Axes, cut: Mapping[str, Any], edges: np.ndarray, expected: np.ndarray
) -> None:
    """Background plus the fitted signal (its shape over the SR bins times the best-fit yield)."""
    model = cut.get("sr_model") or {}
    shape, s_hat, sr_edges = model.get("signal_shape"), model.get("signal_hat"), model.get("edges")
    if not shape or s_hat is None or not sr_edges or s_hat <= 0:
        return
    lo = np.asarray(sr_edges[:-1])
    hi = np.asarray(sr_edges[1:])
    widths = np.diff(edges)
    total = expected.copy()
    for frac, a, b in zip(shape, lo, hi, strict=True):
        inside = (edges[:-1] >= a - 1e-9) & (edges[1:] <= b + 1e-9)
        if inside.any():  # spread each SR bin's signal over its fit bins by width
            total[inside] += s_hat * frac * widths[inside] / widths[inside].sum()
    sr = (edges[:-1] >= lo[0] - 1e-9) & (edges[1:] <= hi[-1] + 1e-9)
    idx = np.flatnonzero(sr)
    ax.stairs(
        total[idx],
        edges[idx[0] : idx[-1] + 2],
        baseline=None,
        color="tab:red",
        lw=1.4,
        ls="--",
        label="background + fitted signal",
    )


def cut_marks(cuts: list[Mapping[str, Any]]) -> dict[float, float]:
    """Efficiency -> score threshold of each cut (the median over folds), for score plots."""
    return {
        c["efficiency"]: float(np.median(list(c["thresholds"].values())))
        for c in cuts
        if c.get("thresholds")
    }


def score_distributions(
    scores: pd.DataFrame,
    path: str | os.PathLike,
    title: str = "",
    thresholds: Mapping[float, float] | None = None,
) -> None:
    """Score shapes in SR and sidebands (and by truth where known): what the classifier learnt.

    ``thresholds`` (efficiency -> score) marks the cuts; folds have their own thresholds, so the
    line is their median.
    """
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
        for i, (eff, thr) in enumerate(sorted((thresholds or {}).items(), reverse=True)):
            ax.axvline(thr, color="0.3", lw=1.0, ls=(0, (4, 2 + 2 * i)))
            ax.annotate(
                f"keep {100 * eff:g}%",
                (thr, 0.98),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color="0.3",
            )
        ax.set_yscale("log")
        ax.legend(fontsize=10, loc="lower left")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("normalised")
    ax.set_title(title)
    save_figure(fig, path)


def sensitivity_curves(med: pd.DataFrame, path: str | os.PathLike) -> None:
    """Z_local (with its oracle), Z_global and max SIC against the injected S/sqrt(B), per method.

    Medians over seeds with the 16-84% spread as a band; the top axis reads the same points as
    S/B in the signal region. The dotted oracle is what the same cut would give with the true
    background known: the gap to it is what the background estimate loses. Z_global from toys is
    bounded by their number (open markers); Gross-Vitells, dashed, extrapolates beyond it.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [
        ("z_local", r"$Z_\mathrm{local}$, signal window, best cut"),
        ("z_global", r"$Z_\mathrm{global}$"),
        ("max_sic", "max SIC, signal window"),
    ]
    x_max = float(np.nanmax(med["s_over_sqrt_b_median"])) * 1.1 or 1.0
    for ax, (key, label) in zip(axes, panels, strict=True):
        for i, (method, rows) in enumerate(med.groupby("method")):
            rows = rows.sort_values("s_over_sqrt_b_median")
            x = rows["s_over_sqrt_b_median"].to_numpy()
            colour = f"C{i}"
            name = f"{method} (toys)" if key == "z_global" else method
            ax.plot(x, rows[f"{key}_median"], "o-", color=colour, label=name)
            ax.fill_between(
                x, rows[f"{key}_q16"], rows[f"{key}_q84"], color=colour, alpha=0.2, lw=0
            )
            if key == "z_local":
                ax.plot(
                    x,
                    rows["z_oracle_median"],
                    "s:",
                    color=colour,
                    ms=4,
                    label=f"{method}: oracle (true background)",
                )
            if key == "z_global":
                bound = rows["z_global_bound_fraction"].to_numpy() >= 0.5
                if bound.any():
                    ax.plot(
                        x[bound],
                        rows["z_global_median"].to_numpy()[bound],
                        "o",
                        mfc="white",
                        color=colour,
                        label="at the toys' limit (a lower bound)",
                    )
                ax.plot(
                    x,
                    rows["z_global_gv_median"],
                    "^--",
                    color=colour,
                    ms=4,
                    label=f"{method} (Gross-Vitells)",
                )
        if key != "max_sic":
            ax.axhline(3, color="grey", ls="--", lw=1)
            ax.axhline(5, color="grey", ls="-.", lw=1)
        ax.set_xlim(0, x_max)
        ax.set_xlabel("injected S/\u221aB in the SR (before any cut)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=9, loc="upper left")
        ref = med.loc[med["s_over_sqrt_b_median"] > 0]
        if len(ref):
            slope = float(np.nanmedian(ref["s_over_b_median"] / ref["s_over_sqrt_b_median"]))
            top = ax.secondary_xaxis(
                "top", functions=(lambda v, s=slope: v * s, lambda v, s=slope: v / s)
            )
            top.set_xlabel("S/B in the SR")
    fig.suptitle("Sensitivity: median over seeds, band 16-84%", y=1.02)
    fig.tight_layout()
    save_figure(fig, path)
