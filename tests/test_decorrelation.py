"""Decorrelating classifier scores from mjj while they train: DisCo and an adversary (issue 17).

On a window whose jet-mass-like features grow with mjj, an SR-vs-SB classifier learns mjj and a
cut on it sculpts a hump at the SR; the penalties must remove that dependence (distance
correlation with mjj, SR-over-SB efficiency of a tight cut) and still find a signal. Off (the
default), nothing of the search changes.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomalyhunt import config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIGNAL_REGION
from anomalyhunt.scores import WindowData
from anomalyhunt.scores.cwola import CWoLa
from anomalyhunt.scores.idealized import Idealized
from anomalyhunt.scores.penalties import (
    DecorrelatedMLPClassifier,
    distance_correlation_np,
    mutual_information,
)
from anomalyhunt.scores.simulation import Simulation
from anomalyhunt.scores.supervised import Supervised
from tests.test_cwola import FAST, WINDOW, correlated_window, make_window

MLP = FAST["mlp"]


def split(df, n_train: int, n_valid: int, seed: int = 0):
    data = WindowData.from_frame(df, WINDOW)
    idx = np.random.default_rng(seed).permutation(len(data))
    return (
        data.subset(idx[:n_train]),
        data.subset(idx[n_train : n_train + n_valid]),
        data.subset(idx[n_train + n_valid :]),
    )


def sculpting(scorer: CWoLa, test: WindowData) -> tuple[float, float]:
    """dCor of score and mjj, and SR-over-SB efficiency of a 5% cut, on background events."""
    s = scorer.score(test)
    bkg = test.label == 0
    keep = s >= np.quantile(s[bkg], 0.95)
    sr = test.region == SIGNAL_REGION
    ratio = keep[bkg & sr].mean() / keep[bkg & ~sr].mean()
    return distance_correlation_np(s[bkg][:3000], test.mjj[bkg][:3000]), float(ratio)


def test_distance_correlation_is_unbiased_and_sees_nonlinear_dependence():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 1000))
    assert abs(distance_correlation_np(x, y)) < 0.005  # no 1/n bias for independent variables
    assert distance_correlation_np(x, 3 * x - 1) == pytest.approx(1.0)
    assert distance_correlation_np(x, x**2) > 0.2  # uncorrelated, but dependent
    assert distance_correlation_np(x, np.ones_like(x)) == 0.0
    assert mutual_information(x, x**2, 10) > 0.5 > mutual_information(x, y, 10)


@pytest.fixture(scope="module")
def correlated():
    return split(correlated_window(seed=2, n_bkg=14000), 7000, 2000)


@pytest.fixture(scope="module")
def plain_sculpting(correlated):
    train, valid, test = correlated
    return sculpting(CWoLa(**MLP, seed=3).fit(train, valid), test)


@pytest.mark.parametrize("method", ["disco", "adversary"])
def test_penalty_removes_the_mjj_dependence_cwola_learns(correlated, plain_sculpting, method):
    train, valid, test = correlated
    scorer = CWoLa(**MLP, decorrelate=method, decorrelation_strength=10.0, seed=3)
    dcor, ratio = sculpting(scorer.fit(train, valid), test)
    plain_dcor, plain_ratio = plain_sculpting
    assert plain_dcor > 0.05 and plain_ratio > 1.5  # the plain MLP learned mjj from the masses
    assert dcor < 0.3 * plain_dcor
    assert abs(ratio - 1.0) < 0.35 * (plain_ratio - 1.0)


def test_decorrelated_cwola_still_finds_a_signal_and_round_trips(tmp_path):
    train, valid, test = split(make_window(n_bkg=12000, n_sig=300, seed=5), 7000, 2000)
    scorer = CWoLa(**MLP, decorrelate="disco", seed=3).fit(train, valid)
    s = scorer.score(test)
    sr = test.region == SIGNAL_REGION
    assert roc_auc_score(test.label[sr], s[sr]) > 0.9
    # mjj is read by the penalty in training only: the score does not depend on it
    shifted = WindowData(test.X, test.mjj + 1.0, test.region, test.label)
    np.testing.assert_array_equal(s, scorer.score(shifted))
    scorer.save(tmp_path / "m")
    again = CWoLa.load(tmp_path / "m")
    assert (again.decorrelate, again.decorrelation_strength) == ("disco", 10.0)
    np.testing.assert_array_equal(s, again.score(test))


def test_off_by_default_and_off_changes_nothing(correlated):
    cfg = config.validate({})["scores"]
    for name in ("cwola", "supervised", "idealized"):
        assert cfg[name]["decorrelate"] == "none" and cfg[name]["classifier"] == "hgb"
    train, valid, test = correlated
    fast = FAST["hgb"] | {"ensemble": 1}
    a = CWoLa(**fast, seed=3)
    assert (a.kind, a.params) == ("hgb", fast["hgb"])  # the configured classifier, untouched
    assert a._inputs(test) is test.X  # the features alone, no mjj column
    # the strength is not read when decorrelation is off: bit-identical scores
    b = CWoLa(**fast, decorrelation_strength=99.0, seed=3)
    np.testing.assert_array_equal(a.fit(train, valid).score(test), b.fit(train, valid).score(test))
    sim = Simulation(window=WINDOW, seed=1)
    for cls in (Supervised, Idealized):
        ref = cls(seed=1).set_reference(sim)
        assert (ref.kind, ref.params) == ("hgb", {}) and ref.inputs(test.X, test.mjj) is test.X


def test_bad_settings_name_the_key():
    with pytest.raises(
        AnomalyHuntError, match=r"scores.cwola.decorrelate: 'disco'.*classifier: mlp"
    ):
        CWoLa(decorrelate="disco")  # gradient boosting, the default, cannot take a penalty
    with pytest.raises(AnomalyHuntError, match=r"scores.idealized.decorrelate: 'adversary'"):
        Idealized(decorrelate="adversary")
    with pytest.raises(AnomalyHuntError, match="scores.supervised.decorrelate 'location_scale'"):
        Supervised(classifier="mlp", decorrelate="location_scale")
    with pytest.raises(AnomalyHuntError, match="strength must be >= 0"):
        DecorrelatedMLPClassifier(strength=-1.0)
    with pytest.raises(AnomalyHuntError, match="scores.cwola.decorrelation_strength"):
        config.validate({"scores": {"cwola": {"decorrelation_strength": -1}}})


def test_supervised_with_an_adversary_separates_the_signal():
    sim = Simulation(window=WINDOW, seed=1, mjj_correlation=3.0, background_chunk=50_000)
    params = {"classifier": "mlp", "ensemble": 1, "mlp": MLP["mlp"], "decorrelate": "adversary"}
    scorer = Supervised(n_background=4000, n_signal=600, signals=[[0.5, 0.1]], **params, seed=1)
    scorer.set_reference(sim)
    dummy = sim.background(10)
    scorer.fit(dummy, dummy)
    bkg = sim.background(5000).subset(np.arange(4000, 5000))  # beyond the training events
    sig = sim.signal(800, 0.5, 0.1).subset(np.arange(600, 800))
    s = np.r_[scorer.score(bkg), scorer.score(sig)]
    assert roc_auc_score(np.r_[np.zeros(len(bkg)), np.ones(len(sig))], s) > 0.85
