"""Branch avo: the e+e- -> mu+ mu- simulator's physics, the AVO fit, bad settings, the target."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from anomalyhunt import cli
from anomalyhunt.avo import toy
from anomalyhunt.avo.__main__ import main
from tests.conftest import branch_output


def test_afb_at_the_z_pole_is_the_lep_pole_asymmetry():
    # at sqrt(s) = M_Z the interference vanishes: A_FB = 3/4 A_e A_mu, A_l = 2 gV gA / (gV^2 + gA^2)
    a_l = 2 * toy.G_V * toy.G_A / (toy.G_V**2 + toy.G_A**2)
    pole = toy.forward_backward_asymmetry(toy.M_Z / 2, 1.0)
    assert pole == pytest.approx(0.75 * a_l**2, rel=0.01)
    assert 0.012 < pole < 0.022  # LEP: A_FB^{0,mu} = 0.0169 +- 0.0013


def test_afb_far_below_the_z_is_the_interference_term_and_scales_with_g_f():
    # s << M_Z^2: A_FB = -3 G_F s / (16 sqrt(2) pi alpha), linear in the Fermi constant
    e = 5.0
    s = (2 * e) ** 2
    low = -3 * toy.G_FERMI * s / (16 * math.sqrt(2) * math.pi * toy.ALPHA)
    assert toy.forward_backward_asymmetry(e, 1.0) == pytest.approx(low, rel=0.03)
    assert toy.forward_backward_asymmetry(e, 2.0) == pytest.approx(2 * low, rel=0.03)
    assert toy.forward_backward_asymmetry(42.0, 0.0) == 0.0  # pure QED: symmetric
    assert toy.forward_backward_asymmetry(*toy.PAPER_TRUTH) == pytest.approx(-0.624, abs=0.001)


def test_density_is_normalised_and_its_asymmetry_is_afb():
    for afb in (-0.7, -0.3, 0.0, 0.5):
        total, _ = integrate.quad(lambda c, a=afb: toy.density(c, a), -1, 1)
        forward, _ = integrate.quad(lambda c, a=afb: toy.density(c, a), 0, 1)
        assert total == pytest.approx(1.0)
        assert forward - (1 - forward) == pytest.approx(afb)


def test_simulator_samples_its_formula():
    n = 200_000
    rng = np.random.default_rng(0)
    c = toy.simulate_numpy(np.full(n, 42.0), np.full(n, 0.9), rng)
    afb = toy.forward_backward_asymmetry(42.0, 0.9)
    assert np.all(np.abs(c) <= 1)
    assert c.mean() == pytest.approx(2 / 3 * afb, abs=0.005)  # E[cos A] = 2/3 A_FB
    cdf = lambda x: 0.375 * (x + 1 + (x**3 + 1) / 3) + afb * (x**2 - 1) / 2  # noqa: E731
    assert stats.kstest(c, cdf).pvalue > 0.01
    counts, edges = np.histogram(c, 20, (-1, 1))
    expected = n * np.diff(cdf(edges))
    assert stats.chisquare(counts, expected).pvalue > 0.01
    # the torch black box draws from the same density
    import torch

    theta = torch.tensor([[42.0, 0.9]]).repeat(50_000, 1)
    c_torch = toy.simulate(theta, torch.Generator().manual_seed(1)).numpy()
    assert stats.kstest(c_torch, cdf).pvalue > 0.01
    a, err = toy.fit_afb(c)
    fisher, _ = integrate.quad(lambda x: x**2 / toy.density(x, afb), -1, 1)  # per event
    assert abs(a - afb) < 3 * err and err == pytest.approx(1 / math.sqrt(n * fisher), rel=0.02)


def test_likelihood_is_flat_along_the_ridge_of_equal_afb():
    from anomalyhunt.avo.metrics import likelihood_grid

    c = toy.simulate_numpy(np.full(20_000, 42.0), np.full(20_000, 0.9), np.random.default_rng(2))
    e_axis, g_axis = np.array([41.0, 42.0, 44.0]), np.array([0.9, 1.2])
    nll = likelihood_grid(c, e_axis, g_axis)
    assert nll[0, 1] < 6.18  # the truth, inside the 95% contour
    assert nll[0, 2] > 100 and nll[1, 2] > 100  # E_beam = 44 GeV: excluded
    # (41 GeV, 1.2) has nearly the truth's A_FB: the ridge, not the point, is determined
    assert (
        abs(toy.forward_backward_asymmetry(41.0, 1.2) - toy.forward_backward_asymmetry(42, 0.9))
        < 0.03
    )


def test_avo_moves_the_proposal_until_the_simulation_passes_a_ks_test():
    import torch

    from anomalyhunt.avo.metrics import summarise
    from anomalyhunt.avo.model import fit_proposal

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = 4000
    observed = toy.simulate_numpy(np.full(n, 42.0), np.full(n, 0.9), rng)
    start_mean, start_width = [43.0, 1.1], [0.3, 0.05]
    theta = rng.normal(start_mean, start_width, (n, 2))
    start = toy.simulate_numpy(theta[:, 0], theta[:, 1], rng)
    assert stats.ks_2samp(start, observed).pvalue < 1e-6  # the start is far off
    fit = fit_proposal(
        observed,
        entropy_penalty=0.0,
        start_mean=start_mean,
        start_width=start_width,
        critic_hidden=[16, 16],
        critic_steps=2,
        critic_warmup_epochs=6,
        gradient_penalty_weight=10.0,
        events_per_theta=1,
        epochs=8,
        batch_size=128,
        learning_rate=0.004,
        critic_learning_rate=0.005,
        patience=8,
        seed=1,
    )
    afb_fit, err = toy.fit_afb(observed)
    m, _ = summarise(fit, observed, afb_fit=afb_fit, afb_fit_error=err, n_simulated=n, seed=3)
    assert m["ks_p_value"] > 0.05
    assert m["wasserstein_final"] < m["wasserstein_start"] / 5
    true_afb = toy.forward_backward_asymmetry(42.0, 0.9)
    assert abs(m["afb_of_proposal"] - true_afb) < 0.05 < abs(-0.4186 - true_afb)
    assert m["final_beam_energy_gev"] < 42.5  # moved down from 43 GeV towards the ridge
    # the warmed-up critic sees the start's distance; at the end it sees almost none
    assert m["critic_value_start"] > m["wasserstein_start"] / 2
    assert abs(m["critic_value_final"]) < m["critic_value_start"] / 4


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("true_point=[55.0, 0.9]", "avo.true_point"),
        ("start_mean=[44.0, 3.0]", "avo.start_mean"),
        ("batch_size=500", "avo.batch_size"),
        ("entropy_penalty=0", "avo.entropy_penalty"),
        ("start_width=[1.0]", "avo.start_width"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys, setting, message):
    (tmp_path / "config.yaml").write_text("run: x\n")
    argv = ["--config", str(tmp_path / "config.yaml"), "--out-dir", str(tmp_path / "out")]
    argv += ["--set", "n_observed=400", "--set", setting]
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.workflow
def test_avo_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "avo")
    metrics = json.loads((out / "metrics.json").read_text())
    obs = metrics["observed"]
    assert obs["true_afb"] == pytest.approx(-0.624, abs=0.001)
    assert abs(obs["afb_fit"] - obs["true_afb"]) < 4 * obs["afb_fit_error"]
    for run in metrics["runs"].values():
        assert run["wasserstein_final"] < run["wasserstein_start"] / 3
        assert abs(run["afb_of_proposal"] - obs["true_afb"]) < 0.08
    assert metrics["runs"]["entropy"]["final_width_beam_energy_gev"] < 0.3  # the penalty shrinks q
    assert metrics["paper_fig3"]["true_beam_energy_gev"] == 42.0
    for name in ("avo_path.png", "avo_fit.png"):
        assert (out / name).stat().st_size > 10_000
