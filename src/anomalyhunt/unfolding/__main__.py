"""Unfold a Z W -> l l j j toy three ways (FCGAN, cINN, OmniFold) and judge them on its truth.

Writes metrics.json (closure ratios, the phase-space slice, posterior calibration, the three
methods ranked on a "data" sample with a harder Z pT spectrum, OmniFold's Gaussian example) and
the figures ratios.png, slice.png, calibration.png, posterior.png, ranking.png and
omnifold_gauss.png.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.unfolding import figures, metrics, pipeline, toy
from anomalyhunt.unfolding.omnifold import omnifold, weighted_moments

log = logging.getLogger("anomalyhunt.unfolding")

#: ``scale: paper``: GPU sizes of the papers' order (documented in the schema's ``scale``).
PAPER = {
    "n_train": 300_000,
    "n_valid": 30_000,
    "n_test": 100_000,
    "n_data": 100_000,
    "posterior_samples": 500,
    "calibration_events": 10_000,
    "fcgan": {"epochs": 300, "patience": 30},
    "cinn": {"epochs": 300, "patience": 30},
    "omnifold": {"iterations": 5, "gauss_events": 500_000},
}
METHODS = ("fcgan", "cinn")
#: Fewest test events the phase-space slice must hold to be compared.
MIN_SLICE_EVENTS = 100


def settings(block: Mapping[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes applied when ``scale: paper``, and its values checked."""
    cfg = copy.deepcopy(dict(block))
    if cfg["scale"] == "paper":
        for key, value in PAPER.items():
            if isinstance(value, dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
    lo, hi = cfg["slice_jet_pt"]
    if not lo < hi:
        raise AnomalyHuntError(
            f"unfolding.slice_jet_pt: [{lo}, {hi}] is not a band; give [low, high] with low < high"
        )
    if hi <= cfg["detector"]["jet_pt_min"]:
        raise AnomalyHuntError(
            f"unfolding.slice_jet_pt: the band [{lo}, {hi}] GeV lies below the jet acceptance "
            f"cut (detector.jet_pt_min = {cfg['detector']['jet_pt_min']} GeV)"
        )
    cfg["calibration_events"] = min(cfg["calibration_events"], cfg["n_test"])
    return cfg


def _training(result: Any, monitor: str) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        monitor: result.best_loss,
        "seconds": round(result.seconds, 1),
        "history": [round(h["val_loss"], 4) for h in result.history],
    }


def _rounded(comparison: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
        for name, c in comparison.items()
    }


def gaussian_example(cfg: Mapping[str, Any], b: branch.Branch) -> dict[str, Any]:
    """OmniFold's Gaussian example: the unfolded mean and spread after every iteration."""
    rng = np.random.default_rng(b.seed("gauss"))
    n = cfg["omnifold"]["gauss_events"]
    sim_t, sim_d = toy.gaussian_pairs(
        rng, n, mean=toy.GAUSS_SIM[0], sd=toy.GAUSS_SIM[1], smearing=toy.GAUSS_SMEARING
    )
    data_t, data_d = toy.gaussian_pairs(
        rng, n, mean=toy.GAUSS_DATA[0], sd=toy.GAUSS_DATA[1], smearing=toy.GAUSS_SMEARING
    )
    res = omnifold(
        sim_t,
        sim_d,
        data_d,
        iterations=cfg["omnifold"]["iterations"],
        classifier=cfg["omnifold"]["classifier"],
        weight_clip=cfg["omnifold"]["weight_clip"],
        seed=b.seed("omnifold", "gauss"),
        device=b.device,
        threads=b.threads,
    )
    unfolded = [weighted_moments(sim_t, w) for w in res.pull]
    pushed = [weighted_moments(sim_d, w) for w in res.push]
    return {
        "sim_truth_mean": weighted_moments(sim_t)[0],
        "sim_truth_sd": weighted_moments(sim_t)[1],
        "data_truth_mean": weighted_moments(data_t)[0],
        "data_truth_sd": weighted_moments(data_t)[1],
        "data_detector_mean": weighted_moments(data_d)[0],
        "data_truth_mean_setup": toy.GAUSS_DATA[0],
        "data_truth_sd_setup": toy.GAUSS_DATA[1],
        "unfolded_mean": [m for m, _ in unfolded],
        "unfolded_sd": [s for _, s in unfolded],
        "reweighted_detector_mean": [m for m, _ in pushed],
        "samples": {
            "sim_truth": sim_t[:, 0],
            "sim_detector": sim_d[:, 0],
            "data_truth": data_t[:, 0],
            "data_detector": data_d[:, 0],
        },
        "weights": {"push": res.push, "pull": res.pull},
    }


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("unfolding", argv, __doc__)
    cfg = settings(b.block)
    n_train, n_valid, n_test = cfg["n_train"], cfg["n_valid"], cfg["n_test"]
    gen = {"isr_jet": cfg["isr_jet"], "detector": cfg["detector"]}
    sim = toy.zw_events(
        np.random.default_rng(b.seed("sim")),
        n_train + n_valid + n_test,
        zpt_mean=cfg["zpt_mean"],
        **gen,
    )
    data = toy.zw_events(
        np.random.default_rng(b.seed("data")),
        cfg["n_data"],
        zpt_mean=cfg["zpt_mean"] * cfg["data_zpt_scale"],
        **gen,
    )
    prep = pipeline.prepare(sim, n_train, n_valid)
    edges = metrics.binning(toy.observables(sim.parton[prep.part("train")]), cfg["bins"])
    test = prep.part("test")
    det_test, truth_test = sim.detector[test], toy.observables(sim.parton[test])
    band = pipeline.in_band(det_test, tuple(cfg["slice_jet_pt"]))
    if band.sum() < MIN_SLICE_EVENTS:
        raise AnomalyHuntError(
            f"unfolding.slice_jet_pt: only {int(band.sum())} of {n_test} test events have a leading "
            f"jet pT in {cfg['slice_jet_pt']} GeV (need {MIN_SLICE_EVENTS}); widen the band"
        )
    log.info("unfolding: %d simulated pairs, %d data events", len(sim), len(data))

    nets, out = {}, {}
    nets["cinn"], cinn_res = pipeline.fit_cinn(
        prep,
        cfg["cinn"],
        seed=b.seed("cinn", "train"),
        init_seed=b.seed("cinn", "init"),
        device=b.device,
        checkpoint=b.path("cinn.ckpt"),
    )
    nets["fcgan"], gan_res = pipeline.fit_fcgan(
        prep,
        cfg["fcgan"],
        edges,
        seed=b.seed("fcgan", "train"),
        init_seed=b.seed("fcgan", "init"),
        device=b.device,
        checkpoint=b.path("fcgan.ckpt"),
    )
    training = {
        "cinn": _training(cinn_res, "best_validation_nll"),
        "fcgan": _training(gan_res, "best_monitor_triangular_x1e3"),
    }

    # closure on held-out simulation, the phase-space slice and the posteriors
    n_cal, n_post = cfg["calibration_events"], cfg["posterior_samples"]
    closure_obs, calib, posteriors = {}, {}, {}
    one = np.repeat(det_test[:1], 4000, axis=0)
    for kind in METHODS:
        args = {"device": b.device}
        unf = pipeline.unfold(
            kind, nets[kind], prep.scaling, det_test, 1, seed=b.seed(kind, "closure"), **args
        )
        closure_obs[kind] = obs = toy.observables(unf[0])
        draws = toy.observables(
            pipeline.unfold(
                kind,
                nets[kind],
                prep.scaling,
                det_test[:n_cal],
                n_post,
                seed=b.seed(kind, "posterior"),
                **args,
            )
        )
        pit = metrics.posterior_pit(draws, truth_test[:n_cal], toy.observables(det_test[:n_cal]))
        calib[kind] = metrics.calibration(pit)
        posteriors[kind] = toy.observables(
            pipeline.unfold(
                kind, nets[kind], prep.scaling, one, 1, seed=b.seed(kind, "event"), **args
            )[0]
        )
        closure = metrics.compare(obs, truth_test, edges)
        sliced = metrics.compare(obs[band], truth_test[band], edges)
        out[kind] = {
            "closure": _rounded(closure),
            "closure_summary": metrics.summary(closure),
            "slice": _rounded(sliced),
            "slice_summary": metrics.summary(sliced),
            "calibration": calib[kind],
            "posterior_width_over_prior": metrics.posterior_width(draws, truth_test),
            "m_jj_peak": pipeline.peak(obs[:, toy.OBSERVABLES.index("m_jj")]),
            "m_ll_peak": pipeline.peak(obs[:, toy.OBSERVABLES.index("m_ll")]),
            "training": training[kind],
        }

    # the shifted-truth data, unfolded three ways
    seen, keep, oor = pipeline.guard_range(prep.scaling, data.detector, cfg["out_of_range"])
    data_truth = toy.observables(data.parton[keep])
    data_obs = {
        "detector": toy.observables(data.detector[keep]),
        "prior": toy.observables(sim.parton[: n_train + n_valid]),
    }
    for kind in METHODS:
        unf = pipeline.unfold(
            kind,
            nets[kind],
            prep.scaling,
            seen[keep],
            1,
            seed=b.seed(kind, "data"),
            device=b.device,
        )
        data_obs[kind] = toy.observables(unf[0])
    of = omnifold(
        pipeline.omnifold_features(sim.parton[: n_train + n_valid]),
        pipeline.omnifold_features(sim.detector[: n_train + n_valid]),
        pipeline.omnifold_features(data.detector[keep]),
        iterations=cfg["omnifold"]["iterations"],
        classifier=cfg["omnifold"]["classifier"],
        weight_clip=cfg["omnifold"]["weight_clip"],
        seed=b.seed("omnifold", "zw"),
        device=b.device,
        threads=b.threads,
    )
    data_obs["omnifold"] = data_obs["prior"]
    weights = {"omnifold": of.pull[-1]}
    compared = {
        m: metrics.compare(x, data_truth, edges, weights.get(m)) for m, x in data_obs.items()
    }
    tri = {m: {o: c[o]["triangular_x1e3"] for o in toy.OBSERVABLES} for m, c in compared.items()}
    i_ptll = toy.OBSERVABLES.index("pt_ll")
    data_metrics = {
        "truth_shift": {
            "data_zpt_scale": cfg["data_zpt_scale"],
            "mean_pt_ll_truth_gev": float(data_truth[:, i_ptll].mean()),
            "mean_pt_ll_simulation_gev": float(data_obs["prior"][:, i_ptll].mean()),
        },
        "out_of_range": oor,
        "n_events": int(keep.sum()),
        "triangular_x1e3": tri,
        "mean_triangular_x1e3": {m: float(np.mean(list(v.values()))) for m, v in tri.items()},
        "mean_pt_ll_unfolded_gev": {
            m: weighted_moments(x[:, i_ptll], weights.get(m))[0] for m, x in data_obs.items()
        },
        "ranking": metrics.ranking({m: compared[m] for m in ("fcgan", "cinn", "omnifold")}),
        "omnifold_effective_events": metrics.effective_counts(of.pull[-1], len(of.pull[-1])),
    }
    gauss = gaussian_example(cfg, b)

    figures.ratio_panels(
        {"truth": truth_test, "detector": toy.observables(det_test), **closure_obs},
        edges,
        b.path("ratios.png"),
        title="closure on held-out simulation: unfolded / parton truth",
    )
    figures.ratio_panels(
        {"truth": truth_test[band], **{k: v[band] for k, v in closure_obs.items()}},
        edges,
        b.path("slice.png"),
        title=f"detector-level slice {cfg['slice_jet_pt'][0]:g} < pT(j1) < "
        f"{cfg['slice_jet_pt'][1]:g} GeV: unfolded / truth of the same events",
    )
    figures.calibration_curves(calib, b.path("calibration.png"))
    figures.posterior(
        posteriors, truth_test[0], toy.observables(det_test[:1])[0], b.path("posterior.png")
    )
    figures.ranking(
        {"truth": data_truth, **data_obs}, edges, tri, b.path("ranking.png"), weights=weights
    )
    figures.omnifold_gauss(gauss, b.path("omnifold_gauss.png"))

    i_mjj, i_mll = toy.OBSERVABLES.index("m_jj"), toy.OBSERVABLES.index("m_ll")
    b.finish(
        {
            "toy": {
                "n_train": n_train,
                "n_valid": n_valid,
                "n_test": n_test,
                "n_data": cfg["n_data"],
                "efficiency_simulation": sim.efficiency,
                "efficiency_data": data.efficiency,
                "isr_jet": cfg["isr_jet"],
                "m_jj_peak": {
                    "truth": pipeline.peak(truth_test[:, i_mjj]),
                    "detector": pipeline.peak(toy.observables(det_test)[:, i_mjj]),
                },
                "m_ll_peak": {
                    "truth": pipeline.peak(truth_test[:, i_mll]),
                    "detector": pipeline.peak(toy.observables(det_test)[:, i_mll]),
                },
                "slice_events": int(band.sum()),
            },
            **out,
            "data_unfolding": data_metrics,
            "omnifold_gauss": {k: v for k, v in gauss.items() if k not in ("samples", "weights")},
            "bin_edges": {
                o: [round(float(x), 4) for x in e]
                for o, e in zip(toy.OBSERVABLES, edges, strict=True)
            },
            "paper_reference": {
                "omnifold_gauss_setup_arXiv_1911_09107": {
                    "sim_truth": list(toy.GAUSS_SIM),
                    "data_truth": list(toy.GAUSS_DATA),
                    "smearing": toy.GAUSS_SMEARING,
                    "note": "the unfolded mean and sd should approach the data truth (0.2, 0.8)",
                },
                "resonances_gev": {
                    "m_z": toy.M_Z,
                    "gamma_z": toy.GAMMA_Z,
                    "m_w": toy.M_W,
                    "gamma_w": toy.GAMMA_W,
                },
                "fcgan_arXiv_1912_00477": "ratio panels in figures, no tabulated numbers",
                "cinn_arXiv_2006_06685": "calibration curves in figures, no tabulated numbers",
            },
        }
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
