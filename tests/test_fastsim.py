"""Branch fastsim: the Z -> mu mu toy detector and its four fast simulations."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from anomalyhunt import cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.fastsim import fit, metrics, toy
from anomalyhunt.fastsim.__main__ import PAPER, main, settings_of
from anomalyhunt.fastsim.simulator import KINDS, EfficiencyMap, FastSim, ThetaRange, encode
from tests.conftest import branch_output

torch.set_num_threads(1)

RANGE = ThetaRange(20.0, 80.0, 2.4)
DETECTOR = toy.Detector(tail_fraction=0.1, tail_scale=3.0, charge_bias=2e-4)
SETTINGS = fit.Settings(
    hidden=[32, 32],
    noise_dim=4,
    flow_layers=2,
    flow_hidden=16,
    flow_transform="spline",
    flow_bins=6,
    components=2,
    epochs=6,
    gan_epochs=6,
    batch_size=64,
    learning_rate=3e-3,
    gan_learning_rate=1e-3,
    critic_learning_rate=3e-3,
    patience=4,
    cgan_critic_steps=2,
    critic_steps=5,
    gradient_penalty=10.0,
    monitor_events=1000,
)


def fixed_theta(n: int, pt: float, eta: float = 0.0, phi: float = 0.0, q: float = 1.0):
    return np.tile([pt, eta, phi, q], (n, 1)).astype(np.float64)


@pytest.fixture(scope="module")
def small():
    """~3,000 reconstructed training muons, validation and test muons with the true response."""
    rng = np.random.default_rng(11)
    theta = toy.muons(3000, rng, pt_min=20, pt_max=80, eta_max=2.4)
    x, seen = DETECTOR.simulate(theta, rng)
    eff = EfficiencyMap.fit(theta, seen, np.linspace(20, 80, 7), np.array([0, 0.2, 1, 1.3, 2.4]))
    th, r = theta[seen], toy.residuals(theta[seen], x[seen])
    n_val = len(th) // 5
    test = toy.muons(2000, np.random.default_rng(12), pt_min=20, pt_max=80, eta_max=2.4)
    r_test = DETECTOR.response(test, np.random.default_rng(13))
    return {
        "data": (th[n_val:], r[n_val:], th[:n_val], r[:n_val]),
        "efficiency": eff,
        "test": test,
        "r_test": r_test,
    }


# --- the toy ------------------------------------------------------------------------------------


def test_z_decays_conserve_mass_momentum_and_charge():
    ev = toy.z_decays(20000, np.random.default_rng(0))
    assert np.allclose(toy.invariant_mass(ev.mu_minus, ev.mu_plus), ev.mass, rtol=1e-9)
    assert np.allclose(ev.mu_minus + ev.mu_plus, ev.z, atol=1e-8)  # 4-momentum conserved
    mu_mass2 = ev.mu_plus[:, 0] ** 2 - (ev.mu_plus[:, 1:] ** 2).sum(axis=1)
    assert np.allclose(mu_mass2, toy.MU_MASS**2, atol=1e-6)  # muons on shell
    assert abs(np.median(ev.mass) - toy.Z_MASS) < 0.1  # Breit-Wigner peak
    theta = ev.theta()
    assert theta[:, 3].sum() == 0 and set(np.unique(theta[:, 3])) == {-1.0, 1.0}
    # the Jacobian peak: the median muon has pT a bit below mZ / 2
    assert 32 < np.median(theta[:, 0]) < 45


def test_decay_angle_follows_one_plus_cos_squared():
    rng = np.random.default_rng(1)
    ev = toy.z_decays(50000, rng)
    beta = ev.z[:, 1:] / ev.z[:, :1]
    back = toy._boost(ev.mu_minus, -beta)  # into the Z rest frame
    cos = back[:, 3] / np.linalg.norm(back[:, 1:], axis=1)
    assert np.mean(cos**2) == pytest.approx(0.4, abs=0.01)  # 1/3 if isotropic


def test_pt_resolution_grows_with_pt_and_matches_the_formula():
    det = replace(DETECTOR, tail_fraction=0.0, charge_bias=0.0)
    for pt in (25.0, 75.0):
        theta = fixed_theta(40000, pt)
        r = det.response(theta, np.random.default_rng(2))
        assert r[:, 0].std() == pytest.approx(
            toy.curvature_resolution(np.array([pt]), np.array([0.0]))[0], rel=0.03
        )
    low = det.response(fixed_theta(40000, 25.0), np.random.default_rng(3))
    high = det.response(fixed_theta(40000, 75.0), np.random.default_rng(3))
    assert high[:, 0].std() > 1.5 * low[:, 0].std()  # sagitta term ~ pT
    # d0: hypot(10 um, 300 um GeV / pT), multiple scattering ~ 1/pT
    assert low[:, 3].std() == pytest.approx(np.hypot(toy.D0_FLOOR, toy.D0_MS / 25.0), rel=0.03)
    assert low[:, 3].std() > 1.3 * high[:, 3].std()


def test_the_tail_component_makes_the_response_non_gaussian():
    theta = fixed_theta(60000, 40.0)
    core = replace(DETECTOR, tail_fraction=0.0).response(theta, np.random.default_rng(4))
    tails = DETECTOR.response(theta, np.random.default_rng(4))
    sigma = core[:, 0].std()
    beyond = np.mean(np.abs(tails[:, 0] - np.median(tails[:, 0])) > 4 * sigma)
    # 10% of muons 3x wider: P(|g| > 4/3) x 0.1 = 1.8%, against 6e-5 for the Gaussian core
    assert 0.014 < beyond < 0.023
    assert np.mean(np.abs(core[:, 0] - np.median(core[:, 0])) > 4 * sigma) < 5e-4


def test_curvature_bias_moves_the_two_charges_apart():
    det = replace(DETECTOR, tail_fraction=0.0)
    for q in (1.0, -1.0):
        theta = fixed_theta(40000, 50.0, q=q)
        x, _ = det.simulate(theta, np.random.default_rng(5))
        shift = np.median(metrics.relative_pt_residual(theta, x))
        # pT_reco / pT - 1 = -q * bias * pT at phi = 0: -1% for mu+, +1% for mu-
        assert shift == pytest.approx(-q * 2e-4 * 50.0, abs=0.0015)


def test_efficiency_has_the_turn_on_and_the_cracks():
    rng = np.random.default_rng(6)
    for eta, pt, expected in ((0.6, 50.0, 0.97), (0.1, 50.0, 0.85), (1.15, 50.0, 0.90)):
        _, seen = DETECTOR.simulate(fixed_theta(40000, pt, eta=eta), rng)
        assert seen.mean() == pytest.approx(expected, abs=0.006)
    _, seen = DETECTOR.simulate(fixed_theta(40000, toy.TURN_ON, eta=0.6), rng)
    assert seen.mean() == pytest.approx(0.97 / 2, abs=0.01)  # half way up the turn-on


def test_residuals_and_x_convert_exactly():
    theta = toy.muons(2000, np.random.default_rng(7), pt_min=20, pt_max=80, eta_max=2.4)
    r = DETECTOR.response(theta, np.random.default_rng(8))
    assert np.allclose(toy.residuals(theta, toy.from_residuals(theta, r)), r, atol=1e-9)


# --- the fast simulations -----------------------------------------------------------------------


def untrained(kind: str, small) -> FastSim:
    r = small["data"][1]
    net = fit.build(kind, 8, 5, SETTINGS, 0)
    return FastSim(
        kind,
        net,
        theta_range=RANGE,
        mean=r.mean(axis=0),
        scale=r.std(axis=0),
        efficiency=small["efficiency"],
        device="cpu",
    )


def ks_to_truth(sim: FastSim, small) -> float:
    gen = sim.sample(small["test"], seed=1, out_of_range="refuse").response
    edges = np.linspace(20, 80, 4)
    return metrics.binned_distances(small["test"][:, 0], small["r_test"], gen, edges)["ks_mean"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_short_training_moves_each_model_towards_the_detector(kind, small):
    before = ks_to_truth(untrained(kind, small), small)
    sim, result = fit.train(
        kind,
        small["data"],
        settings=SETTINGS,
        theta_range=RANGE,
        efficiency=small["efficiency"],
        seed=3,
        device="cpu",
    )
    after = ks_to_truth(sim, small)
    if kind in ("cgan", "wgan_gp"):  # an untrained generator is far off (KS about 0.5)
        assert after < 0.6 * before and after < 0.25, (before, after)
    else:  # an untrained density is a unit Gaussian: close in KS, far in likelihood
        r = small["r_test"]
        nll_before = fit.nll(untrained(kind, small), small["test"], r)
        nll_after = fit.nll(sim, small["test"], r)
        assert after < 0.9 * before and after < 0.15, (before, after)
        assert nll_after < nll_before - 1.0, (nll_before, nll_after)


def critic_gradient_norms(net, small, generator) -> np.ndarray:
    th, r = small["data"][2], small["data"][3]
    z = torch.as_tensor(((r - r.mean(axis=0)) / r.std(axis=0)).astype(np.float32))
    c = torch.as_tensor(encode(th, RANGE))
    with torch.no_grad():
        fake = torch.cat([net.generate(c, generator), c], dim=1)
    real = torch.cat([z, c], dim=1)
    eps = torch.rand((len(real), 1), generator=generator)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(net.critic(mix).sum(), mix)
    return grad.norm(dim=1).numpy()


def test_wgan_gp_critic_has_unit_gradient_norm_on_interpolates(small):
    g = torch.Generator().manual_seed(0)
    before = critic_gradient_norms(untrained("wgan_gp", small).net, small, g)
    sim, _ = fit.train(
        "wgan_gp",
        small["data"],
        settings=SETTINGS,
        theta_range=RANGE,
        efficiency=small["efficiency"],
        seed=3,
        device="cpu",
    )
    after = critic_gradient_norms(sim.net, small, g)
    assert abs(np.median(after) - 1.0) < 0.25, np.median(after)
    assert abs(np.median(after) - 1.0) < abs(np.median(before) - 1.0)


def test_out_of_range_conditions_are_clipped_and_counted_or_refused(small):
    sim = untrained("mdn", small)
    theta = np.vstack([fixed_theta(5, 50.0), fixed_theta(3, 120.0), fixed_theta(2, 40.0, eta=3.0)])
    out = sim.sample(theta, seed=0, out_of_range="clip")
    assert out.clipped == 5 and out.x.shape == (10, 8)
    # the edge's response is applied to the true kinematics: pT_reco stays near 120 GeV
    assert np.all(np.abs(out.x[5:8, 0] / 120.0 - 1) < 0.5)
    with pytest.raises(AnomalyHuntError, match="5 of 10 muons lie outside the trained range"):
        sim.sample(theta, seed=0, out_of_range="refuse")
    assert sim.sample(theta[:5], seed=0, out_of_range="refuse").clipped == 0
    with pytest.raises(AnomalyHuntError, match="charge must be -1 or \\+1"):
        sim.sample(fixed_theta(2, 50.0, q=0.0), seed=0, out_of_range="clip")
    with pytest.raises(AnomalyHuntError, match="fastsim.out_of_range"):
        sim.sample(theta, seed=0, out_of_range="extrapolate")


def test_efficiency_map_reproduces_the_crack(small):
    eff = small["efficiency"]
    theta = np.vstack([fixed_theta(1, 50.0, eta=0.1), fixed_theta(1, 50.0, eta=0.6)])
    crack, barrel = eff(theta)
    assert crack < barrel - 0.05


# --- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("pt_min=90", "fastsim.pt_min: 90 GeV must be below fastsim.pt_max"),
        ("n_events=300", "fastsim.n_events: 300 Z decays give only"),
        ("critic_steps=0", "fastsim.critic_steps"),
        ("models=[gan]", "fastsim.models"),
        ("out_of_range=extrapolate", "fastsim.out_of_range"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys, setting, message):
    (tmp_path / "config.yaml").write_text("run: x\n")
    argv = ["--config", str(tmp_path / "config.yaml"), "--out-dir", str(tmp_path / "out")]
    argv += ["--set", setting, "--set", "n_test_events=100"]
    assert cli.run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("anomalyhunt: error:")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_paper_scale_switches_to_the_paper_sizes():
    from anomalyhunt import config

    block = config.validate({"fastsim": {"scale": "paper"}})["fastsim"]
    s = settings_of(block)
    assert s["hidden"] == [512, 512, 512] and s["n_events"] == PAPER["n_events"]
    assert s["critic_steps"] == 5 and s["gradient_penalty"] == 10.0


@pytest.mark.workflow
def test_fastsim_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "fastsim")
    for name in ("marginals.png", "resolution.png", "distances.png"):
        assert (out / name).stat().st_size > 10000
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) == set(KINDS)
    floor = m["toy_vs_toy_floor"]["ks_mean"]
    truth = m["truth"]["pt_resolution"]["core"]
    assert 1.0 < truth[0] < truth[-1] < 6.0  # the toy's resolution, percent, grows with pT
    for kind, r in m["models"].items():
        assert floor < r["ks_mean"] < 0.25, (kind, r["ks_mean"])  # learned, not perfect
        assert r["microseconds_per_muon"] > 0
        assert np.all(np.isfinite(r["pt_resolution"]["core"]))
        assert m["out_of_range"]["handled"][kind] == {"refused": 0, "clipped": 600}
        if kind in ("flow", "mdn"):  # the likelihood models follow the resolution already
            assert r["correlation_frobenius"] < 1.0, kind
            assert r["pt_resolution_deviation"] < 0.35, kind
            assert r["test_nll_nats"] is not None
    assert m["efficiency"]["max_abs_difference"] < 0.05
    assert m["paper_arXiv_1704_00028"]["critic_steps"] == 5
