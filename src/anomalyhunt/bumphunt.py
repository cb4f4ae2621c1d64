"""Bump hunt of one window and one method: cut on the anomaly score, fit the sidebands, test the SR.

Each cut keeps a fraction of the window's events. Its threshold is set fold by fold on that fold's
own out-of-fold scores, so models of different folds (whose score scales differ) cut at the same
efficiency and no threshold is tuned on events a model was trained on.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, read_parquet, write_json
from anomalyhunt.regions import SIGNAL_REGION, Window
from anomalyhunt.stats import fit as fitmod
from anomalyhunt.stats import significance

log = logging.getLogger(__name__)


def bin_edges(window: Window, bin_width: float) -> np.ndarray:
    """Edges over the window span that also fall on the SR boundaries."""
    lo, hi = window.span
    n = round((hi - lo) / bin_width)
    edges = np.round(lo + bin_width * np.arange(n + 1), 9)
    for boundary in window.sr:
        if np.min(np.abs(edges - boundary)) > 1e-6:
            raise AnomalyHuntError(
                f"bumphunt.bin_width = {bin_width} TeV does not divide window {window.id} "
                f"(SR {window.sr[0]}-{window.sr[1]} TeV, span {lo}-{hi} TeV) into whole bins"
            )
    if abs(edges[-1] - hi) > 1e-6:
        raise AnomalyHuntError(
            f"bumphunt.bin_width = {bin_width} TeV does not divide the window span {lo}-{hi} TeV"
        )
    return edges


def cut_mask(scores: pd.DataFrame, efficiency: float) -> tuple[np.ndarray, dict[int, float]]:
    """Keep the top ``efficiency`` fraction of each fold's events; return mask and thresholds."""
    keep = np.zeros(len(scores), dtype=bool)
    thresholds: dict[int, float] = {}
    if efficiency >= 1.0:
        return np.ones(len(scores), dtype=bool), thresholds
    folds = scores["fold"].to_numpy()
    values = scores["score"].to_numpy()
    for fold in np.unique(folds):
        sel = folds == fold
        threshold = float(np.quantile(values[sel], 1.0 - efficiency, method="higher"))
        keep[sel] = values[sel] >= threshold
        thresholds[int(fold)] = threshold
    return keep, thresholds


def hunt_cut(scores: pd.DataFrame, window: Window, edges: np.ndarray, efficiency: float) -> dict[str, Any]:
    """The whole bump hunt at one cut: histogram, sideband fit, pyhf discovery test and limit."""
    keep, thresholds = cut_mask(scores, efficiency)
    kept = scores[keep]
    counts, _ = np.histogram(kept["mjj"].to_numpy(), bins=edges)
    labels = kept["label"].to_numpy()
    in_sr = kept["region"].to_numpy() == SIGNAL_REGION
    out: dict[str, Any] = {
        "efficiency": efficiency,
        "thresholds": thresholds,
        "n_kept": int(keep.sum()),
        "n_signal_sr": int(((labels == 1) & in_sr).sum()) if (labels >= 0).any() else None,
        "n_background_sr": int(((labels == 0) & in_sr).sum()) if (labels >= 0).any() else None,
    }
    fit = fitmod.fit_sidebands(edges, counts.astype(float), window.sr)
    n_obs = float(counts[(edges[:-1] >= window.sr[0] - 1e-9) & (edges[1:] <= window.sr[1] + 1e-9)].sum())
    out["n_obs"] = n_obs
    out["fit"] = fit.to_dict()
    if not fit.valid:
        log.warning("window %s, efficiency %g: sideband fit failed: %s", window.id, efficiency, fit.message)
        out.update(valid=False, reason=fit.message, b=None, sigma_b=None, z=None, p0=None, q0=None, limit=None)
        return out
    b, sigma_b = fit.predict(*window.sr)
    out.update(valid=True, reason=None, b=b, sigma_b=sigma_b)
    try:
        out.update(significance.discovery(n_obs, b, sigma_b))
    except Exception as exc:  # a failed test of one cut must not lose the other cuts
        log.warning("window %s, efficiency %g: discovery test failed: %s", window.id, efficiency, exc)
        out.update(valid=False, reason=f"discovery test failed: {exc}", z=None, p0=None, q0=None, limit=None)
        return out
    try:
        out["limit"] = significance.upper_limit(n_obs, b, sigma_b)
    except Exception as exc:
        log.warning("window %s, efficiency %g: upper limit failed: %s", window.id, efficiency, exc)
        out["limit"] = {"error": str(exc)}
    return out


def hunt(scores: pd.DataFrame, window: Window, efficiencies: Sequence[float], bin_width: float) -> list[dict[str, Any]]:
    edges = bin_edges(window, bin_width)
    results = []
    for eff in efficiencies:
        res = hunt_cut(scores, window, edges, eff)
        z = res.get("z")
        log.info(
            "window %s SR %.2f-%.2f TeV, keep %5.1f%%: n=%d b=%.1f±%.1f Z=%s",
            window.id, *window.sr, 100 * eff, res["n_obs"], res["b"] or 0, res["sigma_b"] or 0,
            "n/a" if z is None else f"{z:.2f}",
        )
        results.append(res)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m anomalyhunt.bumphunt", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--windows", required=True, help="windows.json from the regions stage")
    p.add_argument("--window", required=True, help="window id, e.g. w01")
    p.add_argument("--method", required=True)
    p.add_argument("--scores", required=True, help="scores.parquet of this window and method")
    p.add_argument("--out", required=True, help="fit.json")
    p.add_argument("--plot", help="PNG of the fits at every cut")
    p.add_argument("--plot-scores", help="PNG of the score distributions in SR and sidebands")
    args = p.parse_args(argv)
    config = cfgmod.load(args.config)
    meta = {w["id"]: w for w in read_json(args.windows)["windows"]}
    if args.window not in meta:
        raise AnomalyHuntError(f"window '{args.window}' is not in {args.windows} (known: {', '.join(meta)})")
    wmeta = meta[args.window]
    window = Window.from_dict(wmeta)
    scores = read_parquet(args.scores)
    result: dict[str, Any] = {
        "window": window.id, "method": args.method, "sr": window.sr, "sb_low": window.sb_low,
        "sb_high": window.sb_high, "centre": window.centre, "skipped": wmeta.get("skipped"), "cuts": [],
    }
    if result["skipped"] is None and scores.empty:
        result["skipped"] = "no scored events"
    if result["skipped"] is None:
        result["cuts"] = hunt(scores, window, config["bumphunt"]["efficiencies"], config["bumphunt"]["bin_width"])
    write_json(result, args.out)
    if args.plot:
        from anomalyhunt import plots

        plots.window_fits(result, args.plot)
    if args.plot_scores:
        from anomalyhunt import plots

        plots.score_distributions(scores, args.plot_scores, f"{args.method}, window {window.id}")


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
