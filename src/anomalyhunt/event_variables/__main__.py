"""Deep-learned event variables (``event_variables``): V(x) that maximises I(V; m_A).

``python -m anomalyhunt.event_variables --config results/<run>/config.yaml --out-dir
results/<run>/event_variables`` (Snakemake target ``event_variables``): for each of the paper's
toys (A -> b c, A -> b C with C invisible, A A -> b C b C) draws events over a range of m_A,
trains V with its auxiliary classifier, and compares V with the known variable (m_bc, m_T, M_T2):
metrics.json and event_variables.png.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError

log = logging.getLogger("anomalyhunt.event_variables")

#: scale: paper replaces these settings with sizes of the paper's order (a GPU job): ten times
#: the events and three hidden layers of 128 for V.
PAPER_SIZES = {"n_train": 300_000, "n_valid": 50_000, "hidden": [128, 128, 128], "epochs": 100}


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes swapped in for ``scale: paper``, checked."""
    s = {**block, **(PAPER_SIZES if block["scale"] == "paper" else {})}
    lo, hi = s["mass_range"]
    if not 0 < lo < hi:
        raise AnomalyHuntError(
            f"event_variables.mass_range: [{lo}, {hi}] GeV must be a range of positive masses "
            "with min < max, e.g. [200, 1000]"
        )
    if s["batch_size"] > s["n_train"]:
        raise AnomalyHuntError(
            f"event_variables.batch_size: {s['batch_size']} is more than the {s['n_train']} "
            "training events (event_variables.n_train)"
        )
    if s["mi_bins"] ** 2 > s["n_valid"] / 5:
        raise AnomalyHuntError(
            f"event_variables.mi_bins: {s['mi_bins']}^2 bins for {s['n_valid']} validation "
            "events leaves fewer than 5 per bin; use fewer bins or more events (n_valid)"
        )
    return s


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("event_variables", argv, __doc__)
    s = settings(b.block)
    from anomalyhunt.event_variables import figures
    from anomalyhunt.event_variables.metrics import (
        binned_mutual_information,
        correlations,
        oriented,
    )
    from anomalyhunt.event_variables.model import evaluate, mutual_information, train_variable
    from anomalyhunt.event_variables.toy import KNOWN, generate

    results: dict[str, dict[str, Any]] = {}
    for toy in s["toys"]:
        kw = {"mass_range": tuple(s["mass_range"]), "pt_mean": s["pt_mean"]}
        train = generate(
            toy,
            s["n_train"],
            rng=np.random.default_rng(b.seed(toy, "train")),
            with_known=False,
            **kw,
        )
        valid = generate(toy, s["n_valid"], rng=np.random.default_rng(b.seed(toy, "valid")), **kw)
        net, result = train_variable(
            train.features,
            train.mass,
            valid.features,
            valid.mass,
            hidden=s["hidden"],
            classifier_hidden=s["classifier_hidden"],
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            learning_rate=s["learning_rate"],
            patience=s["patience"],
            seed=b.seed(toy, "fit"),
            device=b.device,
            label=f"event variable {toy}",
            checkpoint=b.path(f"{toy}.ckpt"),
        )
        raw = evaluate(net, valid.features, b.device)  # the classifier knows this sign of V
        classifier_mi = mutual_information(net, raw, valid.mass, b.seed(toy, "mi"), b.device)
        v = oriented(raw, valid.mass)
        numbers = {
            "known_variable": KNOWN[toy],
            **correlations(v, valid.known),
            "mi_binned_learned": binned_mutual_information(v, valid.mass, s["mi_bins"]),
            "mi_binned_known": binned_mutual_information(valid.known, valid.mass, s["mi_bins"]),
            "mi_binned_ceiling": math.log(s["mi_bins"]),
            **classifier_mi,
            "known_below_m_a": float(np.mean(valid.known <= valid.mass * (1 + 1e-6))),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "validation_loss": result.best_loss,
            "seconds": round(result.seconds, 2),
        }
        log.info(
            "event_variables %s: |Spearman(V, %s)| = %.3f, I(V) = %.3f, I(%s) = %.3f nats",
            toy, KNOWN[toy], numbers["spearman_with_known"], numbers["mi_binned_learned"],
            KNOWN[toy], numbers["mi_binned_known"],
        )  # fmt: skip
        results[toy] = {"v": v, "known": valid.known, "mass": valid.mass, "metrics": numbers}
    figures.event_variables_figure(results, b.path("event_variables.png"))
    b.finish(
        {
            "toys": {toy: r["metrics"] for toy, r in results.items()},
            "mass_range_gev": list(s["mass_range"]),
            "n_train": s["n_train"],
            "n_valid": s["n_valid"],
            "mi_units": "nats",
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
