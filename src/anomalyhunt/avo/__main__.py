"""Adversarial variational optimization of a black-box e+e- -> mu+ mu- simulator (``avo``).

``python -m anomalyhunt.avo --config results/<run>/config.yaml --out-dir results/<run>/avo``
(Snakemake target ``avo``): simulates the "observed" cos(A) at the paper's true point, fits a
Gaussian proposal over (E_beam, G_f) twice by AVO (without and with the entropy penalty), and
writes metrics.json, avo_path.png (the proposal's path over the exact likelihood) and avo_fit.png
(the fitted cos(A) against the observed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError

log = logging.getLogger("anomalyhunt.avo")

#: scale: paper replaces these settings: the paper's entropy penalty gamma = 5 (its Fig. 3),
#: batches of 64 and 5 critic updates per proposal update (the WGAN-GP recipe).
PAPER_SIZES = {"entropy_penalty": 5.0, "batch_size": 64, "critic_steps": 5}


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes swapped in for ``scale: paper``, checked."""
    from anomalyhunt.avo.toy import BOX

    s = {**block, **(PAPER_SIZES if block["scale"] == "paper" else {})}
    for key in ("true_point", "start_mean"):
        e, g = s[key]
        if not (BOX[0][0] <= e <= BOX[0][1] and BOX[1][0] <= g <= BOX[1][1]):
            raise AnomalyHuntError(
                f"avo.{key}: (E_beam, G_f) = ({e}, {g}) lies outside the paper's box "
                f"[{BOX[0][0]:g}, {BOX[0][1]:g}] GeV x [{BOX[1][0]:g}, {BOX[1][1]:g}]; "
                "choose a point inside it"
            )
    if s["batch_size"] > s["n_observed"]:
        raise AnomalyHuntError(
            f"avo.batch_size: {s['batch_size']} is more than the {s['n_observed']} observed "
            "events (avo.n_observed); lower it or observe more events"
        )
    return s


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("avo", argv, __doc__)
    s = settings(b.block)
    from anomalyhunt.avo import figures
    from anomalyhunt.avo.metrics import summarise
    from anomalyhunt.avo.model import fit_proposal
    from anomalyhunt.avo.toy import PAPER_TRUTH, fit_afb, forward_backward_asymmetry, simulate_numpy

    true_e, true_g = s["true_point"]
    n = int(s["n_observed"])
    rng = np.random.default_rng(b.seed("observed"))
    observed = simulate_numpy(np.full(n, true_e), np.full(n, true_g), rng).astype(np.float32)
    true_afb = float(forward_backward_asymmetry(true_e, true_g))
    afb_fit, afb_err = fit_afb(observed)
    log.info(
        "avo: %d observed events, true A_FB %.4f, fitted %.4f +- %.4f",
        n,
        true_afb,
        afb_fit,
        afb_err,
    )
    start_rng = np.random.default_rng(b.seed("start"))
    theta = start_rng.normal(s["start_mean"], s["start_width"], size=(n, 2))
    start_sim = simulate_numpy(theta[:, 0], theta[:, 1], start_rng)
    runs, paths, sims, ks_p = {}, {}, {}, {}
    for name, gamma in (("no_entropy", 0.0), ("entropy", float(s["entropy_penalty"]))):
        label = f"gamma={gamma:g}"
        fit = fit_proposal(
            observed,
            entropy_penalty=gamma,
            start_mean=s["start_mean"],
            start_width=s["start_width"],
            critic_hidden=s["critic_hidden"],
            critic_steps=s["critic_steps"],
            critic_warmup_epochs=s["critic_warmup_epochs"],
            gradient_penalty_weight=s["gradient_penalty"],
            events_per_theta=s["events_per_theta"],
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            learning_rate=s["learning_rate"],
            critic_learning_rate=s["critic_learning_rate"],
            patience=s["patience"],
            seed=b.seed("train", name),
            device=b.device,
            label=f"avo {label}",
        )
        numbers, sim = summarise(
            fit,
            observed,
            afb_fit=afb_fit,
            afb_fit_error=afb_err,
            n_simulated=s["n_simulated"],
            seed=b.seed("final", name),
        )
        runs[name] = {"entropy_penalty": gamma, **numbers}
        paths[label], sims[label], ks_p[label] = fit.path, sim, numbers["ks_p_value"]
        log.info(
            "avo %s: KS p %.3f, A_FB %.4f, critic value %.4f -> %.4f",
            label,
            numbers["ks_p_value"],
            numbers["afb_of_proposal"],
            numbers["critic_value_first_epoch"],
            numbers["critic_value_final"],
        )
    figures.path_figure(observed, paths, (true_e, true_g), b.path("avo_path.png"))
    figures.fit_figure(observed, sims, ks_p, start_sim, true_afb, b.path("avo_fit.png"))
    b.finish(
        {
            "observed": {
                "n_events": n,
                "true_beam_energy_gev": float(true_e),
                "true_fermi_scale": float(true_g),
                "true_afb": true_afb,
                "afb_fit": afb_fit,
                "afb_fit_error": afb_err,
                "start_afb": float(forward_backward_asymmetry(*s["start_mean"])),
            },
            "runs": runs,
            "paper_fig3": {
                "true_beam_energy_gev": PAPER_TRUTH[0],
                "true_fermi_scale": PAPER_TRUTH[1],
                "entropy_penalty": PAPER_SIZES["entropy_penalty"],
            },
            "effective_settings": {k: s[k] for k in PAPER_SIZES},
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
