"""Weighted events made unweighted: ``python -m anomalyhunt.weighted_gan`` (target weighted_gan).

For the 1-D (dimuon mass) and the 2-D (mass, cos theta*) toy: draw n_events weighted events
flat, unweight them by hit-or-miss, train the uwGAN on the same events (arXiv:2012.07873), and
compare both with the exact truth. Writes distributions.png, weights.png and metrics.json.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.weighted_gan import figures
from anomalyhunt.weighted_gan.figures import ToyRun
from anomalyhunt.weighted_gan.metrics import evaluate
from anomalyhunt.weighted_gan.model import UnweightingGan, train_unweighting_gan
from anomalyhunt.weighted_gan.toy import DrellYanToy, WeightedSample, hit_or_miss

log = logging.getLogger("anomalyhunt.weighted_gan")

#: ``scale: paper``: GPU sizes standing in for the paper's (not checked against it: 10x the events).
PAPER_SIZES = {
    "n_events": 1_000_000,
    "n_generate": 1_000_000,
    "epochs": 100,
    "fine_tune_epochs": 100,
    "patience": 30,
    "batch_size": 4096,
    "fine_tune_batch_size": 16384,
    "hidden": [256, 256, 256],
}
#: The toys: name -> dimensions.
TOYS = {"mass": 1, "mass_costheta": 2}
#: Fewest hit-or-miss events worth comparing with.
MIN_KEPT = 20


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes when ``scale`` is paper; checks what the schema cannot."""
    cfg = {**block, **(PAPER_SIZES if block["scale"] == "paper" else {})}
    if cfg["mass_max"] <= cfg["mass_min"]:
        raise AnomalyHuntError(
            f"weighted_gan.mass_max: {cfg['mass_max']} GeV is not above mass_min "
            f"({cfg['mass_min']} GeV); the mass window must be a range"
        )
    if not cfg["mass_min"] < cfg["tail_min"] < cfg["mass_max"]:
        raise AnomalyHuntError(
            f"weighted_gan.tail_min: {cfg['tail_min']} GeV is outside the mass window "
            f"[{cfg['mass_min']}, {cfg['mass_max']}] GeV; choose a mass inside it"
        )
    return cfg


def check_sample(sample: WeightedSample, kept: np.ndarray, name: str) -> None:
    """Stop with one line when the weighted sample is empty or too small to unweight."""
    total = float(sample.w.sum())
    if not np.isfinite(total) or total <= 0:
        raise AnomalyHuntError(
            f"weighted_gan.n_events: the {len(sample)} weighted events of the {name} toy have "
            f"no positive weight (sum {total}); widen the mass window or raise n_events"
        )
    if len(kept) < MIN_KEPT:
        raise AnomalyHuntError(
            f"weighted_gan.n_events: hit-or-miss keeps only {len(kept)} of {len(sample)} "
            f"weighted events of the {name} toy (expected sum(w)/max(w) = "
            f"{total / sample.w.max():.1f}); at least {MIN_KEPT} are needed, raise n_events"
        )


def run_toy(b: branch.Branch, cfg: dict[str, Any], toy: DrellYanToy, name: str) -> ToyRun:
    """Weighted events, hit-or-miss, the trained uwGAN's events and the numbers of one toy."""
    dim = TOYS[name]
    sample = toy.sample(cfg["n_events"], dim, np.random.default_rng(b.seed("toy", name)))
    kept = hit_or_miss(sample, np.random.default_rng(b.seed("hit_or_miss", name)))
    check_sample(sample, kept, name)
    order = np.random.default_rng(b.seed("split", name)).permutation(len(sample))
    n_valid = max(1, int(round(cfg["validation_fraction"] * len(sample))))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    train = WeightedSample(sample.x[train_idx], sample.w[train_idx])
    valid = WeightedSample(sample.x[valid_idx], sample.w[valid_idx])
    if train.w.sum() <= 0 or valid.w.sum() <= 0:
        raise AnomalyHuntError(
            f"weighted_gan.n_events: the {name} toy's training or validation events carry no "
            f"weight ({len(train)} / {len(valid)} events); raise n_events"
        )
    net = UnweightingGan(
        dim,
        mass_window=(toy.mass_min, toy.mass_max),
        latent_dim=cfg["latent_dim"],
        hidden=cfg["hidden"],
        seed=b.seed("init", name),
    )
    stages = train_unweighting_gan(
        net,
        train,
        valid,
        weighted=True,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        learning_rate=cfg["learning_rate"],
        fine_tune_epochs=cfg["fine_tune_epochs"],
        fine_tune_batch_size=cfg["fine_tune_batch_size"],
        fine_tune_learning_rate=cfg["fine_tune_learning_rate"],
        patience=cfg["patience"],
        critic_steps=cfg["critic_steps"],
        monitor_events=cfg["monitor_events"],
        monitor_bins=cfg["monitor_bins"],
        seed=b.seed("train", name),
        device=b.device,
        label=f"weighted_gan {name}",
        checkpoint=b.path(f"{name}.ckpt"),
    )
    generated, rejected = net.generate_inside(
        cfg["n_generate"], seed=b.seed("generate", name), device=b.device, inside=toy.inside
    )
    edges = [toy.mass_quantiles(np.linspace(0.0, 1.0, cfg["mass_bins"] + 1))]
    edges[0][[0, -1]] = toy.mass_min, toy.mass_max
    if dim == 2:
        edges.append(np.linspace(-1.0, 1.0, cfg["cos_bins"] + 1))
    metrics = evaluate(
        toy, sample, kept, generated, edges=edges, tail_min=cfg["tail_min"], rejected=rejected
    )
    metrics["training"] = [
        {
            "stage": stage,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "best_validation_chi2_per_bin": result.best_loss,
            "stopped": result.stopped,
            "seconds": round(result.seconds, 1),
        }
        for stage, result in zip(("first", "fine_tune"), stages, strict=False)
    ]
    log.info(
        "%s: hit-or-miss kept %d of %d (chi2/bin %.2f); uwGAN chi2/bin %.2f at that size, "
        "worth %.0f events",
        name,
        len(kept),
        len(sample),
        metrics["hit_or_miss"]["chi2_per_bin"],
        metrics["uwgan"]["chi2_per_bin_at_hit_or_miss_size"],
        metrics["uwgan"]["equivalent_events"],
    )
    probs = toy.bin_probabilities(*edges)
    return ToyRun(name, sample, kept, generated, edges, probs, metrics)


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("weighted_gan", argv, __doc__)
    cfg = settings(b.block)
    toy = DrellYanToy(
        mass_min=cfg["mass_min"],
        mass_max=cfg["mass_max"],
        z_fraction=cfg["z_fraction"],
        continuum_power=cfg["continuum_power"],
    )
    runs = {name: run_toy(b, cfg, toy, name) for name in TOYS}
    figures.distributions(
        toy,
        runs["mass"],
        runs["mass_costheta"],
        tail_min=cfg["tail_min"],
        path=b.path("distributions.png"),
    )
    figures.weights(list(runs.values()), b.path("weights.png"))
    b.finish(
        {
            "paper": "arXiv:2012.07873",
            "toy": {
                "mass_window_gev": [toy.mass_min, toy.mass_max],
                "z_fraction": toy.z_fraction,
                "continuum_power": toy.continuum_power,
            },
            "scale": cfg["scale"],
            **{name: run.metrics for name, run in runs.items()},
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
