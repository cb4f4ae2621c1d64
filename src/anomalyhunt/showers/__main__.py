"""BIB-AE photon showers with the post-processor: ``python -m anomalyhunt.showers``.

Snakemake target ``showers`` (arXiv:2005.05334). Simulates toy photon showers in a
high-granularity silicon-tungsten calorimeter (incident energies uniform in
energy_min-energy_max), trains the BIB-AE and then its post-processor on them, generates as many
showers as the test set and compares them with the toy: visible energy, its mean and resolution at
energy_points, hits above threshold, longitudinal and radial profiles and the cell-energy
spectrum, each with its Wasserstein distance, for the BIB-AE alone and with the post-processor;
and the time per shower of the toy simulator and of the generator. Writes
``results/<run>/showers/metrics.json``, ``cell_energy.png`` and ``profiles.png``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.showers import figures, metrics, toy
from anomalyhunt.showers.model import generate
from anomalyhunt.showers.train import train_bibae, train_postprocessor

log = logging.getLogger("anomalyhunt.showers")

#: ``scale: paper``: the paper's grid and latent size; networks and statistics for a GPU.
PAPER_SIZES = {
    "cells_xy": 30,
    "layers": 30,
    "latent": 512,
    "hidden": [1024, 512],
    "critic_hidden": [256, 256],
    "pp_hidden": [64, 64],
    "n_train": 50000,
    "n_test": 10000,
    "n_per_point": 2000,
    "epochs": 200,
    "pp_epochs": 50,
}
#: Showers generated one at a time to time the generator at batch size 1.
SINGLE_SHOWERS = 50


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block's settings, with the paper's sizes when ``scale`` is ``paper``."""
    return {**block, **PAPER_SIZES} if block["scale"] == "paper" else dict(block)


def check_points(points: Sequence[float], energy_min: float, energy_max: float) -> None:
    """Refuse evaluation energies outside the trained range (the model never saw them)."""
    outside = [p for p in points if not energy_min <= p <= energy_max]
    if outside:
        raise AnomalyHuntError(
            f"showers.energy_points: {outside} GeV lie outside the training range"
            f" {energy_min:g}-{energy_max:g} GeV (energy_min, energy_max); the model is only"
            " trained inside it"
        )


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("showers", argv, __doc__)
    s = settings(b.block)
    calo = toy.Calorimeter(
        cells_xy=s["cells_xy"], layers=s["layers"], threshold_mip=s["threshold_mip"]
    )
    e_lo, e_hi = float(s["energy_min"]), float(s["energy_max"])
    toy.check_geometry(calo, e_lo, e_hi)
    check_points(s["energy_points"], e_lo, e_hi)

    def showers(n: int, label: str, energy: float | None = None):
        rng = np.random.default_rng(b.seed("toy", label))
        e = np.full(n, energy) if energy else toy.incident_energies(n, e_lo, e_hi, rng)
        return toy.simulate(calo, e, rng), e

    train = showers(s["n_train"], "train")
    valid = showers(max(s["n_train"] // 5, 10), "valid")
    # the post-processor learns on showers the BIB-AE never saw (train_postprocessor says why)
    post = showers(s["n_train"], "post")
    log.info("showers: %d training showers on %s cells", len(train[0]), calo.shape)
    common = {
        "energy_max": e_hi,
        "batch_size": s["batch_size"],
        "learning_rate": s["learning_rate"],
        "patience": s["patience"],
        "device": b.device,
    }
    net, fit = train_bibae(
        calo,
        train,
        valid,
        latent=s["latent"],
        hidden=s["hidden"],
        critic_hidden=s["critic_hidden"],
        kl_weight=s["kl_weight"],
        mmd_weight=s["mmd_weight"],
        critic_weight=s["critic_weight"],
        epochs=s["epochs"],
        init_seed=b.seed("init", "bibae"),
        seed=b.seed("train", "bibae"),
        checkpoint=b.path("bibae.ckpt"),
        **common,
    )
    pp, pp_fit = train_postprocessor(
        net,
        calo,
        post,
        valid,
        hidden=s["pp_hidden"],
        cells=s["pp_cells"],
        mmd_weight=s["pp_mmd_weight"],
        epochs=s["pp_epochs"],
        init_seed=b.seed("init", "post"),
        seed=b.seed("train", "post"),
        checkpoint=b.path("post.ckpt"),
        **common,
    )

    rng = np.random.default_rng(b.seed("toy", "test"))
    e_test = toy.incident_energies(s["n_test"], e_lo, e_hi, rng)
    t0 = time.perf_counter()
    x_test = toy.simulate(calo, e_test, rng)
    t_toy = 1e3 * (time.perf_counter() - t0) / len(e_test)

    def model(energy: np.ndarray, label: str, with_pp: bool = True) -> np.ndarray:
        seed = b.seed("generate", label, with_pp)
        return generate(
            net, calo, energy, e_hi, seed=seed, device=b.device, post=pp if with_pp else None
        )

    samples = {"toy": x_test, "bibae": model(e_test, "test", False)}
    t0 = time.perf_counter()
    samples["bibae_pp"] = model(e_test, "test")
    t_gen = 1e3 * (time.perf_counter() - t0) / len(e_test)
    t0 = time.perf_counter()
    for i in range(SINGLE_SHOWERS):
        model(e_test[i : i + 1], f"single{i}")
    t_one = 1e3 * (time.perf_counter() - t0) / SINGLE_SHOWERS

    points = []
    point_samples = []
    for energy in s["energy_points"]:
        x_point = showers(s["n_per_point"], f"point{energy}", float(energy))[0]
        e_point = np.full(s["n_per_point"], float(energy))
        gen = {
            "toy": x_point,
            "bibae": model(e_point, f"point{energy}", False),
            "bibae_pp": model(e_point, f"point{energy}"),
        }
        responses = {k: metrics.response(v) for k, v in gen.items()}
        points.append({"energy_gev": float(energy), **responses})
        point_samples.append((float(energy), gen))

    results = {k: metrics.summary(v, calo) for k, v in samples.items()}
    for key in ("bibae", "bibae_pp"):
        results[key] |= metrics.compare(x_test, samples[key], calo)
    figures.cell_energy(samples, calo, b.path("cell_energy.png"), results)
    figures.profiles(samples, point_samples, calo, b.path("profiles.png"))

    b.finish(
        {
            "paper": "arXiv:2005.05334",
            "geometry": {
                "cells_xy": calo.cells_xy,
                "layers": calo.layers,
                "n_cells": calo.n_cells,
                "depth_x0": calo.depth_x0,
                "cell_size_moliere": toy.CELL_RM,
                "threshold_mip": calo.threshold_mip,
                "mip_mev": toy.MIP_MEV,
                "sampling_fraction": toy.SAMPLING_FRACTION,
            },
            "n_train": len(train[0]),
            "n_test": len(e_test),
            **results,
            "cell_energy_w_ratio_pp": _ratio(results, "w_cell_energy_log10"),
            "n_hits_w_ratio_pp": _ratio(results, "w_n_hits"),
            "energy_points": points,
            "time_ms_per_shower": {
                "toy_simulator_cpu": t_toy,
                "bibae_pp_batched": t_gen,
                "bibae_pp_batch1": t_one,
                "device": b.device,
            },
            # below 1: the toy is itself a fast parametric simulation, not Geant4
            "speedup_vs_toy_batched": t_toy / t_gen if t_gen > 0 else None,
            "training": {"bibae": _record(fit), "post_processor": _record(pp_fit)},
            "paper_setup": {
                "source": "arXiv:2005.05334, section 2 (ILD ECAL photon showers)",
                "grid": [30, 30, 30],
                "incident_energy_gev": [10, 100],
                "threshold_mip": 0.5,
            },
        }
    )


def _ratio(results: dict[str, dict[str, float]], key: str) -> float | None:
    """How many times smaller the post-processed distance is than the BIB-AE's alone."""
    after = results["bibae_pp"][key]
    return results["bibae"][key] / after if after > 0 else None


def _record(fit: Any) -> dict[str, Any]:
    return {
        "best_epoch": fit.best_epoch,
        "epochs_run": len(fit.history),
        "stopped": fit.stopped,
        "best_monitor": fit.best_loss,
        "seconds": round(fit.seconds, 1),
    }


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
