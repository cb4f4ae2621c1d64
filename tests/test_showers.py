"""Branch `showers`: the toy calorimeter's physics, the BIB-AE and its post-processor."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from anomalyhunt import cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.training import seeded
from anomalyhunt.showers import __main__ as command
from anomalyhunt.showers import metrics, model, toy
from anomalyhunt.showers.train import fit_postprocessor, train_bibae
from tests.conftest import branch_output

CALO = toy.Calorimeter(cells_xy=12, layers=20, threshold_mip=0.5)
#: The smallest grid the geometry check lets through at 100 GeV: 6 x 6 x 12 = 432 cells.
SMALL = toy.Calorimeter(cells_xy=6, layers=12, threshold_mip=0.5)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fixed(energy: float, n: int, seed: int, calo: toy.Calorimeter = CALO) -> np.ndarray:
    return toy.simulate(calo, np.full(n, energy), np.random.default_rng(seed))


def test_visible_energy_is_incident_energy_times_sampling_fraction():
    visible = {e: fixed(e, 300, 1).sum(axis=(1, 2, 3), dtype=np.float64) for e in (20.0, 80.0)}
    response = {e: v.mean() / (e * 1e3 * toy.SAMPLING_FRACTION) for e, v in visible.items()}
    # 24 X0 and +-3 Moliere radii hold about 95 % of a photon shower
    for r in response.values():
        assert 0.90 < r < 0.99
    assert response[20.0] == pytest.approx(response[80.0], rel=0.02)  # linear
    resolution = {e: v.std() / v.mean() for e, v in visible.items()}
    # sampling fluctuations: sigma/E ~ 1/sqrt(E), so 80 GeV is about twice as sharp
    assert 1.2 < resolution[20.0] / resolution[80.0] < 2.5
    assert 0.015 < resolution[20.0] < 0.045


def test_cells_below_threshold_are_zero_and_single_tracks_make_the_mip_peak():
    cells = fixed(50.0, 200, 2)
    hits = cells[cells > 0]
    assert hits.min() >= CALO.threshold_mev
    assert 0.5 < np.mean(cells == 0) < 0.9  # a high-granularity calorimeter is mostly empty
    # the most common hit energy between threshold and 3 MIP is one track's (Gamma(4)/4: mode
    # at 0.75 MIP)
    edges = np.linspace(0.5, 3.0, 26) * toy.MIP_MEV
    counts, _ = np.histogram(hits, edges)
    mode = 0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1]) / toy.MIP_MEV
    assert 0.6 < mode < 1.1
    off = toy.Calorimeter(cells_xy=12, layers=20, threshold_mip=0.0)
    assert np.mean(fixed(50.0, 50, 2, off) == 0) < np.mean(fixed(50.0, 50, 2) == 0)


def test_longitudinal_profile_peaks_at_the_gamma_maximum():
    peaks = {}
    for energy in (10.0, 100.0):
        profile = metrics.longitudinal_profile(fixed(energy, 300, 3))
        t_max = float(toy.shower_max_x0(energy))  # ln(E / E_c) + 0.5
        peaks[energy] = profile.argmax()
        assert abs(peaks[energy] - math.floor(t_max / toy.X0_PER_LAYER)) <= 1
    assert peaks[100.0] > peaks[10.0]


def test_lateral_shares_are_exact_integrals_of_the_radial_profile():
    wide = toy.Calorimeter(cells_xy=64, layers=12, threshold_mip=0.5)
    share = toy._cell_fractions(wide, np.array([0.3]))[0]
    half = 16.0  # +-16 Moliere radii: all but R^2 / (R^2 + 16^2) of a core of width 0.3
    assert share.sum() == pytest.approx(1 - 0.3**2 / (0.3**2 + half**2), abs=2e-4)
    assert np.allclose(share, share.T) and np.allclose(share, share[::-1])  # symmetric
    radius = wide.cell_radius()
    assert share[radius < 1].sum() > 0.85  # 90 % of a core within 1 R_M


def test_toy_is_reproducible():
    assert np.array_equal(fixed(30.0, 20, 4), fixed(30.0, 20, 4))
    assert not np.array_equal(fixed(30.0, 20, 4), fixed(30.0, 20, 5))


@pytest.mark.parametrize(
    ("calo", "key"),
    [
        (toy.Calorimeter(cells_xy=4, layers=20, threshold_mip=0.5), "showers.cells_xy"),
        (toy.Calorimeter(cells_xy=12, layers=10, threshold_mip=0.5), "showers.layers"),
    ],
)
def test_a_grid_too_small_for_the_showers_is_refused(calo, key):
    with pytest.raises(AnomalyHuntError, match=key):
        toy.check_geometry(calo, 10.0, 100.0)
    toy.check_geometry(CALO, 10.0, 100.0)
    toy.check_geometry(SMALL, 10.0, 100.0)


def test_bad_settings_stop_the_command_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("run: bad\n")
    out = str(tmp_path / "out")
    for setting, key in [
        ("layers=8", "showers.layers"),
        ("cells_xy=3", "showers.cells_xy"),
        ("energy_points=[5, 50]", "showers.energy_points"),
        ("energy_min=150", "showers.energy_min"),
    ]:
        argv = ["--config", str(cfg), "--out-dir", out, "--set", setting]
        assert cli.run(command.main, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and key in err[0], err
    assert command.settings({"scale": "paper", "cells_xy": 12})["cells_xy"] == 30


@pytest.fixture(scope="module")
def trained():
    """A BIB-AE trained for a few epochs on 400 small-grid showers."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    e_train, e_valid = rng.uniform(10, 100, 400), rng.uniform(10, 100, 100)
    train = (toy.simulate(SMALL, e_train, rng), e_train)
    valid = (toy.simulate(SMALL, e_valid, rng), e_valid)
    sizes = {"energy_max": 100.0, "batch_size": 32, "learning_rate": 3e-3, "device": "cpu"}
    net, fit = train_bibae(
        SMALL,
        train,
        valid,
        latent=4,
        hidden=[64, 32],
        critic_hidden=[16],
        kl_weight=1.0,
        mmd_weight=100.0,
        critic_weight=1.0,
        epochs=6,
        patience=6,
        init_seed=1,
        seed=2,
        **sizes,
    )
    return net, fit, valid


def reconstruction_error(net: model.BibAE, cells: np.ndarray, energy: np.ndarray) -> float:
    a = model.to_a(cells)
    e = (energy / 100.0).astype(np.float32)[:, None]
    return float(((model.reconstruct(net, a, e, seed=0, device="cpu") - a) ** 2).sum(1).mean())


def test_short_training_lowers_the_reconstruction_error(trained):
    net, fit, (cells, energy) = trained
    with seeded(1):  # the trained network's initial weights
        fresh = model.BibAE(SMALL.n_cells, 4, [64, 32], [16])
    for name in ("mean", "scale", "response"):  # and its standardisation
        getattr(fresh, name).copy_(getattr(net, name))
    before = reconstruction_error(fresh, cells, energy)
    after = reconstruction_error(net, cells, energy)
    assert after < 0.5 * before, (before, after)
    assert len(fit.history[0]["player_losses"]) == 2  # the latent critic played


def smooth_and_true(n: int, rng: np.random.Generator):
    """The ideal BIB-AE output (each cell's mean energy, in u) beside the showers read out."""
    energy = rng.uniform(10, 100, n)
    mean = toy.mean_deposits(SMALL, energy, rng)
    cells = toy.sample_cells(SMALL, mean, rng).astype(np.float32)
    smooth = np.log1p(mean.reshape(n, -1) / toy.MIP_MEV).astype(np.float32)
    return smooth, cells, (energy / 100.0).astype(np.float32)[:, None]


def test_post_processor_learns_the_sampling_that_smooth_showers_lack():
    # Fed each cell's exact mean energy (a perfect BIB-AE), the post-processor must learn the
    # calorimeter's readout: single-track hits below the mean, the MIP peak, the hit count.
    rng = np.random.default_rng(11)
    train, valid = smooth_and_true(400, rng), smooth_and_true(100, rng)
    pp, fit = fit_postprocessor(
        SMALL,
        train,
        valid,
        hidden=[16, 16],
        cells=2048,
        mmd_weight=1.0,
        epochs=20,
        batch_size=32,
        learning_rate=3e-3,
        patience=20,
        init_seed=3,
        seed=4,
        device="cpu",
    )
    smooth, cells, e = valid
    with torch.no_grad():
        u = pp(torch.as_tensor(smooth), torch.as_tensor(e), torch.Generator().manual_seed(0))
    after = model.to_mev(u.numpy(), SMALL)
    before = model.to_mev(smooth, SMALL)  # the mean energies, read out as they are
    true_hits = np.log10(cells[cells > 0])
    w_before = wasserstein_distance(true_hits, np.log10(before[before > 0]))
    w_after = wasserstein_distance(true_hits, np.log10(after[after > 0]))
    assert w_after < 0.5 * w_before, (w_before, w_after)
    hits = [(x > 0).sum() / len(x) for x in (cells, before, after)]
    assert abs(hits[2] - hits[0]) < 0.5 * abs(hits[1] - hits[0]), hits
    peak = [metrics.summary(x, SMALL)["mip_peak_fraction"] for x in (cells, before, after)]
    assert abs(peak[2] - peak[0]) < 0.5 * abs(peak[1] - peak[0]), peak
    visible = after.sum() / cells.sum()
    assert 0.93 < visible < 1.07
    assert fit.best_loss < 0.3 * fit.history[0]["val_loss"]


@pytest.mark.workflow
def test_showers_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "showers")
    metrics_ = json.loads((out / "metrics.json").read_text())
    for name in ("cell_energy.png", "profiles.png"):
        assert (out / name).stat().st_size > 10_000
    toy_ = metrics_["toy"]
    # the toy's physics: 1.5 % of 10-100 GeV (mean 55 GeV) is visible, of which this small grid
    # (+-1.5 Moliere radii, 14.4 X0) holds about 70 %
    assert 0.6 < toy_["visible_energy_mean_mev"] / (55e3 * toy.SAMPLING_FRACTION) < 0.8
    assert 0.1 < toy_["mip_peak_fraction"] < 0.5
    points = {p["energy_gev"]: p for p in metrics_["energy_points"]}
    # nearly proportional to the incident energy, less the deeper 80 GeV showers' leakage
    ratio = points[80.0]["toy"]["mean_mev"] / points[30.0]["toy"]["mean_mev"]
    assert 0.9 * 80 / 30 < ratio < 80 / 30
    # a 14.4 X0 grid leaks: fluctuations of the leakage widen the resolution to several %
    assert 0.03 < points[30.0]["toy"]["resolution"] < 0.15
    for key in ("bibae", "bibae_pp"):
        gen = metrics_[key]
        assert 0.5 < gen["visible_energy_mean_mev"] / toy_["visible_energy_mean_mev"] < 1.5
        assert gen["w_cell_energy_log10"] >= 0 and gen["w_longitudinal_profile_x0"] >= 0
    assert metrics_["time_ms_per_shower"]["toy_simulator_cpu"] > 0
    assert metrics_["geometry"]["n_cells"] == 6 * 6 * 12
    assert not list(out.glob("*.ckpt"))  # checkpoints are removed when training ends
