"""The template background (arXiv:2411.00085) against the ratio background, by truth label.

    python benchmarks/template_background.py --run RUN --window w01 [--method cathode]
        [--oversampling 10]

Needs the window's fold models: run the scores stage by hand with ``--keep-checkpoints``
(``python -m anomalyhunt.scores --config results/RUN/config.yaml ... --model-dir
results/RUN/windows/W/METHOD/models --keep-checkpoints``). For each fold the method's background
model (``Scorer.background_template``: CATHODE's or ANODE's sideband flow) is sampled
``oversampling`` times at each held-out event's mjj, and the samples are scored by that fold's
model, so the fraction of background passing any cut is known bin by bin in mjj without a fit of
the cut spectrum (the direct estimate of Das et al., arXiv:2411.00085). The table compares, cut by
cut, the background predicted in the SR by: the ratio default; the template alone (no use of the
cut sidebands); the template scaled to the cut sidebands (ratio1 with the template as offset);
and the template with a scale and a tilt chosen by the F-test (ratio1, ratio2). Each row gives
b +- sigma_b beside the true background in the SR (labels), the local Z and the oracle Z.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from anomalyhunt import bumphunt as bh
from anomalyhunt.io import read_parquet, write_parquet
from anomalyhunt.regions import SIGNAL_REGION, Window, find_window
from anomalyhunt.scores import get_scorer
from anomalyhunt.scores.base import WindowData
from anomalyhunt.sensitivity import oracle_z
from anomalyhunt.stats import significance
from anomalyhunt.stats.functions import bin_masks, sr_groups

REPO = Path(__file__).resolve().parents[1]


#: Samples below the score that keeps this fraction of the fold's data are dropped (file size).
STORED_KEEP = 0.5


def score_template(
    sampler,
    scorer,
    data: WindowData,
    data_scores: np.ndarray,
    fold: int,
    oversampling: int,
    seed: int,
) -> pd.DataFrame:
    """``sampler``'s background samples at ``data``'s mjj values (each ``oversampling`` times),
    scored by ``scorer``."""
    mjj = np.repeat(data.mjj, oversampling)
    X = sampler.background_template(mjj, seed)
    if X is None:
        raise SystemExit(f"{sampler.name} learns no background model: no template")
    region = np.repeat(data.region, oversampling)
    samples = WindowData(
        np.ascontiguousarray(X, dtype=np.float32), mjj, region, np.full(len(mjj), -1, dtype=np.int8)
    )
    score = np.asarray(scorer.score(samples), dtype=np.float64)
    keep = score >= np.quantile(data_scores, 1.0 - STORED_KEEP, method="higher")
    return pd.DataFrame(
        {
            "mjj": mjj[keep],
            "region": region[keep],
            "fold": np.full(int(keep.sum()), fold, dtype=np.int8),
            "score": score[keep],
        }
    )


def make_template(
    run: Path, window: Window, method: str, oversampling: int, source: str
) -> pd.DataFrame:
    out = run / "windows" / window.id / method / f"template{oversampling}-{source}.parquet"
    if out.exists():
        return read_parquet(out)
    events = read_parquet(run / "regions" / "events.parquet")
    scores = read_parquet(run / "windows" / window.id / method / "scores.parquet")
    events = events.set_index("event_id").loc[scores["event_id"].to_numpy()].reset_index()
    data = WindowData.from_frame(events, window)
    parts = []
    for k in np.unique(scores["fold"]):
        t0 = time.perf_counter()
        model, sampler = (
            get_scorer(m).load(run / "windows" / window.id / m / "models" / f"fold{k}")
            for m in (method, source)
        )
        sel = scores["fold"].to_numpy() == k
        part = score_template(
            sampler,
            model,
            data.subset(sel),
            scores["score"].to_numpy()[sel],
            int(k),
            oversampling,
            1000 + int(k),
        )
        parts.append(part)
        print(
            f"fold {k}: {sel.sum() * oversampling} samples, {len(part)} kept, "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    template = pd.concat(parts, ignore_index=True)
    write_parquet(template, out)
    return template


def template_counts(
    template: pd.DataFrame, thresholds: dict[int, float], edges: np.ndarray
) -> np.ndarray:
    """Template samples passing each fold's cut, per mjj bin (divide by the oversampling)."""
    passed = np.zeros(len(template), dtype=bool)
    folds = template["fold"].to_numpy()
    for k, t in thresholds.items():
        sel = folds == k
        passed[sel] = template["score"].to_numpy()[sel] >= t
    h, _ = np.histogram(template["mjj"].to_numpy()[passed], bins=edges)
    return h.astype(float)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--window", required=True)
    p.add_argument("--method", default="cathode")
    p.add_argument("--oversampling", type=int, default=10)
    p.add_argument(
        "--template-from",
        default=None,
        help="the method whose background model is sampled (default: --method's own); its fold "
        "models must be kept too",
    )
    p.add_argument("--efficiencies", type=float, nargs="+", default=[0.1, 0.01, 0.001])
    args = p.parse_args()
    logging.disable(logging.WARNING)
    run = REPO / "results" / args.run
    config = yaml.safe_load((run / "config.yaml").read_text())
    window, _ = find_window(run / "regions" / "windows.json", args.window)
    source = args.template_from or args.method
    template = make_template(run, window, args.method, args.oversampling, source)
    scores = read_parquet(run / "windows" / window.id / args.method / "scores.parquet")
    edges = bh.bin_edges(window, config["bumphunt"]["bin_width"])
    uncut = np.histogram(scores["mjj"].to_numpy(), bins=edges)[0].astype(float)
    base = {
        **config["bumphunt"],
        "spurious": {**config["bumphunt"]["spurious"], "enabled": False},
        "limits": False,
    }
    masks = sr_groups(edges, window.sr, base["sr_bins"])
    sr_mask = bin_masks(edges, *window.sr)[0]
    print(
        "| candidate | keep | n (SR) | signal / background (truth) | b ± sigma_b | SB closure "
        "(n / template) | function | Z local | oracle Z | Z / oracle |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for eff in args.efficiencies:
        keep, thresholds = bh.cut_mask(scores, eff)
        kept = scores[keep]
        counts = np.histogram(kept["mjj"].to_numpy(), bins=edges)[0].astype(float)
        tmpl = template_counts(template, thresholds, edges)
        b_t = tmpl / args.oversampling
        sb = ~sr_mask
        closure = counts[sb].sum() / max(b_t[sb].sum(), 1e-9)
        lab = kept["label"].to_numpy()
        in_sr = kept["region"].to_numpy() == SIGNAL_REGION
        s_true, b_true = int(((lab == 1) & in_sr).sum()), int(((lab == 0) & in_sr).sum())
        n_sr = counts[sr_mask].sum()
        oracle = oracle_z(n_sr, b_true)
        rows = []
        for name, change, offset in (
            ("ratio (default)", {}, uncut),
            ("template x scale (ratio1)", {"ratio_functions": ["ratio1"]}, b_t),
            ("template x F-test (ratio1, ratio2)", {"ratio_functions": ["ratio1", "ratio2"]}, b_t),
        ):
            opts = bh.HuntOptions.from_config({**base, **change})
            cut = bh.hunt_cut(scores, window, edges, eff, opts, None, offset)
            rows.append((name, cut["b"], cut["sigma_b"], cut["function"], cut["z"] or 0.0))
        # the template alone: no fit, its own sampling error
        shape, _ = bh.signal_shape(edges, masks, window.centre, bh.HuntOptions.from_config(base))
        b_g = np.array([b_t[m].sum() for m in masks])
        n_g = np.array([counts[m].sum() for m in masks])
        var_g = np.array([tmpl[m].sum() for m in masks]) / args.oversampling**2
        disc = significance.discovery_multi(n_g, b_g, np.diag(np.maximum(var_g, 1e-6)), shape)
        rows.append(("template alone", b_g.sum(), float(np.sqrt(var_g.sum())), "-", disc["z"]))
        # the template with its SB closure as an uncertainty of the normalisation
        syst = abs(closure - 1.0)
        cov = np.diag(np.maximum(var_g, 1e-6)) + syst**2 * np.outer(b_g, b_g)
        disc = significance.discovery_multi(n_g, b_g, cov, shape)
        rows.append(
            (
                "template, |closure - 1| as a normalisation error",
                b_g.sum(),
                float(np.sqrt(var_g.sum() + (syst * b_g.sum()) ** 2)),
                "-",
                disc["z"],
            )
        )
        for name, b, sb_, fn, z in rows:
            bs = "failed" if b is None else f"{b:.1f} ± {sb_:.1f}"
            ratio = f"{z / oracle:.2f}" if oracle > 0 else "-"
            print(
                f"| {name} | {eff:g} | {n_sr:.0f} | {s_true} / {b_true} | {bs} | {closure:.3f} "
                f"| {fn} | {z:.2f} | {oracle:.2f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
