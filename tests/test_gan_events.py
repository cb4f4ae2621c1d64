"""Branch gan_events: the t tbar toy's physics, the MMD term's effect, bad settings, the target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from anomalyhunt import cli
from anomalyhunt.gan_events import metrics, model, toy
from anomalyhunt.gan_events.__main__ import main
from tests.conftest import branch_output


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the branch runs (and the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def events() -> toy.TopPairs:
    return toy.generate(np.random.default_rng(11), 100_000, cutoff=15.0)


def test_quarks_are_on_shell_and_every_decay_conserves_four_momentum(events):
    mass = toy.minkowski_mass(events.quarks)
    assert np.allclose(mass, np.asarray(toy.QUARK_MASSES)[None, :], atol=2e-3)
    q, t, w = events.quarks, events.tops, events.ws
    scale = np.abs(t).max()
    assert np.abs(q[:, 0] + q[:, 1] + q[:, 2] - t[:, 0]).max() < 1e-9 * scale  # t -> b u dbar
    assert np.abs(q[:, 3] + q[:, 4] + q[:, 5] - t[:, 1]).max() < 1e-9 * scale
    assert np.abs(q[:, 1] + q[:, 2] - w[:, 0]).max() < 1e-9 * scale  # W+ -> u dbar
    # the 18 momenta alone (energies from the on-shell masses) rebuild the same tops and Ws
    rebuilt = toy.reconstruct(events.momenta())
    assert np.allclose(toy.minkowski_mass(rebuilt["t"]), toy.minkowski_mass(t), atol=0.05)
    assert np.allclose(toy.minkowski_mass(rebuilt["w"]), toy.minkowski_mass(w), atol=0.05)


def test_masses_are_breit_wigners_with_the_physical_widths(events):
    for p, pole, gamma in ((events.tops, 173.0, 1.5), (events.ws, 80.4, 2.1)):
        m = toy.minkowski_mass(p).ravel()
        q1, med, q3 = np.percentile(m, [25, 50, 75])
        # a Breit-Wigner's quartiles sit at pole -+ Gamma/2 (0.967 Gamma apart when cut at 15)
        assert med == pytest.approx(pole, abs=0.03)
        assert q3 - q1 == pytest.approx(0.967 * gamma, rel=0.03)
        assert np.abs(m - pole).max() <= 15 * gamma + 1e-9
    assert toy.breit_wigner_iqr(1.5, 1e6) == pytest.approx(1.5)


def test_pair_spectrum_and_isotropic_azimuths(events):
    pair = events.tops.sum(axis=1)
    pt = np.hypot(pair[:, 1], pair[:, 2])
    assert pt.mean() == pytest.approx(toy.PAIR_PT_MEAN, rel=0.02)  # exponential, mean 20 GeV
    y = 0.5 * np.log((pair[:, 0] + pair[:, 3]) / (pair[:, 0] - pair[:, 3]))
    assert y.std() == pytest.approx(1.0, rel=0.02) and abs(y.mean()) < 0.02
    m_tt = toy.minkowski_mass(pair)
    excess = m_tt - toy.minkowski_mass(events.tops).sum(axis=1)  # Gamma(2, 80 GeV): mean 160
    assert excess.mean() == pytest.approx(160.0, rel=0.02)
    phi = toy.kinematics(events.quarks)["phi"]
    assert np.abs(np.cos(phi).mean(axis=0)).max() < 0.01
    assert np.all(toy.kinematics(events.tops)["pt"].mean(axis=0) > 90)  # tops carry m_tt/2


def test_torch_masses_match_the_numpy_reconstruction(events):
    x = events.momenta()[:500].astype(np.float64)
    m = model.masses(torch.as_tensor(x)).numpy()
    rebuilt = toy.reconstruct(x)
    assert np.allclose(m[:, :2], toy.minkowski_mass(rebuilt["w"]), atol=1e-6)
    assert np.allclose(m[:, 2:], toy.minkowski_mass(rebuilt["t"]), atol=1e-6)


def test_ratio_and_width_metrics_see_a_broadened_peak(events):
    truth = metrics.observables(events.momenta()[:50_000].astype(np.float64))
    other = metrics.observables(events.momenta()[50_000:].astype(np.float64))
    edges = metrics.bin_edges(truth)
    same = metrics.compare(other, truth, edges)
    assert same["mean_abs_ratio_minus_1_all"] < 0.04
    assert same["m_t"]["width_ratio_to_truth"] == pytest.approx(1.0, abs=0.05)
    assert metrics.width_within(same, 0.2)
    smeared = dict(
        other, m_t=other["m_t"] + np.random.default_rng(0).normal(0, 3.0, len(other["m_t"]))
    )
    broad = metrics.compare(smeared, truth, edges)
    assert broad["m_t"]["width_ratio_to_truth"] > 2.5
    assert broad["ratios"]["m_t"]["mean_abs_ratio_minus_1"] > 0.5
    assert not metrics.width_within(broad, 0.2)


def _short_game(mmd_weight: float, train: np.ndarray, valid: np.ndarray):
    settings = model.GanSettings(
        epochs=6,
        batch_size=128,
        learning_rate=1e-3,
        patience=6,
        kind="bce",
        critic_steps=1,
        critic_penalty=1.0,
        mmd_weight=mmd_weight,
        mmd_kernel="breit_wigner",
        mmd_widths=[1.0, 4.0, 16.0],
        mmd_events=128,
        monitor_events=1000,
    )
    net = model.build(18, [64, 64], seed=1)
    model.train_gan(net, train, valid, settings, seed=2, device="cpu", label="test")
    return net


def test_a_short_training_with_the_mmd_narrows_the_mass_peaks():
    rng = np.random.default_rng(5)
    train = toy.generate(rng, 3000, cutoff=15.0).momenta()
    valid = toy.generate(rng, 1000, cutoff=15.0).momenta().astype(np.float64)
    widths = {}
    for weight in (0.0, 5.0):
        net = _short_game(weight, train, valid)
        gen = metrics.observables(model.generate(net, 20_000, seed=3, device="cpu"))
        widths[weight] = {obj: metrics.peak(gen[f"m_{obj}"])["width_iqr_gev"] for obj in "tW"}
    # the same network, batches and noise: the MMD alone makes both peaks far narrower
    assert widths[5.0]["t"] < 0.5 * widths[0.0]["t"]
    assert widths[5.0]["W"] < 0.5 * widths[0.0]["W"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"bw_cutoff": 30}, "gan_events.bw_cutoff"),
        ({"n_train": 1000, "batch_size": 2048}, "gan_events.batch_size"),
        ({"batch_size": 256, "mmd_events": 512}, "gan_events.mmd_events"),
        ({"mmd_weight": 0}, "gan_events.mmd_weight"),
        ({"mmd_kernel": "cauchy"}, "gan_events.mmd_kernel"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys, setting, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"run": "x", "gan_events": setting}))
    code = cli.run(main, ["--config", str(path), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("anomalyhunt: error:") and message in err[-1]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.workflow
def test_gan_events_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "gan_events")
    metrics_ = json.loads((out / "metrics.json").read_text())
    for name in ("top_mass.png", "ratios.png"):
        assert (out / name).stat().st_size > 10_000
    truth = metrics_["truth"]
    assert truth["m_t"]["width_iqr_gev"] == pytest.approx(1.45, rel=0.1)
    assert truth["m_W"]["width_iqr_gev"] == pytest.approx(2.03, rel=0.1)
    assert metrics_["statistical_floor"]["mean_abs_ratio_minus_1_all"] < 0.08
    plain, mmd = metrics_["gan"], metrics_["gan_mmd"]
    assert mmd["mmd_weight"] > 0 and plain["mmd_weight"] == 0
    for obj in ("t", "W"):
        assert (
            mmd[f"m_{obj}"]["width_ratio_to_truth"]
            < 0.5 * plain[f"m_{obj}"]["width_ratio_to_truth"]
        )
    assert metrics_["run"]["config"]["n_train"] == 4000
