"""How good and how safe an anomaly score is: ``python -m anomalyhunt.evaluate``.

Performance (where truth labels exist, in the signal region): ROC AUC; the significance
improvement characteristic SIC = TPR / sqrt(FPR), i.e. by how much a cut multiplies S/sqrt(B);
its maximum; and the background rejection 1/FPR at fixed signal efficiencies.

Max SIC rule: only cuts that keep at least ``min_background`` (default 25) background events
count. With unweighted events the relative statistical uncertainty of the FPR is 1/sqrt(n_B), so
this is the same as requiring it to be below 20%; without the rule the maximum is set by the one
or two background events with the highest scores and is pure noise (and grows with the sample).

Safety (sculpting): a bump hunt fits a smooth function to mjj after the cut, so a cut that shapes
the background mjj distribution can fake a bump. For background events (label 0, or all events
when there are no labels, i.e. data assumed background-dominated) of the whole window, the
Jensen-Shannon divergence (base 2, in [0, 1]) between the mjj histograms before and after keeping
the highest-scored 10% and 1% is reported, next to the same divergence for a random selection of
the same size (the statistical floor a score-independent cut gives).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet, write_json
from anomalyhunt.regions import SIGNAL_REGION

log = logging.getLogger("anomalyhunt.evaluate")

MIN_BACKGROUND = 25
EFFICIENCIES: tuple[float, ...] = (0.2, 0.5)
KEEP: tuple[float, ...] = (0.1, 0.01)


@dataclass(frozen=True)
class Roc:
    """One point per distinct score threshold, cut ``score >= threshold``, tightest first."""

    threshold: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    n_signal: np.ndarray  # signal events passing
    n_background: np.ndarray  # background events passing


def _labelled(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise AnomalyHuntError(f"labels {labels.shape} and scores {scores.shape} do not match")
    keep = (labels == 0) | (labels == 1)
    labels, scores = labels[keep].astype(np.int8), scores[keep]
    if not np.isfinite(scores).all():
        raise AnomalyHuntError("the scores contain NaN or infinite values")
    if (labels == 1).sum() == 0 or (labels == 0).sum() == 0:
        raise AnomalyHuntError("ROC needs both signal (label 1) and background (label 0) events")
    return labels, scores


def roc(labels: np.ndarray, scores: np.ndarray) -> Roc:
    """The ROC curve of ``scores`` for truth ``labels`` (1 signal, 0 background; others ignored).

    scikit-learn's :func:`~sklearn.metrics.roc_curve` with every threshold kept (the max-SIC rule
    needs the background count of each cut), less its (0, 0) starting point. Tied scores form one
    point, so the curve does not depend on the order of tied events.
    """
    from sklearn.metrics import roc_curve

    labels, scores = _labelled(labels, scores)
    fpr, tpr, threshold = roc_curve(labels, scores, drop_intermediate=False)
    n_sig, n_bkg = int((labels == 1).sum()), int((labels == 0).sum())
    return Roc(
        threshold=threshold[1:],
        tpr=tpr[1:],
        fpr=fpr[1:],
        n_signal=np.rint(tpr[1:] * n_sig).astype(np.int64),
        n_background=np.rint(fpr[1:] * n_bkg).astype(np.int64),
    )


def _auc(r: Roc) -> float:
    from sklearn.metrics import auc as area

    return float(area(np.r_[0.0, r.fpr], np.r_[0.0, r.tpr]))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids from (0, 0); ties count one half)."""
    return _auc(roc(labels, scores))


def sic(tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """TPR / sqrt(FPR); NaN where FPR is 0 (the ratio is undefined, not infinite)."""
    tpr, fpr = np.asarray(tpr, dtype=np.float64), np.asarray(fpr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fpr > 0, tpr / np.sqrt(np.where(fpr > 0, fpr, 1.0)), np.nan)


def max_sic_point(
    labels: np.ndarray, scores: np.ndarray, min_background: int = MIN_BACKGROUND
) -> dict[str, float]:
    """The cut of largest SIC among those keeping >= ``min_background`` background events."""
    return _max_sic_point(roc(labels, scores), min_background)


def _max_sic_point(r: Roc, min_background: int) -> dict[str, float]:
    ok = r.n_background >= min_background
    if not ok.any():
        raise AnomalyHuntError(
            f"max SIC: fewer than {min_background} background events in all; "
            "lower min_background or use more background"
        )
    values = np.where(ok, sic(r.tpr, r.fpr), -np.inf)
    i = int(np.argmax(values))
    return {
        "sic": float(values[i]),
        "tpr": float(r.tpr[i]),
        "fpr": float(r.fpr[i]),
        "threshold": float(r.threshold[i]),
        "n_background": int(r.n_background[i]),
    }


def max_sic(labels: np.ndarray, scores: np.ndarray, min_background: int = MIN_BACKGROUND) -> float:
    """Maximum SIC over cuts keeping at least ``min_background`` background events (see module)."""
    return max_sic_point(labels, scores, min_background)["sic"]


def rejection_at(labels: np.ndarray, scores: np.ndarray, efficiency: float) -> float:
    """1/FPR of the tightest cut whose signal efficiency (TPR) reaches ``efficiency``.

    No interpolation: the cut is a real one. ``inf`` if it passes no background at all.
    """
    return _rejection_at(roc(labels, scores), efficiency)


def _rejection_at(r: Roc, efficiency: float) -> float:
    if not 0 < efficiency <= 1:
        raise AnomalyHuntError(f"signal efficiency must be in (0, 1], got {efficiency}")
    i = int(np.argmax(r.tpr >= efficiency - 1e-12))
    return float(np.inf) if r.fpr[i] == 0 else float(1.0 / r.fpr[i])


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms (normalised here), base 2: 0 same, 1 disjoint."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise AnomalyHuntError("Jensen-Shannon divergence needs two non-empty histograms alike")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.5 * kl(p) + 0.5 * kl(q), 0.0)


def sculpting_jsd(
    mjj: np.ndarray,
    scores: np.ndarray,
    keep: Sequence[float] = KEEP,
    bins: int | np.ndarray = 20,
    seed: int = 0,
) -> dict[float, dict[str, float]]:
    """For each kept fraction: JSD between the mjj histograms of all events and of those kept.

    Feed background events only. Kept = the ``round(f n)`` highest scores. ``jsd_random`` is the
    JSD of an equally large random subset: what statistics alone give, for comparison.
    """
    mjj, scores = np.asarray(mjj, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if mjj.shape != scores.shape or len(mjj) == 0:
        raise AnomalyHuntError("sculpting: mjj and scores must be non-empty and of equal length")
    edges = (
        np.linspace(mjj.min(), mjj.max(), int(bins) + 1) if np.ndim(bins) == 0 else np.asarray(bins)
    )
    before, _ = np.histogram(mjj, edges)
    order = np.argsort(-scores, kind="stable")
    rng = np.random.default_rng(seed)
    out = {}
    for f in keep:
        if not 0 < f <= 1:
            raise AnomalyHuntError(f"sculpting: kept fraction must be in (0, 1], got {f}")
        n = max(int(round(f * len(mjj))), 1)
        after, _ = np.histogram(mjj[order[:n]], edges)
        rand, _ = np.histogram(mjj[rng.choice(len(mjj), n, replace=False)], edges)
        out[float(f)] = {
            "jsd": jensen_shannon(before, after) if after.sum() else float("nan"),
            "jsd_random": jensen_shannon(before, rand) if rand.sum() else float("nan"),
            "n_kept": n,
        }
    return out


def evaluate_scores(
    table: pd.DataFrame,
    min_background: int = MIN_BACKGROUND,
    efficiencies: Sequence[float] = EFFICIENCIES,
    keep: Sequence[float] = KEEP,
) -> dict[str, Any]:
    """All metrics of one scores table (columns of ``anomalyhunt.scores.SCORE_COLUMNS``)."""
    return _evaluate(table, min_background, efficiencies, keep)[0]


def _evaluate(
    table: pd.DataFrame,
    min_background: int,
    efficiencies: Sequence[float],
    keep: Sequence[float],
) -> tuple[dict[str, Any], Roc | None]:
    """The metrics and the SR ROC curve they came from (None without labelled signal and background)."""
    r = None
    missing = [c for c in ("mjj", "region", "label", "score") if c not in table.columns]
    if missing:
        raise AnomalyHuntError(f"scores table lacks columns {missing}")
    label = table["label"].to_numpy()
    score = table["score"].to_numpy(dtype=np.float64)
    sr = table["region"].to_numpy() == SIGNAL_REGION
    out: dict[str, Any] = {
        "n_events": len(table),
        "n_sr": int(sr.sum()),
        "n_signal_sr": int((label[sr] == 1).sum()),
        "n_background_sr": int((label[sr] == 0).sum()),
    }
    if out["n_signal_sr"] and out["n_background_sr"] < min_background:
        out["performance_skipped"] = (
            f"{out['n_background_sr']} background events in the SR, fewer than the "
            f"{min_background} a cut must keep to count"
        )
    elif out["n_signal_sr"] and out["n_background_sr"]:
        r = roc(label[sr], score[sr])  # one curve for every performance number
        point = _max_sic_point(r, min_background)
        out |= {
            "auc": _auc(r),
            "max_sic": point["sic"],
            "max_sic_at": point,
            "rejection": {str(e): _rejection_at(r, e) for e in efficiencies},
        }
    else:
        out["performance_skipped"] = "no truth-labelled signal and background in the SR"
    known = (label == 0) | (label == 1)
    bkg = label == 0 if known.any() else np.ones(len(label), bool)
    out["sculpting_on"] = "label 0 events" if known.any() else "all events (no labels)"
    if bkg.sum() > 0:
        out["sculpting"] = {
            str(k): v
            for k, v in sculpting_jsd(table["mjj"].to_numpy()[bkg], score[bkg], keep).items()
        }
    return out, r


def _name_and_path(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH``; a workflow path .../<window>/<method>/scores.parquet -> method/window."""
    if "=" in spec and not Path(spec).exists():
        name, path = spec.split("=", 1)
        return name, Path(path)
    path = Path(spec)
    if path.name == "scores.parquet" and path.parent.parent.name:
        return f"{path.parent.name}/{path.parent.parent.name}", path
    return path.stem, path


def plot_roc_sic(curves: dict[str, Roc], path: str | os.PathLike, min_background: int) -> None:
    """SIC and background rejection against signal efficiency, one line per score."""
    from anomalyhunt.plots import plt, save_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5.5))
    if not curves:  # background-only or unlabelled data: nothing to measure, say so in the figure
        a.text(
            0.5,
            0.5,
            "no truth-labelled signal in the signal region:\nno ROC or SIC to show",
            ha="center",
            va="center",
            transform=a.transAxes,
        )
    for name, r in curves.items():
        ok = r.n_background >= min_background
        a.plot(r.tpr[ok], sic(r.tpr, r.fpr)[ok], label=name)
        b.plot(r.tpr[ok], 1.0 / r.fpr[ok], label=name)
    tpr = np.linspace(1e-3, 1, 200)
    a.plot(tpr, np.sqrt(tpr), "k:", label="random")
    b.plot(tpr, 1 / tpr, "k:")
    a.set(
        xlabel="signal efficiency (TPR)",
        ylabel=r"SIC = TPR/$\sqrt{FPR}$",
        title=f"cuts keeping $\\geq${min_background} background events",
    )
    b.set(xlabel="signal efficiency (TPR)", ylabel="background rejection 1/FPR", yscale="log")
    a.legend(fontsize=10)
    save_figure(fig, path)


def plot_sculpting(
    tables: dict[str, pd.DataFrame],
    path: str | os.PathLike,
    keep: Sequence[float] = KEEP,
    metrics: dict[str, dict[str, Any]] | None = None,
    title: str = "",
) -> None:
    """Normalised background mjj before and after each cut, one panel per score, each cut's
    Jensen-Shannon divergence (and a random cut's, the statistical floor) in the legend."""
    from anomalyhunt.plots import plt, save_figure

    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 5), squeeze=False)
    for ax, (name, t) in zip(axes[0], tables.items(), strict=True):
        label = t["label"].to_numpy()
        bkg = label == 0 if (label >= 0).any() else np.ones(len(t), bool)
        mjj, s = t["mjj"].to_numpy()[bkg], t["score"].to_numpy()[bkg]
        if len(mjj) == 0:  # a skipped window has no scored events
            ax.text(0.5, 0.5, "no scored events", ha="center", transform=ax.transAxes)
            ax.set_title(name)
            continue
        edges = np.linspace(mjj.min(), mjj.max(), 21)
        ax.hist(mjj, edges, density=True, histtype="step", color="k", label="all")
        order = np.argsort(-s, kind="stable")
        jsd = ((metrics or {}).get(name) or {}).get("sculpting", {})
        for f in keep:
            sel = mjj[order[: max(int(round(f * len(mjj))), 1)]]
            label = f"top {100 * f:g}%"
            if str(float(f)) in jsd:
                j = jsd[str(float(f))]
                label += f": JSD {j['jsd']:.2g} (random {j['jsd_random']:.2g})"
            ax.hist(sel, edges, density=True, histtype="step", label=label)
        ax.set(
            xlabel=r"$m_{jj}$ [TeV]",
            ylabel="normalised background",
            title=f"{name}, {mjj.min():.2f}-{mjj.max():.2f} TeV",
            yscale="log",
        )
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, y=1.0)
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate one or more scores tables and write the metrics as JSON (and plots)."""
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.evaluate", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--scores",
        action="extend",
        nargs="+",
        required=True,
        help="scores.parquet, or NAME=PATH; several after one flag or the flag repeated",
    )
    p.add_argument("--out", required=True, help="metrics.json to write")
    p.add_argument("--plot", default=None, help="SIC and rejection curves (.png)")
    p.add_argument("--sculpt-plot", default=None, help="background mjj before/after cuts (.png)")
    p.add_argument(
        "--min-background",
        type=int,
        default=MIN_BACKGROUND,
        help="background events a cut must keep to count for max SIC",
    )
    args = p.parse_args(argv)
    if args.min_background < 1:
        raise AnomalyHuntError(f"--min-background must be at least 1, got {args.min_background}")
    tables: dict[str, pd.DataFrame] = {}
    for spec in args.scores:
        name, path = _name_and_path(spec)
        if not path.exists():
            raise AnomalyHuntError(f"{path}: scores file not found")
        if name in tables:
            raise AnomalyHuntError(f"two scores files are both named '{name}'; use NAME=PATH")
        tables[name] = read_parquet(path)
    evaluated = {
        name: _evaluate(t, args.min_background, EFFICIENCIES, KEEP) for name, t in tables.items()
    }
    metrics = {name: m for name, (m, _) in evaluated.items()}
    write_json(
        {
            "rules": {
                "max_sic_min_background": args.min_background,
                "efficiencies": list(EFFICIENCIES),
                "sculpting_keep": list(KEEP),
                "sculpting_metric": "Jensen-Shannon divergence, base 2, 20 mjj bins over the window",
            },
            "scores": metrics,
        },
        args.out,
    )
    for name, m in metrics.items():
        if "max_sic" in m:
            log.info(
                "%s: AUC %.3f, max SIC %.2f, 1/FPR@50%% %.1f",
                name,
                m["auc"],
                m["max_sic"],
                m["rejection"]["0.5"],
            )
        else:
            log.info("%s: %s", name, m["performance_skipped"])
    if args.plot:
        curves = {name: r for name, (m, r) in evaluated.items() if m.get("max_sic") is not None}
        if not curves:
            log.info("no truth-labelled SR signal and background: the ROC/SIC figure says so")
        plot_roc_sic(curves, args.plot, args.min_background)
    if args.sculpt_plot:
        window = Path(args.out).parent.parent.name  # .../windows/<window>/evaluation/metrics.json
        title = f"mjj sculpting by the score cuts, window {window}" if window else ""
        plot_sculpting(tables, args.sculpt_plot, metrics=metrics, title=title)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
