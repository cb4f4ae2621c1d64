"""The weighted_gan branch: the weighted toy's physics, hit-or-miss, the uwGAN and its target."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anomalyhunt import cli
from anomalyhunt import config as ah_config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.weighted_gan.__main__ import check_sample, main, settings
from anomalyhunt.weighted_gan.metrics import equivalent_events, pearson_chi2
from anomalyhunt.weighted_gan.model import UnweightingGan, train_unweighting_gan
from anomalyhunt.weighted_gan.toy import (
    M_Z,
    DrellYanToy,
    WeightedSample,
    hit_or_miss,
    kish_ess,
    unweighting_efficiency,
)
from tests.conftest import branch_output

BLOCK = ah_config.validate({"run": "t"})["weighted_gan"]  # the schema's defaults
TOY = DrellYanToy(
    mass_min=BLOCK["mass_min"],
    mass_max=BLOCK["mass_max"],
    z_fraction=BLOCK["z_fraction"],
    continuum_power=BLOCK["continuum_power"],
)


WINDOW = (TOY.mass_min, TOY.mass_max)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def weighted_chi2_per_bin(sample: WeightedSample, edges: np.ndarray) -> float:
    s, _ = np.histogram(sample.x[:, 0], edges, weights=sample.w)
    s2, _ = np.histogram(sample.x[:, 0], edges, weights=sample.w**2)
    expected = TOY.bin_probabilities(edges) * sample.w.sum()
    return float(np.mean((s - expected) ** 2 / s2))


# --- the toy's physics ----------------------------------------------------------------------


def test_the_spectrum_is_normalised_and_peaks_on_the_z_mass():
    m = np.linspace(TOY.mass_min, TOY.mass_max, 2_000_001)
    f = TOY.mass_density(m)
    assert np.trapezoid(f, m) == pytest.approx(1.0, abs=1e-4)
    assert m[np.argmax(f)] == pytest.approx(M_Z, abs=1e-3)
    # half maximum at M_Z +- Gamma_Z / 2 (the continuum shifts it by far less than 0.1 GeV)
    half = m[f > f.max() / 2]
    assert half.max() - half.min() == pytest.approx(2.4952, abs=0.1)
    assert TOY.mass_cdf(np.array(TOY.mass_max)) == pytest.approx(1.0)
    edges = TOY.mass_quantiles(np.linspace(0, 1, 11))
    assert np.diff(TOY.mass_cdf(edges)) == pytest.approx(np.full(10, 0.1), abs=1e-9)
    assert TOY.mass_density(np.array([40.0, 800.0])).tolist() == [0.0, 0.0]


def test_the_angle_integrates_to_the_mass_spectrum_with_the_toy_asymmetry():
    m_edges = np.array([50.0, 80.0, M_Z, 120.0, 700.0])
    p2 = TOY.bin_probabilities(m_edges, np.linspace(-1, 1, 9))
    assert p2.sum(axis=1) == pytest.approx(TOY.bin_probabilities(m_edges), abs=1e-12)
    # A_FB = (F - B) / (F + B) at one mass: 3/8 (1 + c^2) + A c gives exactly A
    m = np.full(200_001, 150.0)
    c = np.linspace(-1, 1, 200_001)
    g = TOY.density(np.stack([m, c], axis=1)) / TOY.mass_density(m)
    forward = np.trapezoid(g[c >= 0], c[c >= 0])
    backward = np.trapezoid(g[c <= 0], c[c <= 0])
    assert forward + backward == pytest.approx(1.0, abs=1e-8)
    assert forward - backward == pytest.approx(float(TOY.afb(np.array(150.0))), abs=1e-8)
    assert TOY.afb(np.array(60.0)) < -0.3 and TOY.afb(np.array(300.0)) > 0.5  # sign flip at Z


def test_the_weighted_events_reproduce_the_truth():
    sample = TOY.sample(400_000, 1, rng(1))
    assert sample.x.min() >= TOY.mass_min and sample.x.max() <= TOY.mass_max
    # mean weight 1 (normalised density over a flat proposal), within 4 standard errors
    assert abs(sample.w.mean() - 1) < 4 * sample.w.std() / np.sqrt(len(sample))
    edges = TOY.mass_quantiles(np.linspace(0, 1, 21))
    assert 0.3 < weighted_chi2_per_bin(sample, edges) < 2.0
    # the unweighted events are the flat proposal, nowhere near the truth
    counts, _ = np.histogram(sample.x[:, 0], edges)
    assert pearson_chi2(counts, TOY.bin_probabilities(edges), len(sample)) / 20 > 1000


def test_the_two_d_weighted_events_carry_the_asymmetry():
    sample = TOY.sample(400_000, 2, rng(2))
    for lo, hi in ((50.0, 80.0), (120.0, 700.0)):
        sel = (sample.x[:, 0] >= lo) & (sample.x[:, 0] < hi)
        w, c = sample.w[sel], sample.x[sel, 1]
        afb = (w[c > 0].sum() - w[c < 0].sum()) / w.sum()
        p = TOY.bin_probabilities(np.array([lo, hi]), np.array([-1.0, 0.0, 1.0]))[0]
        truth = (p[1] - p[0]) / p.sum()
        assert afb == pytest.approx(truth, abs=4 / np.sqrt(kish_ess(w)))
        assert np.sign(truth) == (-1 if hi < M_Z else 1)


@pytest.mark.parametrize("dim", [1, 2])
def test_the_unweighting_efficiency_is_below_one_percent(dim):
    sample = TOY.sample(200_000, dim, rng(3))
    eff = unweighting_efficiency(sample.w)
    assert 0.002 < eff < 0.01
    # the largest weight sits on the Z peak, the smallest in the tail
    assert abs(sample.x[np.argmax(sample.w), 0] - M_Z) < 2.0
    assert sample.x[np.argmin(sample.w), 0] > 300
    assert kish_ess(sample.w) < 0.03 * len(sample)


def test_hit_or_miss_keeps_sum_w_over_max_w_unweighted_events_of_the_truth():
    sample = TOY.sample(300_000, 1, rng(4))
    kept = hit_or_miss(sample, rng(5))
    expected = sample.w.sum() / sample.w.max()
    assert abs(len(kept) - expected) < 4 * np.sqrt(expected)
    edges = TOY.mass_quantiles(np.linspace(0, 1, 11))
    counts, _ = np.histogram(kept[:, 0], edges)
    assert pearson_chi2(counts, TOY.bin_probabilities(edges), len(kept)) / 10 < 3.0


def test_kish_and_equivalent_events():
    assert kish_ess(np.ones(1000)) == pytest.approx(1000)
    assert kish_ess(np.r_[1e6, np.ones(999)]) == pytest.approx(1.002, abs=1e-2)
    # chi2 = (bins - 1) + N D: a generator with D = 0.01 over 30 bins is worth 2900 events
    assert equivalent_events(29 + 100_000 * 0.01, 100_000, 30) == {
        "events": pytest.approx(2900),
        "lower_limit": False,
    }
    assert equivalent_events(30.0, 1000, 30)["lower_limit"]


# --- the uwGAN --------------------------------------------------------------------------------


def test_the_networks_coordinates_round_trip_and_stay_in_the_phase_space():
    sample = TOY.sample(1000, 2, rng(9))
    net = UnweightingGan(2, mass_window=WINDOW, latent_dim=2, hidden=[8], seed=0)
    net.standardise_with(sample)
    back = net.events(torch.as_tensor(net.features(sample.x)))
    assert np.abs(back - sample.x).max() < 1e-3
    assert TOY.inside(net.events(30 * torch.randn(10_000, 2))).all()  # any output is physical


def train_tiny(sample: WeightedSample, weighted: bool) -> UnweightingGan:
    torch.set_num_threads(1)
    net = UnweightingGan(1, mass_window=WINDOW, latent_dim=2, hidden=[32, 32], seed=0)
    train = WeightedSample(sample.x[:16000], sample.w[:16000])
    valid = WeightedSample(sample.x[16000:], sample.w[16000:])
    train_unweighting_gan(
        net,
        train,
        valid,
        weighted=weighted,
        epochs=8,
        batch_size=256,
        learning_rate=2e-3,
        fine_tune_epochs=0,
        fine_tune_batch_size=1024,
        fine_tune_learning_rate=1e-4,
        patience=8,
        critic_steps=2,
        monitor_events=4000,
        monitor_bins=20,
        seed=1,
        device="cpu",
        label="test",
        checkpoint=None,
    )
    return net


def test_the_weighted_gan_learns_the_truth_the_unweighted_one_the_proposal():
    sample = TOY.sample(20_000, 1, rng(6))
    edges = TOY.mass_quantiles(np.linspace(0, 1, 21))
    probs = TOY.bin_probabilities(edges)

    def chi2(net: UnweightingGan) -> float:
        counts, _ = np.histogram(net.generate(20_000, seed=7, device="cpu")[:, 0], edges)
        return pearson_chi2(counts, probs, 20_000) / 20

    untrained = chi2(UnweightingGan(1, mass_window=WINDOW, latent_dim=2, hidden=[32, 32], seed=0))
    uwgan, naive = train_tiny(sample, True), train_tiny(sample, False)
    weighted, unweighted = chi2(uwgan), chi2(naive)
    assert weighted < untrained / 5
    assert weighted < unweighted / 10

    # the weighted generator puts its events on the Z peak, the unweighted one spreads them flat
    def on_peak(net: UnweightingGan) -> float:
        return float(np.mean(np.abs(net.generate(5000, seed=8, device="cpu") - M_Z) < 10))

    assert on_peak(uwgan) > 0.4 > 0.1 > on_peak(naive)  # truth: 0.77, flat proposal: 0.03


# --- bad settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("n_events=100", "weighted_gan.n_events"),
        ("mass_max=40", "weighted_gan.mass_max"),
        ("tail_min=800", "weighted_gan.tail_min"),
        ("z_fraction=1.5", "z_fraction"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys, setting, key):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("run: t\n")
    argv = ["--config", str(cfg), "--out-dir", str(tmp_path / "out"), "--set", setting]
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and err[0].startswith("anomalyhunt: error:")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_scale_paper_switches_to_the_paper_sizes():
    cfg = settings({**BLOCK, "scale": "paper"})
    assert cfg["n_events"] == 1_000_000 and cfg["hidden"] == [256, 256, 256]
    assert settings(BLOCK) == BLOCK


def test_a_sample_without_weight_is_refused():
    empty = WeightedSample(np.full((50, 1), 91.0), np.zeros(50))
    with pytest.raises(AnomalyHuntError, match="weighted_gan.n_events"):
        check_sample(empty, np.empty((0, 1)), "mass")


# --- the target ---------------------------------------------------------------------------------


@pytest.mark.workflow
def test_weighted_gan_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "weighted_gan")
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("distributions.png", "weights.png"):
        assert (out / name).stat().st_size > 10_000
    for toy in ("mass", "mass_costheta"):
        m = metrics[toy]
        assert 0.002 < m["weights"]["unweighting_efficiency"] < 0.01
        hom = m["hit_or_miss"]
        assert abs(hom["events"] - hom["expected_events"]) < 5 * np.sqrt(hom["expected_events"])
        assert hom["chi2_per_bin"] < 3  # hit-or-miss events are exact, only few
        assert m["weights"]["kish_effective_events"] > hom["events"]
        assert m["uwgan"]["events"] == 20000 and m["uwgan"]["equivalent_events"] > 0
        # as many uwGAN events as hit-or-miss kept are close to the truth (the flat proposal: ~75)
        assert m["uwgan"]["chi2_per_bin_at_hit_or_miss_size"] < 6
        assert m["uwgan"]["rejected_outside_phase_space"] == 0.0
        assert m["tail"]["weighted_events"] > 50 * max(m["tail"]["hit_or_miss_events"], 1)
    assert 0.5 < metrics["mass"]["tail"]["uwgan_over_truth"] < 2
    afb = metrics["mass_costheta"]["afb"]
    assert afb["below_z"]["truth"] < 0 < afb["above_z"]["truth"]
    assert afb["below_z"]["uwgan"]["afb"] < 0  # the asymmetry's sign below the Z is learnt
    assert metrics["run"]["config"]["n_events"] == 20000
