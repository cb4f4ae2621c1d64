"""How well does the sideband flow predict the signal-region background? (CATHODE's weak point)

For the default generator without signal, in the window whose SR is 3.3-3.7 TeV: train the
conditional flow on the sidebands (80/20 train/validation), sample it at SR mjj values drawn
from a KDE of the SR mjj (as CATHODE does), and train a gradient-boosted classifier to tell the
samples from the true SR background (2-fold). An AUC of 0.5 means the flow is perfect; anything
above is structure a CATHODE classifier can mistake for signal, which dilutes its sensitivity.

    python benchmarks/flow_fidelity.py                       # default flow
    python benchmarks/flow_fidelity.py --variant '{"transform": "spline"}' --variant '{"layers": 6}'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from anomalyhunt import config as cfgmod
from anomalyhunt.data import toy
from anomalyhunt.data.features import compute_features
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION, Window, build
from anomalyhunt.scores.base import WindowData
from anomalyhunt.scores.cathode import sample_mjj
from anomalyhunt.scores.flows import ConditionalFlow, Preprocessor

SR = (3.3, 3.7)


def window_events(seed: int, n_background: int, correlation: float) -> WindowData:
    config = cfgmod.validate(
        {
            "seed": seed,
            "data": {
                "toy": {"n_background": n_background, "n_signal": 0, "mjj_correlation": correlation}
            },
            "regions": {"n_inject": 0},
        },
        source="benchmark",
    )
    tc = config["data"]["toy"]
    events = toy.generate(
        tc["n_background"],
        0,
        cfgmod.derive_seed(seed, "toy"),
        mjj_correlation=tc["mjj_correlation"],
        mjj_signal=tc["signal"]["mjj"],
        mx=tc["signal"]["mx"],
        my=tc["signal"]["my"],
    )
    data, meta = build(compute_features(events), config)
    window = Window.from_dict(next(w for w in meta["windows"] if tuple(w["sr"]) == SR))
    wd = WindowData.from_frame(data, window)
    keep = wd.region > 0
    return WindowData(wd.X[keep], wd.mjj[keep], wd.region[keep], wd.label[keep])


def fidelity(wd: WindowData, params: dict, seed: int, threads: int) -> dict:
    rng = np.random.default_rng(seed)
    sb = np.flatnonzero(wd.region == SIDEBAND)
    sr = np.flatnonzero(wd.region == SIGNAL_REGION)
    rng.shuffle(sb)
    n_val = len(sb) // 5
    val, tr = sb[:n_val], sb[n_val:]
    t0, c0 = time.perf_counter(), time.process_time()
    flow = ConditionalFlow.from_config(params, seed=seed, threads=threads)
    pre = Preprocessor(flow.margin).fit(wd.X, wd.mjj)
    flow.fit(wd.X[tr], wd.mjj[tr], wd.X[val], wd.mjj[val], preprocessor=pre)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    samples = flow.sample(sample_mjj(wd.mjj[sr], len(sr), seed + 1), seed=seed + 2)
    X = np.concatenate([wd.X[sr], samples])
    y = np.r_[np.zeros(len(sr)), np.ones(len(samples))]
    fold = rng.integers(0, 2, len(y))
    pred = np.empty(len(y))
    for k in (0, 1):
        clf = HistGradientBoostingClassifier(max_iter=200, early_stopping=True, random_state=seed)
        clf.fit(X[fold != k], y[fold != k])
        pred[fold == k] = clf.predict_proba(X[fold == k])[:, 1]
    nll_sr = -float(np.mean(flow.log_prob(wd.X[sr], wd.mjj[sr])))
    return {
        "auc": float(roc_auc_score(y, pred)),
        "sr_nll": nll_sr,
        "epochs": len(flow.history),
        "best_epoch": flow.best_epoch,
        "cpu": cpu,
        "wall": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", default=[], help="flow params as JSON")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--n-background", type=int, default=1_000_000)
    ap.add_argument("--mjj-correlation", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    variants = [json.loads(v) for v in args.variant] or [{}]
    print(
        "| flow settings | seed | samples-vs-truth AUC | SR NLL | epochs (best) | CPU s | wall s |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed in range(1, args.seeds + 1):
        wd = window_events(seed, args.n_background, args.mjj_correlation)
        for v in variants:
            r = fidelity(wd, v, seed, args.threads)
            print(
                f"| {json.dumps(v) if v else 'default'} | {seed} | {r['auc']:.4f} | "
                f"{r['sr_nll']:.4f} | {r['epochs']} ({r['best_epoch']}) | {r['cpu']:.0f} | "
                f"{r['wall']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
