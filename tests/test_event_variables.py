"""Branch event_variables: the decay toys' kinematics, M_T2, the learned variable, the target."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anomalyhunt import cli
from anomalyhunt.event_variables import toy
from anomalyhunt.event_variables.__main__ import main
from anomalyhunt.event_variables.metrics import binned_mutual_information, correlations
from anomalyhunt.event_variables.mt2 import mt2, transverse_mass
from tests.conftest import branch_output

KW = {"mass_range": (200.0, 1000.0), "pt_mean": 100.0}


def _massless(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.normal(0.0, 100.0, (n, 3))
    return np.concatenate([np.linalg.norm(p, axis=1, keepdims=True), p], axis=1)


def test_visible_decay_conserves_the_parent_mass_and_daughters_are_massless():
    ev = toy.generate("visible", 5000, rng=np.random.default_rng(0), **KW)
    b, c = ev.features[:, :4], ev.features[:, 4:]
    assert np.allclose(ev.known, ev.mass, rtol=1e-9)  # m_bc = m_A: four-momentum conserved
    assert np.allclose(toy.invariant_mass(b), 0.0, atol=1e-3 * ev.mass)
    assert np.allclose(toy.invariant_mass(c), 0.0, atol=1e-3 * ev.mass)
    assert ev.mass.min() >= 200 and ev.mass.max() <= 1000
    assert np.mean(ev.mass) == pytest.approx(600, abs=10)  # uniform over [200, 1000]
    pt_a = np.hypot(*(b + c)[:, 1:3].T)
    assert np.mean(pt_a) == pytest.approx(100, rel=0.05)  # |pT(A)| ~ Exp(100 GeV)


def test_transverse_mass_has_its_endpoint_at_the_parent_mass():
    ev = toy.generate("invisible", 20000, rng=np.random.default_rng(1), **KW)
    ratio = ev.known / ev.mass
    assert ratio.max() <= 1 + 1e-9  # m_T <= m_A
    assert np.quantile(ratio, 0.99) > 0.97  # and the Jacobian peak piles up at the endpoint
    assert np.allclose(ev.known, transverse_mass(ev.features[:, :4], ev.features[:, 4:6]))


def test_mt2_matches_the_closed_form_of_balanced_massless_events():
    # massless visible particles, massless trial invisible mass, no upstream momentum:
    # M_T2^2 = 2 (|p1T| |p2T| + p1T . p2T)  (Cho, Choi, Kim & Park, arXiv:0709.0288)
    rng = np.random.default_rng(2)
    p1, p2 = _massless(rng, 3000), _massless(rng, 3000)
    met = -(p1[:, 1:3] + p2[:, 1:3])
    closed = np.sqrt(
        2 * (np.hypot(*p1[:, 1:3].T) * np.hypot(*p2[:, 1:3].T) + np.sum(p1[:, 1:3] * p2[:, 1:3], 1))
    )
    assert np.allclose(mt2(p1, p2, met), closed, atol=1e-4)
    assert np.allclose(mt2(p2, p1, met), closed, atol=1e-4)  # symmetric in the two legs


def test_mt2_is_bounded_by_the_parent_mass_and_reaches_it():
    ev = toy.generate("pair", 4000, rng=np.random.default_rng(3), **KW)
    ratio = ev.known / ev.mass
    assert ratio.min() >= 0 and ratio.max() <= 1 + 1e-6  # the endpoint, even with ISR
    assert ratio.max() > 0.95
    # without recoil the visible and invisible transverse momenta balance
    still = toy.generate("pair", 500, rng=np.random.default_rng(4), **{**KW, "pt_mean": 0.0})
    total = still.features[:, 1:3] + still.features[:, 5:7] + still.features[:, 8:10]
    assert np.allclose(total, 0.0, atol=1e-6 * still.mass[:, None])


def test_binned_mutual_information_of_known_cases():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 50000))
    assert abs(binned_mutual_information(x, y, 20)) < 0.01  # independent
    rho = 0.9
    z = rho * x + math.sqrt(1 - rho**2) * y
    exact = -0.5 * math.log(1 - rho**2)  # Gaussian: 0.830 nats
    assert binned_mutual_information(x, z, 20) == pytest.approx(exact, abs=0.1)
    assert binned_mutual_information(x, np.exp(x), 20) == pytest.approx(math.log(20), abs=0.01)


def test_learned_variable_of_a_to_bc_is_the_invariant_mass():
    import torch

    from anomalyhunt.event_variables.model import evaluate, mutual_information, train_variable

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    train = toy.generate("visible", 6000, rng=rng, with_known=False, **KW)
    valid = toy.generate("visible", 2000, rng=rng, **KW)
    net, result = train_variable(
        train.features,
        train.mass,
        valid.features,
        valid.mass,
        hidden=[64, 64],
        classifier_hidden=[32, 32],
        epochs=8,
        batch_size=128,
        learning_rate=3e-3,
        patience=8,
        seed=1,
    )
    v = evaluate(net, valid.features)
    assert correlations(v, valid.known)["spearman_with_known"] > 0.9
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"] - 0.2
    mi = mutual_information(net, v, valid.mass, seed=0)
    assert mi["mi_donsker_varadhan"] > 0.5  # V knows about m_A
    assert binned_mutual_information(v, valid.mass, 10) > 1.0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("mass_range=[1000, 200]", "event_variables.mass_range"),
        ("batch_size=100000", "event_variables.batch_size"),
        ("mi_bins=100", "event_variables.mi_bins"),
        ("toys=[visible, quadruple]", "event_variables.toys"),
        ("n_train=0", "event_variables.n_train"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys, setting, message):
    (tmp_path / "config.yaml").write_text("run: x\n")
    argv = ["--config", str(tmp_path / "config.yaml"), "--out-dir", str(tmp_path / "out")]
    assert cli.run(main, [*argv, "--set", setting]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.workflow
def test_event_variables_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "event_variables")
    metrics = json.loads((out / "metrics.json").read_text())
    toys = metrics["toys"]
    assert set(toys) == {"visible", "invisible", "pair"}
    assert toys["visible"]["spearman_with_known"] > 0.9
    assert toys["invisible"]["spearman_with_known"] > 0.8
    assert toys["pair"]["spearman_with_known"] > 0.3
    for t in toys.values():
        assert t["known_below_m_a"] == 1.0  # m_bc = m_A, m_T and M_T2 end at m_A
        assert 0.2 < t["mi_binned_learned"] <= t["mi_binned_ceiling"] + 0.05
        # the classifier's bound agrees in scale with the binned estimate of the same V
        assert 0.5 * t["mi_binned_learned"] < t["mi_donsker_varadhan"] < 3 * t["mi_binned_learned"]
    assert toys["visible"]["mi_binned_known"] == pytest.approx(math.log(10), abs=0.05)
    assert (out / "event_variables.png").stat().st_size > 10_000
