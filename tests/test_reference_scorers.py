"""Reference scorers that need simulation (idealized, supervised) on small toy-generator data.

They must separate the injected W' signal, draw their reference samples from a seed independent
of the data's, reuse them across folds, and refuse clearly when there is no simulator.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.data import toy
from anomalyhunt.data.features import compute_features
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet
from anomalyhunt.regions import SIGNAL_REGION, Window, assign_folds, inject_signal
from anomalyhunt.scores import WindowData, get_scorer, score_out_of_fold
from anomalyhunt.scores.__main__ import main as scores_main
from anomalyhunt.scores.idealized import Idealized
from anomalyhunt.scores.simulation import Simulation, require_toy
from anomalyhunt.scores.supervised import Supervised

WINDOW = Window("w03", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))
HGB = {"classifier": "hgb", "ensemble": 1, "hgb": {"max_iter": 80, "min_samples_leaf": 40}}
SUPERVISED = HGB | {"n_background": 8000, "n_signal": 1000}


@pytest.fixture(scope="module")
def config():
    return cfgmod.validate({"seed": 3, "data": {"toy": {"n_background": 40000, "n_signal": 2000}}})


@pytest.fixture(scope="module")
def events(config):
    tc = config["data"]["toy"]
    feats = compute_features(toy.generate(tc["n_background"], tc["n_signal"], 11))
    data = inject_signal(feats, 800, 1)
    data["fold"] = assign_folds(len(data), 5, 2)
    return data


def sr_auc(scores: pd.DataFrame) -> float:
    sr = scores[scores["region"] == SIGNAL_REGION]
    return roc_auc_score(sr["label"], sr["score"])


@pytest.mark.parametrize("method,params", [("idealized", HGB), ("supervised", SUPERVISED)])
def test_separates_injected_signal_out_of_fold(config, events, method, params):
    sim = Simulation.from_config(config, WINDOW, method)
    scores = score_out_of_fold(
        get_scorer(method).bound_to(sim), params, events, WINDOW, seed=1, threads=1
    )
    assert len(scores) == int((WINDOW.region_of(events["mjj"]) > 0).sum())
    auc = sr_auc(scores)
    assert auc > 0.8, f"{method}: SR AUC only {auc:.3f}"


def test_simulation_streams_are_prefix_stable_cached_and_independent(config):
    sim = Simulation.from_config(config, WINDOW)
    assert sim.seed == cfgmod.derive_seed(config["seed"], "reference", WINDOW.id)
    assert sim.seed != cfgmod.derive_seed(config["seed"], "toy")
    small = Simulation.from_config(config, WINDOW).background(500)
    big = sim.background(3000)
    np.testing.assert_array_equal(small.X, big.X[:500])
    assert (big.region == SIGNAL_REGION).all() and (big.label == 0).all()
    assert sim.background(3000).X is not big.X  # a fresh array each time ...
    assert len(sim._streams[("background", SIGNAL_REGION)]) == 1  # ... from the cached chunk
    sig = sim.signal(400, 0.3, 0.1)
    assert (sig.label == 1).all() and len(sig) == 400
    with pytest.raises(AnomalyHuntError, match="not allowed"):
        sim.signal(10, 0.7, 0.3)  # mx + my above a quarter of 3.5 TeV


def test_supervised_cocktail_and_leave_out(config):
    sim = Simulation.from_config(config, WINDOW)
    points = Supervised().set_reference(sim).cocktail()
    assert (0.5, 0.1) in points and (0.7, 0.3) not in points and len(points) == 7
    left = Supervised(leave_out_injected=True).set_reference(sim).cocktail()
    assert (0.5, 0.1) not in left and len(left) == 6
    mine = Supervised(signals=[[0.3, 0.3]]).set_reference(sim).cocktail()
    assert mine == [(0.3, 0.3)]
    with pytest.raises(AnomalyHuntError, match="not allowed"):
        Supervised(signals=[[0.8, 0.3]]).set_reference(sim).cocktail()


def test_supervised_far_from_the_signal_tests_a_wprime_at_the_window(config):
    """A window the 3.5 TeV W' never reaches (this failed after generating 50M events): the
    cocktail's W' moves to the SR centre, so the classifier still learns two-prong jets there."""
    far = Window("w10", (5.3, 5.7), (4.7, 5.3), (5.7, 6.3))
    sim = Simulation.from_config(config, far)
    assert sim.signal_acceptance(0.5, 0.1) < 0.01
    sup = Supervised(**SUPERVISED | {"signals": [[0.5, 0.1]]}, seed=1).set_reference(sim)
    sup.fit(None, None)
    sig = sim.signal(500, 0.5, 0.1, mjj=far.centre)
    assert ((sig.mjj > far.sr[0]) & (sig.mjj < far.sr[1])).all()
    bkg = sim.background(2000)
    score = sup.score(
        WindowData(
            np.concatenate([sig.X, bkg.X]),
            np.r_[sig.mjj, bkg.mjj],
            np.r_[sig.region, bkg.region],
            np.r_[sig.label, bkg.label],
        )
    )
    assert roc_auc_score(np.r_[np.ones(500), np.zeros(2000)], score) > 0.9


def test_supervised_trains_once_per_simulation_and_round_trips(config, events, tmp_path):
    sim = Simulation.from_config(config, WINDOW)
    data = WindowData.from_frame(events, WINDOW)
    a = Supervised(**SUPERVISED, seed=1).set_reference(sim).fit(data, data)
    b = Supervised(**SUPERVISED, seed=2).set_reference(sim).fit(data, data)
    assert a.model is b.model  # it never sees the data: one model serves every fold
    a.save(tmp_path / "sup")
    np.testing.assert_array_equal(a.score(data), Supervised.load(tmp_path / "sup").score(data))
    with pytest.raises(AnomalyHuntError, match="'supervised' model, not 'idealized'"):
        Idealized.load(tmp_path / "sup")


def test_refuses_without_simulation(config, events, tmp_path):
    lhco = cfgmod.validate({"data": {"source": "lhco"}})
    with pytest.raises(AnomalyHuntError, match="idealized.*needs simulated.*data.source is 'lhco'"):
        Simulation.from_config(lhco, WINDOW, "idealized")
    with pytest.raises(AnomalyHuntError, match="only data.source: toy"):
        require_toy(lhco, "supervised")
    data = WindowData.from_frame(events.iloc[:3000], WINDOW)
    for cls in (Idealized, Supervised):
        with pytest.raises(AnomalyHuntError, match="set_reference"):
            cls(**HGB).fit(data, data)
    # the stage command stops with one clear line before touching any input
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"source": "lhco"}}))
    argv = [
        "--config",
        str(tmp_path / "c.yaml"),
        "--events",
        "x",
        "--windows",
        "y",
        "--window",
        "w03",
        "--method",
        "idealized",
        "--out",
        str(tmp_path / "s.parquet"),
    ]
    assert cli.run(scores_main, argv) == 2


def test_stage_command_binds_the_simulation(config, events, tmp_path):
    cfg = {"seed": 3, "device": "cpu", "threads": 1, "scores": {"idealized": HGB}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    sub = events.iloc[:15000]
    sub.to_parquet(tmp_path / "events.parquet", index=False)
    win = {
        "id": "w03",
        "sr": [3.3, 3.7],
        "sb_low": [2.9, 3.3],
        "sb_high": [3.7, 4.1],
        "skipped": None,
    }
    (tmp_path / "windows.json").write_text(json.dumps({"windows": [win]}))
    out = tmp_path / "scores.parquet"
    argv = [
        "--config",
        str(tmp_path / "c.yaml"),
        "--events",
        str(tmp_path / "events.parquet"),
        "--windows",
        str(tmp_path / "windows.json"),
        "--window",
        "w03",
        "--method",
        "idealized",
        "--out",
        str(out),
    ]
    assert cli.run(scores_main, argv) == 0
    scores = read_parquet(out)
    assert len(scores) == int((WINDOW.region_of(sub["mjj"]) > 0).sum())
    assert np.isfinite(scores["score"]).all()
