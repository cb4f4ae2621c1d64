"""Event GAN with an MMD term: ``python -m anomalyhunt.gan_events`` (target ``gan_events``).

Generates parton-level t tbar -> 6 quark events, trains the same GAN twice on their 18 momenta,
once plain and once with the MMD of the W and top masses added to the generator's loss
(arXiv:1907.03764), and compares both with an independent truth sample: per-bin GAN/truth
ratios of the top and W kinematics, and the widths of the reconstructed mass peaks. Writes
metrics.json, top_mass.png and ratios.png to the output folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.gan_events import figures, metrics, model, toy

log = logging.getLogger("anomalyhunt.gan_events")

#: ``scale: paper``: the sizes of arXiv:1907.03764, Sec. 3 (a GPU's work, not a laptop's).
PAPER = {
    "n_train": 1_000_000,
    "hidden": [512] * 10,
    "batch_size": 1024,
    "mmd_events": 1024,
    "epochs": 1000,
    "patience": 1000,
}
#: With the MMD the peak widths must come within this of the truth's (the branch's claim).
WIDTH_TOLERANCE = 0.2
#: The largest Breit-Wigner cutoff that keeps every top heavier than its W plus its b.
MAX_CUTOFF = (toy.M_TOP - toy.M_W - toy.M_B) / (toy.GAMMA_TOP + toy.GAMMA_W)


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes when ``scale`` is "paper", checked for consistency."""
    s = {**block, **PAPER} if block["scale"] == "paper" else dict(block)
    if s["bw_cutoff"] >= MAX_CUTOFF:
        raise AnomalyHuntError(
            f"gan_events.bw_cutoff: {s['bw_cutoff']} widths lets a top be lighter than its W "
            f"plus b quark; use less than {MAX_CUTOFF:.1f} (MadGraph's default is 15)"
        )
    if s["batch_size"] > s["n_train"]:
        raise AnomalyHuntError(
            f"gan_events.batch_size: {s['batch_size']} is more than the {s['n_train']} training "
            "events (gan_events.n_train); lower it or generate more"
        )
    if s["mmd_events"] > s["batch_size"]:
        raise AnomalyHuntError(
            f"gan_events.mmd_events: {s['mmd_events']} is more than a batch "
            f"(gan_events.batch_size = {s['batch_size']}); the MMD compares part of each batch"
        )
    return s


def train_settings(s: dict[str, Any], mmd_weight: float) -> model.GanSettings:
    """The training settings of one of the two GANs (they differ in the MMD weight only)."""
    return model.GanSettings(
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        learning_rate=s["learning_rate"],
        patience=s["patience"],
        kind=s["kind"],
        critic_steps=s["critic_steps"],
        critic_penalty=s["critic_penalty"],
        mmd_weight=mmd_weight,
        mmd_kernel=s["mmd_kernel"],
        mmd_widths=s["mmd_widths"],
        mmd_events=s["mmd_events"],
        monitor_events=s["monitor_events"],
    )


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("gan_events", argv, __doc__)
    s = settings(b.block)
    rng = np.random.default_rng(b.seed("toy"))
    cutoff = s["bw_cutoff"]
    train = toy.generate(rng, s["n_train"], cutoff=cutoff).momenta()
    valid = toy.generate(rng, s["monitor_events"], cutoff=cutoff).momenta().astype(np.float64)
    test = toy.generate(rng, s["n_test"], cutoff=cutoff).momenta().astype(np.float64)
    floor = toy.generate(rng, s["n_test"], cutoff=cutoff).momenta().astype(np.float64)
    log.info("gan_events: %d training, %d test events", len(train), len(test))

    truth = metrics.observables(test)
    edges = metrics.bin_edges(truth)
    samples = {"truth": truth}
    results: dict[str, Any] = {}
    for name, weight in (("gan", 0.0), ("gan_mmd", s["mmd_weight"])):
        # the same initial weights, batches and noise: the two differ by the MMD term alone
        net = model.build(s["latent_dim"], s["hidden"], b.seed("init"))
        fit = model.train_gan(
            net,
            train,
            valid,
            train_settings(s, weight),
            seed=b.seed("train"),
            device=b.device,
            label=f"gan_events {name}",
            checkpoint=b.path(f"{name}.ckpt"),
        )
        gen = model.generate(net, s["n_test"], b.seed("sample", name), b.device)
        samples[name] = metrics.observables(gen)
        results[name] = {
            **metrics.compare(samples[name], truth, edges),
            "mmd_weight": weight,
            "training": {
                "epochs_run": len(fit.history),
                "best_epoch": fit.best_epoch,
                "monitor_distance_natural_units": fit.best_loss,
                "stopped": fit.stopped,
                "seconds": round(fit.seconds, 1),
            },
        }
        results[name]["widths_within_20_percent"] = metrics.width_within(
            results[name], WIDTH_TOLERANCE
        )
        log.info(
            "gan_events %s: m_t width %.2f GeV, m_W width %.2f GeV, mean |ratio-1| %.3f",
            name,
            results[name]["m_t"]["width_iqr_gev"],
            results[name]["m_W"]["width_iqr_gev"],
            results[name]["mean_abs_ratio_minus_1_all"],
        )

    floor_result = metrics.compare(metrics.observables(floor), truth, edges)
    truth_peaks = {obj: metrics.peak(truth[f"m_{obj}"]) for obj in ("t", "W")}
    figures.top_mass(
        {k: v["m_t"] for k, v in samples.items()},
        {
            "truth": truth_peaks["t"]["width_iqr_gev"],
            **{k: results[k]["m_t"]["width_iqr_gev"] for k in ("gan", "gan_mmd")},
        },
        b.path("top_mass.png"),
    )
    figures.ratios(samples, edges, b.path("ratios.png"))
    b.finish(
        {
            "reference": "arXiv:1907.03764 (Butter, Plehn, Winterhalder, How to GAN LHC events)",
            "n_train": len(train),
            "n_test": len(test),
            "truth": {
                "m_t": {
                    **truth_peaks["t"],
                    "breit_wigner_iqr_gev": toy.breit_wigner_iqr(toy.GAMMA_TOP, cutoff),
                },
                "m_W": {
                    **truth_peaks["W"],
                    "breit_wigner_iqr_gev": toy.breit_wigner_iqr(toy.GAMMA_W, cutoff),
                },
            },
            **results,
            "statistical_floor": floor_result,
            "bin_edges": {name: [float(e) for e in edges[name]] for name in edges},
            "width_tolerance": WIDTH_TOLERANCE,
            "paper": {
                "note": "the paper shows its results as figures (GAN/truth ratio panels and "
                "mass peaks), not tables; its truth widths, used here too, are:",
                "gamma_t_gev": toy.GAMMA_TOP,
                "gamma_w_gev": toy.GAMMA_W,
                "m_t_gev": toy.M_TOP,
                "m_w_gev": toy.M_W,
            },
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
