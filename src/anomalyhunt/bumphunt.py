"""Bump hunt of one window and one method: cut on the anomaly score, fit the sidebands, test the SR.

Each cut keeps a fraction of the window's events. Its threshold is set fold by fold on that fold's
own out-of-fold scores, so models of different folds (whose score scales differ) cut at the same
efficiency and no threshold is tuned on events a model was trained on.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet, write_json
from anomalyhunt.regions import SIGNAL_REGION, Window, find_window
from anomalyhunt.stats import functions, select, significance, spurious
from anomalyhunt.stats.fit import FunctionFit
from anomalyhunt.stats.functions import sr_groups

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


@dataclass(frozen=True)
class HuntOptions:
    """The statistics choices of ``bumphunt:`` in the config (defaults: the schema's)."""

    functions: tuple[str, ...] = ("dijet4",)
    selection: str = "ftest"
    selection_threshold: float = 0.05
    sr_bins: int = 4
    resolution: float = 0.05
    template: str = "gaussian"
    spurious: bool = True
    spurious_threshold: float = 0.5
    spurious_truth: str = "dijet5"
    luminosity_fb: float = 100.0
    background: str = "ratio"
    ratio_functions: tuple[str, ...] = ("ratio2", "ratio3")
    choice_uncertainty: bool = True
    #: CLs limits are most of a test's time; validations and sensitivity points skip them.
    limits: bool = True

    @classmethod
    def from_config(cls, bh: dict[str, Any]) -> HuntOptions:
        """Options from a validated ``bumphunt`` config section: the schema filled every default,
        so a missing key is a bug, not a place for a second default."""
        sig, spur = bh["signal"], bh["spurious"]
        return cls(
            functions=tuple(bh["functions"]),
            selection=bh["selection"],
            selection_threshold=float(bh["selection_threshold"]),
            sr_bins=int(bh["sr_bins"]),
            resolution=float(sig["resolution"]),
            template=sig["template"],
            spurious=bool(spur["enabled"]),
            spurious_threshold=float(spur["threshold"]),
            spurious_truth=spur["truth_function"],
            luminosity_fb=float(bh["luminosity_fb"]),
            background=bh["background"],
            ratio_functions=tuple(bh["ratio_functions"]),
            choice_uncertainty=bool(bh["choice_uncertainty"]),
            limits=bool(bh["limits"]),
        )


#: Fewest truth-labelled signal events in the SR for a simulation signal template.
MIN_TEMPLATE_EVENTS = 50


def fit_background(
    edges: np.ndarray,
    counts: np.ndarray,
    sr: tuple[float, float],
    opts: HuntOptions,
    uncut: np.ndarray | None = None,
) -> tuple[dict[str, Any], FunctionFit | None, dict[str, Any]]:
    """Sideband fit with the configured function(s): (fit record, chosen fit or None, choice).

    With ``uncut`` (the window's spectrum before the cut) the ratio members are fitted instead:
    the uncut spectrum times a smooth cut efficiency. One function or several, the same
    :func:`select.select_function` fits them (the least flexible may step down to fewer free
    parameters) and chooses by ``opts.selection``; the choice record lists every fit's quality
    and the tests that decided. The fit record also says whether the spectrum was too sparse to
    constrain the configured functions and what was done about it.
    """
    log_offset = None if uncut is None else functions.ratio_offset(uncut, edges)
    names = opts.ratio_functions if log_offset is not None else opts.functions
    order = sorted(names, key=lambda n: (functions.get_function(n).n_par, names.index(n)))
    choice, chosen = select.select_function(
        edges, counts, sr, order, opts.selection_threshold, opts.selection, log_offset=log_offset
    )
    _, fit_mask = functions.bin_masks(edges, *sr)
    base = {
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "fit_mask": [bool(v) for v in fit_mask],
        "sr": [float(sr[0]), float(sr[1])],
        "log_offset": None if log_offset is None else functions.json_clean(log_offset),
    }
    sparse = {
        k: choice[k]
        for k in ("sparse", "sparse_action", "n_fit_events", "n_fit_nonempty_bins", "max_free")
    }
    compact = {
        "selection": opts.selection,
        "threshold": choice["threshold"],
        "chosen": choice["chosen"],
        "alternative": choice["alternative"],
        "tests": choice["f_tests"],
        "message": choice["message"],
        "fits": {
            name: {
                k: f[k]
                for k in ("n_par", "n_free", "valid", "message", "chi2", "ndf", "chi2_pvalue")
            }
            for name, f in choice["fits"].items()
        },
    }
    if chosen is None:
        reasons = "; ".join(f"{n}: {f['message']}" for n, f in choice["fits"].items())
        record = {
            **base,
            "function": None,
            "n_par": None,
            "n_free": 0,
            "valid": False,
            "message": f"every fit failed ({reasons})",
            "params": None,
            "cov": None,
            "expected": None,
            "m2lnl": None,
            "chi2": None,
            "chi2_kind": "deviance",
            "ndf": 0,
            "chi2_pvalue": None,
            "signal": None,
            "sigma_signal": None,
            **sparse,
            "choice_shift": None,
        }
        return record, None, compact
    shift = select.choice_shift(choice) if opts.choice_uncertainty else None
    record = {
        **base,
        **chosen.to_dict(),
        **sparse,
        "choice_shift": None if shift is None else functions.json_clean(shift),
    }
    return record, chosen, compact


def signal_shape(
    edges: np.ndarray,
    masks: list[np.ndarray],
    centre: float,
    opts: HuntOptions,
    truth_mjj: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Signal fraction in each SR bin (sums to 1): the resolution Gaussian or a truth template."""
    if opts.template == "truth" and truth_mjj is not None and truth_mjj.size >= MIN_TEMPLATE_EVENTS:
        hist, _ = np.histogram(truth_mjj, bins=edges)
        shape = np.array([hist[m].sum() for m in masks], dtype=float)
        if shape.sum() >= MIN_TEMPLATE_EVENTS:
            return shape / shape.sum(), f"truth ({int(shape.sum())} signal events)"
    frac = spurious.signal_template(edges, centre, opts.resolution)
    shape = np.array([frac[m].sum() for m in masks])
    return shape / shape.sum(), f"gaussian (sigma = {opts.resolution:g} x {centre:.3g} TeV)"


def hunt_cut(
    scores: pd.DataFrame,
    window: Window,
    edges: np.ndarray,
    efficiency: float,
    options: HuntOptions | None = None,
    spurious_truth: tuple[np.ndarray, str] | None = None,
    uncut: np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole bump hunt at one cut: histogram, sideband fit, pyhf discovery test and limit.

    ``spurious_truth`` (expected background shape over the window's bins, any normalisation, and
    the function that made it; see :func:`stats.spurious.truth_shape`) runs the spurious-signal test of
    the chosen function when the options enable it. ``uncut`` (the window's histogram before any
    cut) selects the ratio background (``bumphunt.background: ratio``) for cuts that keep less
    than everything.
    """
    opts = options or HuntOptions()
    keep, thresholds = cut_mask(scores, efficiency)
    kept = scores[keep]
    counts, _ = np.histogram(kept["mjj"].to_numpy(), bins=edges)
    counts = counts.astype(float)
    labels = kept["label"].to_numpy()
    in_sr = kept["region"].to_numpy() == SIGNAL_REGION
    has_truth = bool((scores["label"].to_numpy() >= 0).any())
    out: dict[str, Any] = {
        "efficiency": efficiency,
        "thresholds": thresholds,
        "n_kept": int(keep.sum()),
        "n_signal_sr": int(((labels == 1) & in_sr).sum()) if has_truth else None,
        "n_background_sr": int(((labels == 0) & in_sr).sum()) if has_truth else None,
    }
    n_sig_all = int(
        ((scores["label"].to_numpy() == 1) & (scores["region"].to_numpy() == SIGNAL_REGION)).sum()
    )
    signal_eff = out["n_signal_sr"] / n_sig_all if has_truth and n_sig_all > 0 else None
    out["signal_efficiency"] = signal_eff
    use_ratio = opts.background == "ratio" and efficiency < 1.0 and uncut is not None
    record, fit, choice = fit_background(
        edges, counts, window.sr, opts, uncut if use_ratio else None
    )
    n_obs = float(counts[functions.bin_masks(edges, *window.sr)[0]].sum())
    out["n_obs"] = n_obs
    out["fit"] = record
    out["function"] = record.get("function")
    out["function_choice"] = choice
    out["sr_model"] = {"bins": opts.sr_bins}
    out["spurious"] = None
    out["xsec_limit"] = None
    if fit is None:
        log.warning(
            "window %s, efficiency %g: sideband fit failed: %s",
            window.id,
            efficiency,
            record["message"],
        )
        out.update(
            valid=False,
            reason=record["message"],
            b=None,
            sigma_b=None,
            z=None,
            p0=None,
            q0=None,
            limit=None,
        )
        return out
    b, sigma_b = fit.predict(*window.sr)
    shift = (
        None if record["choice_shift"] is None else np.asarray(record["choice_shift"], dtype=float)
    )
    if shift is not None:  # the function-choice uncertainty, fully correlated over the SR
        sigma_b = float(np.hypot(sigma_b, shift[functions.bin_masks(edges, *window.sr)[0]].sum()))
    out.update(valid=True, reason=None, b=b, sigma_b=sigma_b)
    if opts.spurious and spurious_truth is not None and use_ratio:
        out["spurious"] = {
            "flag": None,
            "ratio": None,
            "message": "not run: the ratio background takes its shape from the uncut spectrum",
        }
    elif opts.spurious and spurious_truth is not None:
        out["spurious"] = spurious.check_cut(
            edges, counts, window, spurious_truth, out["function"], opts, record["n_free"]
        )
    try:
        if opts.sr_bins == 1:
            out.update(significance.discovery(n_obs, b, sigma_b))
        else:
            masks = sr_groups(edges, window.sr, opts.sr_bins)
            truth_mjj = (
                scores.loc[scores["label"].to_numpy() == 1, "mjj"].to_numpy() if has_truth else None
            )
            shape, shape_kind = signal_shape(edges, masks, window.centre, opts, truth_mjj)
            b_g, cov_g = fit.predict_bins(masks)
            shift_g = None if shift is None else np.array([shift[m].sum() for m in masks])
            if shift_g is not None:
                cov_g = cov_g + np.outer(shift_g, shift_g)
            n_g = np.array([counts[m].sum() for m in masks])
            lo = [float(edges[:-1][m][0]) for m in masks]
            out["sr_model"] = {
                "bins": opts.sr_bins,
                "edges": [*lo, float(window.sr[1])],
                "n_obs": n_g.tolist(),
                "b": b_g.tolist(),
                "cov": cov_g.tolist(),
                "signal_shape": shape.tolist(),
                "signal_template": shape_kind,
                "choice_shift": None if shift_g is None else shift_g.tolist(),
            }
            disc = significance.discovery_multi(n_g, b_g, cov_g, shape)
            out["sr_model"]["n_variations"] = disc.pop("n_variations")
            out["sr_model"]["signal_hat"] = disc.pop("signal_hat")
            out.update(disc)
    except Exception as exc:  # a failed test of one cut must not lose the other cuts
        log.warning(
            "window %s, efficiency %g: discovery test failed: %s", window.id, efficiency, exc
        )
        out.update(
            valid=False,
            reason=f"discovery test failed: {exc}",
            z=None,
            p0=None,
            q0=None,
            limit=None,
        )
        return out
    if not opts.limits:
        out["limit"] = None
        return out
    try:
        if opts.sr_bins == 1:
            out["limit"] = significance.upper_limit(n_obs, b, sigma_b)
        else:
            m = out["sr_model"]
            out["limit"] = significance.upper_limit_multi(
                np.asarray(m["n_obs"]),
                np.asarray(m["b"]),
                np.asarray(m["cov"]),
                np.asarray(m["signal_shape"]),
            )
    except Exception as exc:
        log.warning("window %s, efficiency %g: upper limit failed: %s", window.id, efficiency, exc)
        out["limit"] = {"error": str(exc)}
    out["xsec_limit"] = significance.xsec_limits(out["limit"], signal_eff, opts.luminosity_fb)
    return out


def hunt(
    scores: pd.DataFrame,
    window: Window,
    efficiencies: Sequence[float],
    bin_width: float,
    options: HuntOptions | None = None,
) -> list[dict[str, Any]]:
    opts = options or HuntOptions()
    edges = bin_edges(window, bin_width)
    if opts.sr_bins > 1:
        sr_groups(edges, window.sr, opts.sr_bins)  # a bad sr_bins is a config error: fail early
    truth = (
        spurious.truth_shape(scores["mjj"].to_numpy(), edges, window.sr, opts.spurious_truth)
        if opts.spurious
        else None
    )
    uncut = np.histogram(scores["mjj"].to_numpy(), bins=edges)[0].astype(float)
    results = []
    for eff in efficiencies:
        res = hunt_cut(scores, window, edges, eff, opts, truth, uncut)
        z = res.get("z")
        log.info(
            "window %s SR %.2f-%.2f TeV, keep %5.1f%%: n=%d b=%.1f±%.1f Z=%s (%s)",
            window.id,
            *window.sr,
            100 * eff,
            res["n_obs"],
            res["b"] or 0,
            res["sigma_b"] or 0,
            "n/a" if z is None else f"{z:.2f}",
            res.get("function"),
        )
        results.append(res)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.bumphunt", description=__doc__.splitlines()[0]
    )
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
    window, skipped = find_window(args.windows, args.window)
    scores = read_parquet(args.scores)
    result: dict[str, Any] = {
        "window": window.id,
        "method": args.method,
        "sr": window.sr,
        "sb_low": window.sb_low,
        "sb_high": window.sb_high,
        "centre": window.centre,
        "skipped": skipped,
        "cuts": [],
    }
    if result["skipped"] is None and scores.empty:
        result["skipped"] = "no scored events"
    if result["skipped"] is None:
        result["cuts"] = hunt(
            scores,
            window,
            config["bumphunt"]["efficiencies"],
            config["bumphunt"]["bin_width"],
            HuntOptions.from_config(config["bumphunt"]),
        )
    write_json(result, args.out)
    from anomalyhunt import plots

    if args.plot:
        plots.window_fits(result, args.plot)
    if args.plot_scores:
        title = f"{args.method}, window {window.id} (SR {window.sr[0]:.2f}-{window.sr[1]:.2f} TeV)"
        plots.score_distributions(scores, args.plot_scores, title, plots.cut_marks(result["cuts"]))


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
