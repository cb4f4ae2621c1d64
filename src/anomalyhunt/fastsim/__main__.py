"""Branch `fastsim`: a Z -> mu mu detector simulated by four conditional densities q(x | theta).

python -m anomalyhunt.fastsim --config results/<run>/config.yaml --out-dir results/<run>/fastsim

Generates the toy (training, validation and test muons and the detector's answer), trains the
conditional GAN, the WGAN-GP, the conditional flow and the mixture density network, compares each
with the true detector for the same test muons and writes marginals.png, resolution.png,
distances.png and metrics.json.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.fastsim import figures, fit, metrics, toy
from anomalyhunt.fastsim.simulator import EfficiencyMap, FastSim, ThetaRange

log = logging.getLogger("anomalyhunt.fastsim")

#: ``scale: paper``: the WGAN-GP paper's networks and optimiser (arXiv:1704.00028: 3 x 512 ReLU
#: layers, Adam 1e-4, batch 64) on a sample large enough for percent-level precision per pT bin
#: (the Z -> mu mu toy is ours, so no paper fixes the sample size). For a GPU.
PAPER = {
    "n_events": 500000,
    "n_test_events": 100000,
    "hidden": [512, 512, 512],
    "flow_hidden": 128,
    "components": 10,
    "epochs": 200,
    "gan_epochs": 200,
    "batch_size": 64,
    "gan_learning_rate": 1e-4,
    "critic_learning_rate": 1e-4,
    "patience": 20,
    "monitor_events": 20000,
}
#: The WGAN-GP paper's settings (arXiv:1704.00028, Algorithm 1), beside the ones used here.
PAPER_WGAN_GP = {"gradient_penalty": 10.0, "critic_steps": 5, "adam_learning_rate": 1e-4}
#: Generator-level pT bins: quantiles of the training muons (the Jacobian peak crowds 35-45 GeV),
#: the last bin the top 5%, so every bin holds over a thousand muons at the default size.
PT_QUANTILES = (0.2, 0.4, 0.6, 0.8, 0.95)
N_PROBE_BINS = 3
ETA_EDGES = (0.0, 0.2, 0.5, 1.0, 1.3, 1.7, 2.1)


def settings_of(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes in place when ``scale`` is ``paper``; checks the rest."""
    s = {**block, **PAPER} if block["scale"] == "paper" else dict(block)
    if s["pt_min"] >= s["pt_max"]:
        raise AnomalyHuntError(
            f"fastsim.pt_min: {s['pt_min']} GeV must be below fastsim.pt_max ({s['pt_max']} GeV)"
        )
    return s


def make_toy(s: dict[str, Any], b: branch.Branch) -> dict[str, Any]:
    """Training, validation and test muons with the true detector's answer."""
    rng = np.random.default_rng(b.seed("toy"))
    det = toy.Detector(
        tail_fraction=s["tail_fraction"], tail_scale=s["tail_scale"], charge_bias=s["charge_bias"]
    )
    cuts = {"pt_min": s["pt_min"], "pt_max": s["pt_max"], "eta_max": s["eta_max"]}
    theta = toy.muons(s["n_events"], rng, **cuts)
    x, seen = det.simulate(theta, rng)
    n_seen = int(seen.sum())
    n_valid = int(round(s["valid_fraction"] * n_seen))
    if n_seen - n_valid < 500 or n_valid < 100:
        raise AnomalyHuntError(
            f"fastsim.n_events: {s['n_events']} Z decays give only {n_seen} reconstructed muons "
            f"in pT {s['pt_min']}-{s['pt_max']} GeV, |eta| <= {s['eta_max']}; raise n_events "
            "or widen the range (at least 500 training and 100 validation muons)"
        )
    rt, rx = theta[seen], toy.residuals(theta[seen], x[seen])
    test_rng = np.random.default_rng(b.seed("test"))
    theta_test = toy.muons(s["n_test_events"], test_rng, **cuts)
    x_test, seen_test = det.simulate(theta_test, test_rng)
    if seen_test.sum() < 100:
        raise AnomalyHuntError(
            f"fastsim.n_test_events: {s['n_test_events']} Z decays give only "
            f"{int(seen_test.sum())} reconstructed test muons; raise it"
        )
    eta_edges = np.array([e for e in ETA_EDGES if e < s["eta_max"]] + [s["eta_max"]])
    inner = np.round(2 * np.quantile(theta[:, 0], PT_QUANTILES)) / 2
    inner = inner[(inner > s["pt_min"]) & (inner < s["pt_max"])]
    pt_edges = np.unique(np.concatenate([[s["pt_min"]], inner, [s["pt_max"]]]))
    return {
        "detector": det,
        "data": (rt[n_valid:], rx[n_valid:], rt[:n_valid], rx[:n_valid]),
        "efficiency": EfficiencyMap.fit(theta, seen, pt_edges, eta_edges),
        "theta_all_test": theta_test,
        "seen_test": seen_test,
        "theta_test": theta_test[seen_test],
        "x_test": x_test[seen_test],
        "pt_edges": pt_edges,
    }


def probe_check(
    sims: dict[str, FastSim], det: toy.Detector, s: dict[str, Any], b: branch.Branch
) -> dict[str, Any]:
    """Muons beyond the trained pT maximum through each simulation's guard: counted, never silent."""
    rng = np.random.default_rng(b.seed("probe"))
    n, hi = s["probe_muons"], s["pt_max"]
    theta = np.column_stack(
        [
            rng.uniform(hi, 1.5 * hi, n),
            rng.uniform(-s["eta_max"], s["eta_max"], n),
            rng.uniform(-np.pi, np.pi, n),
            rng.choice([-1.0, 1.0], n),
        ]
    )
    edges = np.linspace(hi, 1.5 * hi, N_PROBE_BINS + 1)
    out: dict[str, Any] = {"policy": s["out_of_range"], "probe_muons": n}
    out["pt_edges_gev"] = edges.tolist()
    x_true = toy.from_residuals(theta, det.response(theta, rng))
    out["truth_core"] = metrics.resolution(theta, x_true, edges)["core"]
    out["model_core"], out["handled"] = {}, {}
    for kind, sim in sims.items():
        try:
            sample = sim.sample(theta, seed=b.seed("probe", kind), out_of_range=s["out_of_range"])
        except AnomalyHuntError as exc:
            log.info("fastsim %s: out-of-range probe refused: %s", kind, exc)
            out["handled"][kind] = {"refused": n, "clipped": 0}
            continue
        out["handled"][kind] = {"refused": 0, "clipped": sample.clipped}
        out["model_core"][kind] = metrics.resolution(theta, sample.x, edges)["core"]
    if not out["model_core"]:
        out["truth_core"] = []
    return out


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("fastsim", argv, __doc__)
    s = settings_of(b.block)
    settings = fit.Settings(**{f.name: s[f.name] for f in fields(fit.Settings)})
    t = make_toy(s, b)
    det, edges = t["detector"], t["pt_edges"]
    theta_range = ThetaRange(s["pt_min"], s["pt_max"], s["eta_max"])
    theta_test, x_test = t["theta_test"], t["x_test"]
    r_test = toy.residuals(theta_test, x_test)
    floor_r = det.response(theta_test, np.random.default_rng(b.seed("floor")))
    floor = metrics.binned_distances(theta_test[:, 0], r_test, floor_r, edges)
    floor["correlation_frobenius"] = metrics.correlation_distance(r_test, floor_r)
    truth_res = metrics.resolution(theta_test, x_test, edges)
    speed_theta = t["theta_all_test"][: s["speed_muons"]]
    speed_rng = np.random.default_rng(b.seed("speed"))
    toy_us = metrics.microseconds_per_muon(lambda th: det.simulate(th, speed_rng), speed_theta)

    sims: dict[str, FastSim] = {}
    results: dict[str, Any] = {}
    generated: dict[str, np.ndarray] = {}
    resolutions: dict[str, Any] = {}
    for kind in s["models"]:
        log.info("fastsim: training %s", kind)
        sim, result = fit.train(
            kind,
            t["data"],
            settings=settings,
            theta_range=theta_range,
            efficiency=t["efficiency"],
            seed=b.seed("train", kind),
            device=b.device,
            checkpoint=b.path(f"{kind}.ckpt"),
        )
        sims[kind] = sim
        sample = sim.sample(theta_test, seed=b.seed("test", kind), out_of_range="refuse")
        generated[kind] = sample.response
        d = metrics.binned_distances(theta_test[:, 0], r_test, sample.response, edges)
        resolutions[kind] = res = metrics.resolution(theta_test, sample.x, edges)
        results[kind] = {
            "ks_mean": d["ks_mean"],
            "ks_max": d["ks_max"],
            "w1_over_sigma_mean": d["w1_over_sigma_mean"],
            "correlation_frobenius": metrics.correlation_distance(r_test, sample.response),
            "pt_resolution_deviation": metrics.resolution_deviation(res, truth_res),
            "test_nll_nats": fit.nll(sim, theta_test, r_test),
            "microseconds_per_muon": metrics.microseconds_per_muon(
                lambda th, sim=sim: sim.sample(th, seed=0, out_of_range="clip"), speed_theta
            ),
            "ks_by_pt_bin": d["ks_by_pt_bin"],
            "w1_over_sigma_by_feature": d["w1_over_sigma_by_feature"],
            "pt_resolution": res,
            "training": {
                "epochs": len(result.history),
                "best_epoch": result.best_epoch,
                "best_monitor": result.best_loss,
                "stopped": result.stopped,
                "seconds": round(result.seconds, 1),
            },
        }
        results[kind]["speedup_vs_toy_detector"] = toy_us / results[kind]["microseconds_per_muon"]
    probe = probe_check(sims, det, s, b)
    theta_all = t["theta_all_test"]
    eta_edges = t["efficiency"].eta_edges
    abs_eta = np.abs(theta_all[:, 1])
    eff = {
        "abs_eta_edges": eta_edges.tolist(),
        "truth_by_abs_eta": metrics.binned_mean(t["seen_test"], abs_eta, eta_edges),
        "map_by_abs_eta": metrics.binned_mean(t["efficiency"](theta_all), abs_eta, eta_edges),
        "truth_by_pt": metrics.binned_mean(t["seen_test"], theta_all[:, 0], edges),
        "map_by_pt": metrics.binned_mean(t["efficiency"](theta_all), theta_all[:, 0], edges),
    }
    eff["max_abs_difference"] = max(
        float(np.nanmax(np.abs(np.subtract(eff[f"map_by_{k}"], eff[f"truth_by_{k}"]))))
        for k in ("abs_eta", "pt")
    )

    figures.marginals(r_test, generated, b.path("marginals.png"))
    figures.resolution(edges, truth_res, resolutions, b.path("resolution.png"), probe=probe)
    figures.distances(edges, floor, results, b.path("distances.png"))
    n_train, n_valid = len(t["data"][0]), len(t["data"][2])
    b.finish(
        {
            "muons": {"train": n_train, "valid": n_valid, "test": len(theta_test)},
            "pt_bins_gev": edges.tolist(),
            "truth": {"pt_resolution": truth_res, "toy_detector_microseconds_per_muon": toy_us},
            "toy_vs_toy_floor": {
                "ks_mean": floor["ks_mean"],
                "ks_max": floor["ks_max"],
                "w1_over_sigma_mean": floor["w1_over_sigma_mean"],
                "correlation_frobenius": floor["correlation_frobenius"],
                "ks_by_pt_bin": floor["ks_by_pt_bin"],
            },
            "models": results,
            "efficiency": eff,
            "out_of_range": probe,
            "paper_arXiv_1704_00028": PAPER_WGAN_GP,
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
