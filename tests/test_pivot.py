"""Branch ``pivot``: the paper's toy, the adversarial game, its numbers and its workflow target."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anomalyhunt import cli, config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.evaluate import auc
from anomalyhunt.pivot import metrics, model, toy
from anomalyhunt.pivot.__main__ import main, settings
from tests.conftest import branch_output

FIT = {"batch_size": 128, "learning_rate": 3e-3, "patience": 5}


def test_toy_has_the_papers_means_covariances_and_nuisance():
    s = toy.generate(100_001, np.random.default_rng(0))
    assert len(s) == 100_001 and s.y.sum() == 50_000  # half signal
    bkg, sig = s.x[s.y == 0], s.x[s.y == 1]
    np.testing.assert_allclose(bkg.mean(axis=0), [0, 0], atol=0.02)
    np.testing.assert_allclose(np.cov(bkg.T), [[1, -0.5], [-0.5, 1]], atol=0.03)
    np.testing.assert_allclose(sig.mean(axis=0), [1, 1], atol=0.03)
    # z shifts the signal's x2 only: x2 - z is N(1, 1) and independent of z; var(x2) = 1 + 1
    resid = sig[:, 1] - s.z[s.y == 1]
    assert resid.mean() == pytest.approx(1.0, abs=0.02) and resid.std() == pytest.approx(
        1, abs=0.02
    )
    assert abs(np.corrcoef(resid, s.z[s.y == 1])[0, 1]) < 0.02
    assert np.var(sig[:, 1]) == pytest.approx(2.0, rel=0.03)
    assert np.corrcoef(sig[:, 1], s.z[s.y == 1])[0, 1] == pytest.approx(1 / math.sqrt(2), abs=0.02)
    assert abs(np.corrcoef(bkg[:, 1], s.z[s.y == 0])[0, 1]) < 0.02  # background ignores z
    np.testing.assert_allclose(s.z.std(), 1.0, atol=0.01)
    up = toy.conditional(40_000, 1.0, np.random.default_rng(1))
    assert (up.z == 1).all()
    np.testing.assert_allclose(up.x[up.y == 1].mean(axis=0), [1, 2], atol=0.03)
    # same seed, same events
    a, b = (toy.generate(1000, np.random.default_rng(5)) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)


def test_best_classifier_and_nuisance_entropy():
    s = toy.generate(200_000, np.random.default_rng(2))
    assert toy.Z_ENTROPY == pytest.approx(1.4189385, abs=1e-6)
    h = toy.optimal_cross_entropy(s)
    assert 0.35 < h < math.log(2)  # separable, but far from perfectly
    assert auc(s.y, toy.optimal_log_ratio(s.x)) == pytest.approx(0.86, abs=0.01)


def test_ks_and_mutual_information():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=20_000), rng.normal(size=20_000)
    assert metrics.ks_distance(a, rng.normal(size=20_000)) < 0.03
    assert metrics.ks_distance(a, a + 1.0) == pytest.approx(0.38, abs=0.02)  # 2 Phi(1/2) - 1
    assert metrics.mutual_information(a, b, 10) < 0.01
    rho = 0.8  # bivariate normal: I = -ln(1 - rho^2) / 2 = 0.51 nats; 10 bins see most of it
    c = rho * a + math.sqrt(1 - rho**2) * b
    assert 0.35 < metrics.mutual_information(a, c, 10) < 0.51
    sat = np.r_[np.ones(10_000), rng.uniform(size=10_000)]  # ties (a saturated f) still bin
    assert metrics.mutual_information(sat, b, 10) < 0.01


@pytest.fixture(scope="module")
def trained():
    """The classifier alone and after a short game at lambda = 50, on a small toy."""
    rng = np.random.default_rng(4)
    train, valid, test = toy.generate(6000, rng), toy.generate(3000, rng), toy.generate(6000, rng)
    cond = {z: toy.conditional(6000, z, rng) for z in (-1.0, 0.0, 1.0)}
    net = model.build(hidden=[20, 20], adversary_hidden=[20], components=3, seed=1)
    model.train_classifier(net, train, valid, epochs=8, seed=2, **FIT)
    model.train_adversary(net, train, valid, epochs=3, seed=3, **FIT)
    plain = model.clone(net)
    model.train_pivot(
        net,
        train,
        valid,
        strength=50.0,
        adversary_steps=2,
        epochs=6,
        adversary_learning_rate=3e-3,
        bins=8,
        seed=5,
        **FIT,
    )
    model.train_adversary(net, train, valid, epochs=3, seed=6, **FIT)

    def numbers(n):
        scored = {z: (c.y, model.scores(n, c.x)) for z, c in cond.items()}
        out = metrics.summarise(
            test.y, test.z, model.scores(n, test.x), scored, efficiency=0.5, bins=8
        )
        return out | {"adversary_loss": model.adversary_loss(n, test)}

    return numbers(plain), numbers(net), test


def test_classifier_alone_learns_the_best_classifier(trained):
    plain, _, test = trained
    best = auc(test.y, toy.optimal_log_ratio(test.x))
    assert plain["auc"] > best - 0.01
    # it leans on x2, so the nuisance moves its signal efficiency a lot
    assert plain["ks_signal_z_minus1_vs_plus1"] > 0.4
    assert plain["signal_efficiency_z_plus1"] - plain["signal_efficiency_z_minus1"] > 0.4
    assert plain["adversary_loss"] < toy.Z_ENTROPY - 0.03  # f tells r something about z


def test_adversary_makes_the_classifier_a_pivot(trained):
    plain, pivot, _ = trained
    assert pivot["ks_signal_z_minus1_vs_plus1"] < 0.4 * plain["ks_signal_z_minus1_vs_plus1"]
    assert (
        pivot["mutual_information_f_z_signal_nats"]
        < 0.3 * plain["mutual_information_f_z_signal_nats"]
    )
    assert abs(pivot["signal_efficiency_relative_spread"]) < 0.2
    # a fresh adversary can barely beat the prior of z, and the price is some power
    assert pivot["adversary_loss"] > toy.Z_ENTROPY - 0.03
    assert 0.7 < pivot["auc"] < plain["auc"]


def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, capsys):
    block = config.validate({})["pivot"]
    for change, key in (
        ({"batch_size": 50000}, "pivot.batch_size"),
        ({"bins": 40}, "pivot.bins"),
        ({"scan": [50.0]}, "pivot.scan"),
    ):
        with pytest.raises(AnomalyHuntError, match=key):
            settings(block | change)
    assert settings(block | {"scale": "paper"})["n_train"] == 200_000
    # through the command: the schema's bounds and the command's own checks, one line each
    cfg = tmp_path / "config.yaml"
    cfg.write_text("run: x\n")
    for change, key in (("components=0", "pivot.components"), ("bins=40", "pivot.bins")):
        args = ["--config", str(cfg), "--out-dir", str(tmp_path / "out"), "--set", change]
        assert cli.run(main, args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("anomalyhunt: error:") and key in err[-1]


@pytest.mark.workflow
def test_pivot_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "pivot")
    metrics_ = json.loads((out / "metrics.json").read_text())
    plain, pivot = metrics_["without_adversary"], metrics_["with_adversary"]
    assert [r["lambda"] for r in metrics_["tradeoff"]] == [0.0, 5.0, 50.0]
    assert plain["auc"] > metrics_["optimal_classifier_ignoring_z"]["auc"] - 0.015
    assert plain["ks_signal_z_minus1_vs_plus1"] > 0.4
    assert pivot["ks_signal_z_minus1_vs_plus1"] < 0.4 * plain["ks_signal_z_minus1_vs_plus1"]
    assert pivot["auc"] < plain["auc"]
    assert metrics_["paper_section3"]["adversary_loss_against_a_pivot_nats"] == pytest.approx(
        1.419, abs=1e-3
    )
    hist = metrics_["f_distributions"]["with_adversary"]["+1"]
    assert sum(hist) / len(hist) == pytest.approx(1.0, rel=1e-6)  # a density on [0, 1]
    for name in ("pivot.png", "tradeoff.png"):
        assert (out / name).stat().st_size > 10_000
    assert metrics_["run"]["config"]["n_train"] == 4000
