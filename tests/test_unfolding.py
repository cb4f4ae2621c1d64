"""The unfolding branch: the Z W toy's physics, the three unfolders, bad settings, the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anomalyhunt import cli
from anomalyhunt import config as ah_config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.unfolding import cinn, fcgan, metrics, model, pipeline, toy
from anomalyhunt.unfolding.__main__ import main, settings
from anomalyhunt.unfolding.omnifold import omnifold, weighted_moments
from tests.conftest import branch_output

BLOCK = ah_config.validate({"run": "t"})["unfolding"]
DETECTOR = BLOCK["detector"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def events(n: int, seed: int = 5, **kw) -> toy.Events:
    args = {"zpt_mean": 50.0, "isr_jet": False, "detector": DETECTOR, **kw}
    return toy.zw_events(np.random.default_rng(seed), n, **args)


# ------------------------------------------------------------------------------------------
# the toy


def test_bosons_are_breit_wigners_and_their_decays_conserve_momentum():
    rng = np.random.default_rng(1)
    objects, bosons, _ = toy.partons(rng, 40_000, zpt_mean=50.0, isr_jet=False)
    m_ll = toy.pair_mass(objects[:, 0], objects[:, 1])
    m_z = np.sqrt(bosons[:, 0, 0] ** 2 - (bosons[:, 0, 1:] ** 2).sum(1))
    np.testing.assert_allclose(m_ll, m_z, rtol=1e-6)  # the leptons rebuild the Z exactly
    for m, mass, width in (
        (m_z, toy.M_Z, toy.GAMMA_Z),
        (toy.pair_mass(objects[:, 2], objects[:, 3]), toy.M_W, toy.GAMMA_W),
    ):
        q25, q50, q75 = np.percentile(m, [25, 50, 75])
        assert abs(q50 - mass) < 0.05  # on shell: the median sits on the pole
        assert 0.5 * (q75 - q25) == pytest.approx(0.5 * width, rel=0.06)  # Cauchy: IQR = Gamma
    # the four decay products balance in the transverse plane, Z pT is the Gamma(2) mean
    px = (objects[..., 0] * np.cos(objects[..., 2])).sum(1)
    py = (objects[..., 0] * np.sin(objects[..., 2])).sum(1)
    assert np.abs(px).max() < 1e-6 and np.abs(py).max() < 1e-6
    assert toy.pair_pt(objects[:, 0], objects[:, 1]).mean() == pytest.approx(50.0, rel=0.02)
    assert (objects[:, 2, 0] >= objects[:, 3, 0]).all()


def test_an_isr_jet_takes_the_recoil():
    objects, _, isr = toy.partons(np.random.default_rng(2), 5000, zpt_mean=50.0, isr_jet=True)
    allobj = np.concatenate([objects, isr], axis=1)
    px = (allobj[..., 0] * np.cos(allobj[..., 2])).sum(1)
    assert np.abs(px).max() < 1e-6 and (isr[:, 0, 0] >= toy.ISR_PT_MIN).all()
    ev = events(2000, isr_jet=True)
    assert ev.detector.shape == (2000, 5, 3) and ev.parton.shape == (2000, 4, 3)


def test_detector_resolutions_scale_and_efficiency_are_the_configured_ones():
    rng = np.random.default_rng(3)
    objects, _, _ = toy.partons(rng, 60_000, zpt_mean=50.0, isr_jet=False)
    open_det = {**DETECTOR, "lepton_pt_min": 0.0, "jet_pt_min": 0.0, "eta_max": 100.0}
    measured, keep = toy.detect(rng, objects, 2, open_det)
    # no cuts: only the efficiencies lose events, 0.95^2 * 0.9^2 of them survive
    assert keep.mean() == pytest.approx(0.95**2 * 0.9**2, abs=0.01)
    lep = measured[:, 0, 0] / objects[:, 0, 0] - 1
    assert lep.std() == pytest.approx(0.02, rel=0.05)
    assert np.std(measured[:, 0, 1] - objects[:, 0, 1]) == pytest.approx(0.002, rel=0.05)
    # jets: the measured energy is 0.97 of the true one on average, far worse resolved
    unsorted, _ = toy.detect(rng, objects[:, 2:], 0, {**open_det, "jet_efficiency": 1.0})
    e_true = objects[:, 2:, 0] * np.cosh(objects[:, 2:, 1])
    e_meas = unsorted[..., 0] * np.cosh(unsorted[..., 1])
    ratio = e_meas.sum(1) / e_true.sum(1)
    assert np.median(ratio) == pytest.approx(0.97, abs=0.01)
    assert ratio.std() > 3 * lep.std()
    # with the acceptance cuts, about 38% of events are kept (leptons |eta| < 2.5 dominate)
    assert events(5000).efficiency == pytest.approx(0.385, abs=0.03)


def test_the_gaussian_example_smears_by_half_a_unit():
    truth, det = toy.gaussian_pairs(
        np.random.default_rng(4), 50_000, mean=0.2, sd=0.8, smearing=0.5
    )
    assert truth.mean() == pytest.approx(0.2, abs=0.01) and truth.std() == pytest.approx(0.8, 0.02)
    assert np.std(det - truth) == pytest.approx(0.5, rel=0.02)


def test_the_residual_parametrisation_returns_the_truth():
    ev = events(3000)
    aligned = model.align(ev.parton, ev.detector)
    scaling = model.Scaling.fit(ev.detector, aligned)
    back = scaling.to_objects(ev.detector, scaling.residual(ev.detector, aligned))
    np.testing.assert_allclose(toy.observables(back), toy.observables(ev.parton), atol=2e-3)
    # alignment only reorders jets: fewer large jet residuals than with the pT order
    dr_sorted = np.abs(toy.wrap_phi(ev.parton[:, 2, 2] - ev.detector[:, 2, 2]))
    dr_aligned = np.abs(toy.wrap_phi(aligned[:, 2, 2] - ev.detector[:, 2, 2]))
    assert (dr_aligned > 0.5).sum() < 0.5 * (dr_sorted > 0.5).sum()


# ------------------------------------------------------------------------------------------
# metrics


def test_triangular_discriminator_and_calibration_by_hand():
    p = np.array([0.5, 0.5, 0.0])
    assert metrics.triangular(p, p) == 0.0
    assert metrics.triangular(p, np.array([0.0, 0.0, 1.0])) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    n = 4000
    truth = rng.normal(size=(n, 15))
    good = rng.normal(size=(200, n, 15))  # posterior = the truth's own distribution
    det = np.zeros((n, 15))
    assert metrics.calibration(metrics.posterior_pit(good, truth, det))["max_deviation_all"] < 0.05
    narrow = 0.3 * good
    assert metrics.calibration(metrics.posterior_pit(narrow, truth, det))["max_deviation_all"] > 0.2


# ------------------------------------------------------------------------------------------
# the unfolders


def test_a_short_cinn_training_gives_calibrated_sharp_posteriors():
    ev = events(4600)
    prep = pipeline.prepare(ev, 3000, 1000)
    cfg = {**BLOCK["cinn"], "epochs": 6, "blocks": 4, "hidden": 32, "patience": 3}
    s = prep.part("test")
    det, truth = ev.detector[s], toy.observables(ev.parton[s])

    def deviation(net):
        draws = toy.observables(
            pipeline.unfold("cinn", net, prep.scaling, det, 50, seed=3, device="cpu")
        )
        return metrics.calibration(metrics.posterior_pit(draws, truth, toy.observables(det))), draws

    untrained = cinn.build_cinn(
        prep.arrays("train")[0].shape[1],
        blocks=4,
        hidden=32,
        layers=2,
        transform="affine",
        bins=8,
        seed=2,
    )
    before, _ = deviation(untrained)
    net, _ = pipeline.fit_cinn(prep, cfg, seed=1, init_seed=2, device="cpu")
    after, draws = deviation(net)
    assert before["max_deviation_all"] > 0.15
    assert after["max_deviation_all"] < 0.15
    # calibrated *and* informative: a lepton's pT posterior is a few percent of the prior's spread
    assert metrics.posterior_width(draws, truth)["pt_l+"] < 0.1


def test_fcgan_training_lowers_its_monitor():
    ev = events(3500)
    prep = pipeline.prepare(ev, 2500, 1000)
    edges = metrics.binning(toy.observables(ev.parton[:2500]), 20)
    monitor = pipeline.gan_monitor(prep, edges, "cpu")
    net = fcgan.build_fcgan(prep.scaling, noise_dim=12, hidden=[64, 64], seed=2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = monitor(lambda c: net.residual(c, gen).numpy())
    cfg = {**BLOCK["fcgan"], "epochs": 5, "hidden": [64, 64], "learning_rate": 1e-3}
    cfg["batch_size"] = 128
    net, result = pipeline.fit_fcgan(prep, cfg, edges, seed=1, init_seed=2, device="cpu")
    # the monitor: mean triangular discriminator (x1000) of the unfolded validation observables
    assert result.best_loss < 0.5 * before


def test_omnifold_moves_the_gaussian_mean_towards_the_data_in_one_iteration():
    rng = np.random.default_rng(7)
    sim_t, sim_d = toy.gaussian_pairs(rng, 20_000, mean=0.0, sd=1.0, smearing=0.5)
    _, data_d = toy.gaussian_pairs(rng, 20_000, mean=0.2, sd=0.8, smearing=0.5)
    res = omnifold(
        sim_t,
        sim_d,
        data_d,
        iterations=1,
        classifier="hgb",
        weight_clip=10.0,
        seed=1,
        device="cpu",
        threads=1,
    )
    mean, sd = weighted_moments(sim_t, res.pull[0])
    # one iteration of a Gaussian unfolds 1 / (1 + 0.5^2) of the shift: about 0.16
    assert 0.1 < mean < 0.22 and sd < 0.95
    assert weighted_moments(sim_d, res.push[0])[0] == pytest.approx(0.2, abs=0.03)


# ------------------------------------------------------------------------------------------
# bad settings


def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys):
    with pytest.raises(AnomalyHuntError, match="unfolding.slice_jet_pt"):
        settings({**BLOCK, "slice_jet_pt": [60.0, 40.0]})
    with pytest.raises(AnomalyHuntError, match="unfolding.slice_jet_pt"):
        settings({**BLOCK, "slice_jet_pt": [5.0, 15.0]})  # below the jet acceptance cut
    with pytest.raises(AnomalyHuntError, match="unfolding.n_train"):
        ah_config.validate({"run": "t", "unfolding": {"n_train": 10}})
    with pytest.raises(AnomalyHuntError, match="unfolding.detector.jet_efficiency"):
        ah_config.validate({"run": "t", "unfolding": {"detector": {"jet_efficiency": 0}}})
    ev = events(1000)
    scaling = model.Scaling.fit(ev.detector[:500], model.align(ev.parton, ev.detector)[:500])
    far = ev.detector.copy()
    far[0, 0, 0] = 5000.0  # a 5 TeV lepton: beyond the simulated range
    with pytest.raises(AnomalyHuntError, match="unfolding.out_of_range"):
        pipeline.guard_range(scaling, far, "refuse")
    seen, keep, report = pipeline.guard_range(scaling, far, "clip")
    assert report["events_outside"] >= 1 and keep.all() and seen[0, 0, 0] < 5000.0
    _, keep, _ = pipeline.guard_range(scaling, far, "drop")
    assert not keep[0]
    cfg = tmp_path / "config.yaml"
    cfg.write_text("run: t\n")
    argv = [
        "--config",
        str(cfg),
        "--out-dir",
        str(tmp_path / "out"),
        "--set",
        "slice_jet_pt=[50, 40]",
    ]
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unfolding.slice_jet_pt" in err[0]


# ------------------------------------------------------------------------------------------
# the target


@pytest.mark.workflow
def test_unfolding_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "unfolding")
    m = json.loads((out / "metrics.json").read_text())
    for fig in ("ratios", "slice", "calibration", "posterior", "ranking", "omnifold_gauss"):
        assert (out / f"{fig}.png").stat().st_size > 10_000
    toy_m = m["toy"]
    assert toy_m["m_jj_peak"]["truth"]["median_gev"] == pytest.approx(80.4, abs=0.3)
    assert toy_m["m_ll_peak"]["truth"]["median_gev"] == pytest.approx(91.19, abs=0.3)
    # the detector smears the W peak; the cINN's posteriors are calibrated and narrow it again
    assert (
        toy_m["m_jj_peak"]["detector"]["half_iqr_gev"]
        > 3 * toy_m["m_jj_peak"]["truth"]["half_iqr_gev"]
    )
    assert m["cinn"]["calibration"]["max_deviation_all"] < 0.2
    assert m["cinn"]["m_jj_peak"]["half_iqr_gev"] < toy_m["m_jj_peak"]["detector"]["half_iqr_gev"]
    for method in ("fcgan", "cinn"):
        closure = m[method]["closure"]
        assert len(closure) == 15 and len(closure["pt_l+"]["ratio"]) == 30
        # the lepton pT is measured to 2%: its unfolded spectrum closes within a few percent
        assert closure["pt_l+"]["triangular_x1e3"] < 10
        assert m[method]["slice_summary"]["mean_triangular_x1e3"] < 30
    data = m["data_unfolding"]
    # the harder data Z pT is recovered, not the simulation's
    shift = data["truth_shift"]
    assert shift["mean_pt_ll_truth_gev"] > 1.15 * shift["mean_pt_ll_simulation_gev"]
    for method in ("fcgan", "cinn", "omnifold"):
        unfolded = data["mean_pt_ll_unfolded_gev"][method]
        assert abs(unfolded - shift["mean_pt_ll_truth_gev"]) < abs(
            shift["mean_pt_ll_simulation_gev"] - shift["mean_pt_ll_truth_gev"]
        )
    assert set(data["ranking"]["m_jj"]) == {"fcgan", "cinn", "omnifold"}
    assert data["out_of_range"]["policy"] == "clip"
    gauss = m["omnifold_gauss"]
    assert gauss["unfolded_mean"][-1] == pytest.approx(0.2, abs=0.07)
    assert gauss["unfolded_sd"][-1] < 0.95
    assert m["run"]["config"]["n_train"] == 3000
