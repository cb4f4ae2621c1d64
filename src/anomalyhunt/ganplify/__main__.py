"""GANplifying (arXiv:2008.06545): how many true events a GAN trained on N events is worth.

``python -m anomalyhunt.ganplify --config results/<run>/config.yaml --out-dir
results/<run>/ganplify`` (Snakemake target ``ganplify``). For the camel, ring and shell toys and
each training size N it trains a GAN on N true events, measures the quantile MSE of its generated
events against the number generated, and compares it with the training sample and a fit of the
right functional form; writes metrics.json, amplification.png, quantile_mse.png, densities.png.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.ganplify import experiment, figures
from anomalyhunt.ganplify import metrics as m
from anomalyhunt.ganplify.fit import fit_cell_probabilities
from anomalyhunt.ganplify.toy import make_toy

log = logging.getLogger("anomalyhunt.ganplify")

#: ``scale: paper``: these replace the block's values (the schema's description says which).
PAPER_SIZES: dict[str, Any] = {
    "n_train": [100, 1000],
    "replicas": 10,
    "pool": 200000,
    "n_generated": [100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000, 10000000],
    "hidden": [128, 128, 128],
    "epochs": 400,
    "patience": 100,
}

#: The block's keys that set the GAN (build and training), passed on as they are.
GAN_KEYS = (
    "latent_dim",
    "hidden",
    "epochs",
    "batches_per_epoch",
    "batch_size",
    "learning_rate",
    "patience",
    "average_decay",
    "mmd_weight",
    "holdout",
)

#: What the paper says, for the reader of metrics.json. Recalled, not checked against the paper's
#: text here, so no number of the paper is quoted.
PAPER_NOTE = (
    "arXiv:2008.06545 (Butter, Diefenbacher, Kasieczka, Nachman, Plehn; SciPost Phys. 10, 139), "
    "as recalled: a GAN trained on 100 camel events and sampled many times beats the training "
    "sample's quantile MSE by an amplification factor of a few, the gain grows with the number "
    "of quantiles and persists for the ring and the multi-dimensional shell, and a fit of the "
    "right functional form amplifies more. The paper's exact values are not transcribed here."
)


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes when ``scale`` is paper, checked across keys."""
    s = {**block, **PAPER_SIZES} if block["scale"] == "paper" else dict(block)
    largest = max(s["n_train"])
    if largest * s["replicas"] > s["pool"]:
        raise AnomalyHuntError(
            f"ganplify.n_train: {s['replicas']} replica(s) of N = {largest} need "
            f"{largest * s['replicas']} true events but ganplify.pool is {s['pool']}; "
            "raise pool or lower n_train / replicas"
        )
    if max(s["n_generated"]) < max(s["n_train"]):
        raise AnomalyHuntError(
            f"ganplify.n_generated: the largest ({max(s['n_generated'])}) must reach at least "
            f"the largest N ({largest}), or no amplification can be measured"
        )
    return s


def run_toy(b: branch.Branch, s: dict[str, Any], name: str) -> dict[str, Any]:
    """Every N and replica of one toy: its summaries, its true-sample curve and a figure panel."""
    toy = make_toy(
        name,
        quantiles=s["quantiles"],
        radial_quantiles=s["radial_quantiles"],
        sectors=s["sectors"],
        shell_dim=s["shell_dim"],
    )
    pool = toy.sample(s["pool"], np.random.default_rng(b.seed(name, "pool")))
    sizes = sorted({*s["n_train"], *s["n_generated"]})
    curve = m.sample_mse_curve(toy.cells(pool), toy.n_cells, sizes, max_samples=200)
    out: dict[str, Any] = {
        "rows": [],
        "truth_curve": {n: mse for n, (mse, _) in curve.items()},
        # measured / expected MSE of true samples, where at least 10 of them average
        "law": {
            str(n): mse / m.expected_sample_mse(toy.n_cells, n)
            for n, (mse, k) in curve.items()
            if k >= 10
        },
    }
    gan = {key: s[key] for key in GAN_KEYS}
    for n in s["n_train"]:
        replicas = []
        for r in range(s["replicas"]):
            x = pool[r * n : (r + 1) * n]
            replica, events = experiment.run_replica(
                toy,
                x,
                n_generated=s["n_generated"],
                gan=gan,
                seed=partial(b.seed, name, n, r),
                device=b.device,
                label=f"ganplify {name} N={n} #{r}",
                checkpoint=b.path(f"{name}_n{n}_r{r}.ckpt"),
            )
            replicas.append(replica)
            if r == 0 and n == min(s["n_train"]):
                fit = fit_cell_probabilities(toy, x)[0]
                out["panel"] = {"toy": toy, "train": x, "gan": events, "fit": fit}
        out["rows"].append(experiment.summarise(toy, n, replicas))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("ganplify", argv, __doc__)
    s = settings(b.block)
    toys = {name: run_toy(b, s, name) for name in s["toys"]}
    rows = [row for t in toys.values() for row in t["rows"]]
    figures.amplification(rows, b.path("amplification.png"))
    figures.quantile_mse(
        rows, {k: t["truth_curve"] for k, t in toys.items()}, b.path("quantile_mse.png")
    )
    figures.densities([t["panel"] for t in toys.values()], b.path("densities.png"))
    b.finish(
        {
            "amplification": {
                f"{r['toy']}_N{r['n_train']}": {
                    "gan": r["amplification_gan"],
                    "fit": r["amplification_fit"],
                    "n_equivalent_gan": r["n_equivalent_gan"],
                    "dimension": r["dimension"],
                    "n_cells": r["n_cells"],
                }
                for r in rows
            },
            "results": rows,
            "true_sample_mse_over_law": {k: t["law"] for k, t in toys.items()},
            "paper": {"reference": "arXiv:2008.06545", "note": PAPER_NOTE},
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
