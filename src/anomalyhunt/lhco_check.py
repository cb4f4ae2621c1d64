"""Check the reference classifiers on real LHCO R&D events: ``python -m anomalyhunt.lhco_check``.

The toy generator is tuned to the LHCO R&D features, but the numbers that matter are the ones on
the real events. The shared signal-region files (mjj 3.3-3.7 TeV, the four features, truth labels;
see the README next to them) allow the two classifiers that need no sidebands:

* supervised: background of ``sr_data_a`` vs ``sr_signal_train`` (validation: 20% of that
  background vs ``sr_signal_val``);
* idealized anomaly detector: ``sr_data_a`` (the "data", 395 signal) vs the background of
  ``sr_data_b`` (a perfect background model), 20% of each held out for early stopping;

both evaluated on ``sr_test`` with :func:`anomalyhunt.evaluate.max_sic_point` (cuts keeping at
least 25 test background events) and printed next to the CATHODE paper's published max SIC.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt import cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.evaluate import MIN_BACKGROUND, auc, max_sic_point
from anomalyhunt.io import write_json
from anomalyhunt.scores.ensemble import Ensemble

log = logging.getLogger("anomalyhunt.lhco_check")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "lhco-rnd-signal-region"
FILES = ("sr_data_a", "sr_data_b", "sr_test", "sr_signal_train", "sr_signal_val")
#: Published max SIC (CATHODE paper, arXiv:2109.00546; median over runs, 3x64 MLP ensembles).
PUBLISHED: dict[str, float] = {
    "supervised": 17.6,
    "idealized": 15.1,
    "cathode": 14.0,
    "cwola": 10.8,
    "anode": 6.5,
}
DEFAULT_ENSEMBLE: dict[str, int] = {"supervised": 3, "idealized": 10}


def load_arrays(data_dir: str | Path) -> dict[str, np.ndarray]:
    """The five (N, 6) arrays: mjj, four features, label; clear error if anything is missing."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise AnomalyHuntError(
            f"{data_dir}: LHCO signal-region directory not found; pass --data-dir with the "
            "sr_*.npy files (LHCO R&D, CATHODE preprocessing)"
        )
    out = {}
    for name in FILES:
        path = data_dir / f"{name}.npy"
        if not path.exists():
            raise AnomalyHuntError(f"{path}: file not found in the LHCO signal-region directory")
        arr = np.load(path, allow_pickle=False)
        if arr.ndim != 2 or arr.shape[1] != 6 or not np.isfinite(arr).all():
            raise AnomalyHuntError(f"{path}: expected a finite (N, 6) array, got shape {arr.shape}")
        out[name] = arr
    return out


def _subsample(arr: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    if fraction >= 1:
        return arr
    n = max(int(round(fraction * len(arr))), 1)
    return arr[np.sort(rng.choice(len(arr), n, replace=False))]


def _split(n: int, seed: int, validation_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    n_val = int(round(validation_fraction * n))
    return idx[n_val:], idx[:n_val]


def training_sets(
    arrays: dict[str, np.ndarray], method: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, X_val, y_val) of one method, following the README's recipe."""
    feats = slice(1, 5)
    if method == "supervised":
        a = arrays["sr_data_a"]
        bkg = a[a[:, 5] == 0]
        tr, va = _split(len(bkg), seed)
        sig, sig_val = arrays["sr_signal_train"], arrays["sr_signal_val"]
        X = np.concatenate([bkg[tr, feats], sig[:, feats]])
        y = np.r_[np.zeros(len(tr)), np.ones(len(sig))]
        X_val = np.concatenate([bkg[va, feats], sig_val[:, feats]])
        y_val = np.r_[np.zeros(len(va)), np.ones(len(sig_val))]
    elif method == "idealized":
        data = arrays["sr_data_a"]  # labels NOT used: all of A is "data"
        b = arrays["sr_data_b"]
        ref = b[b[:, 5] == 0]
        d_tr, d_va = _split(len(data), seed)
        r_tr, r_va = _split(len(ref), seed + 1)
        X = np.concatenate([data[d_tr, feats], ref[r_tr, feats]])
        y = np.r_[np.ones(len(d_tr)), np.zeros(len(r_tr))]
        X_val = np.concatenate([data[d_va, feats], ref[r_va, feats]])
        y_val = np.r_[np.ones(len(d_va)), np.zeros(len(r_va))]
    else:
        raise AnomalyHuntError(f"unknown method '{method}'; use supervised or idealized")
    return X, y.astype(np.int64), X_val, y_val.astype(np.int64)


def run_check(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    methods: Sequence[str] = ("supervised", "idealized"),
    ensemble: dict[str, int] | None = None,
    classifier: str = "hgb",
    params: dict[str, Any] | None = None,
    seed: int = 1,
    threads: int = 1,
    fraction: float = 1.0,
    min_background: int = MIN_BACKGROUND,
) -> dict[str, Any]:
    """Train each method, evaluate on sr_test, return metrics with the published max SIC.

    ``fraction`` < 1 subsamples the *training* inputs (never sr_test) to make the check faster.
    """
    if not 0 < fraction <= 1:
        raise AnomalyHuntError(f"fraction must be in (0, 1], got {fraction}")
    arrays = load_arrays(data_dir)
    rng = np.random.default_rng(seed)
    if fraction < 1:
        arrays = {
            k: v if k == "sr_test" else _subsample(v, fraction, rng) for k, v in arrays.items()
        }
    test = arrays["sr_test"]
    ensemble = DEFAULT_ENSEMBLE | (ensemble or {})
    results: dict[str, Any] = {}
    for method in methods:
        X, y, X_val, y_val = training_sets(arrays, method, seed)
        t0 = time.perf_counter()
        ens = Ensemble(classifier, params or {}, ensemble[method], seed=seed, threads=threads)
        ens.fit(X, y, X_val, y_val)
        score = ens.predict_proba(test[:, 1:5])
        point = max_sic_point(test[:, 5], score, min_background)
        results[method] = {
            "max_sic": point["sic"],
            "max_sic_at": point,
            "auc": auc(test[:, 5], score),
            "published_max_sic": PUBLISHED[method],
            "classifier": classifier,
            "ensemble": ensemble[method],
            "n_train": len(X),
            "train_seconds": round(time.perf_counter() - t0, 2),
        }
        log.info(
            "%s: max SIC %.2f (published %.1f), AUC %.4f, %.1f s",
            method,
            point["sic"],
            PUBLISHED[method],
            results[method]["auc"],
            results[method]["train_seconds"],
        )
    return {
        "data_dir": str(data_dir),
        "rule": f"max SIC over cuts keeping >= {min_background} sr_test background events",
        "fraction": fraction,
        "seed": seed,
        "results": results,
        "published_max_sic": PUBLISHED,
    }


def table(report: dict[str, Any]) -> str:
    """Markdown table: measured next to published max SIC."""
    lines = ["| method | max SIC (this check) | AUC | published max SIC |", "|---|---|---|---|"]
    for name, pub in PUBLISHED.items():
        r = report["results"].get(name)
        mine = f"{r['max_sic']:.1f}" if r else "-"
        auc_ = f"{r['auc']:.4f}" if r else "-"
        lines.append(f"| {name} | {mine} | {auc_} | {pub} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the check and print (and optionally write) the comparison."""
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.lhco_check", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--data-dir", default=str(DEFAULT_DATA_DIR), help="directory of the sr_*.npy files"
    )
    p.add_argument("--out", default=None, help="metrics.json to write")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["supervised", "idealized"],
        choices=["supervised", "idealized"],
    )
    p.add_argument("--classifier", choices=["hgb", "mlp"], default="hgb")
    p.add_argument("--ensemble-supervised", type=int, default=DEFAULT_ENSEMBLE["supervised"])
    p.add_argument("--ensemble-idealized", type=int, default=DEFAULT_ENSEMBLE["idealized"])
    p.add_argument("--fraction", type=float, default=1.0, help="subsample training inputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP threads per model (1 avoids oversubscription on busy machines)",
    )
    args = p.parse_args(argv)
    report = run_check(
        args.data_dir,
        args.methods,
        {"supervised": args.ensemble_supervised, "idealized": args.ensemble_idealized},
        classifier=args.classifier,
        seed=args.seed,
        threads=args.threads,
        fraction=args.fraction,
    )
    print(table(report))
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
