"""CWoLa hunting on a synthetic window: it finds an injected resonance and is reproducible.

Background: ~20k events, mjj falling exponentially over the window [2.9, 4.1] TeV and features
independent of mjj. Signal: a few hundred events in the SR at one distinct point in feature space
(S/B of a few per cent in the SR, so the test is quick and unambiguous).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from anomalyhunt import FEATURES
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIGNAL_REGION, Window
from anomalyhunt.scores import WindowData, get_scorer, score_out_of_fold
from anomalyhunt.scores.cwola import CWoLa

WINDOW = Window("w01", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))

FAST = {
    "hgb": {
        "classifier": "hgb",
        "ensemble": 2,
        "hgb": {"max_iter": 100, "min_samples_leaf": 20, "early_stopping_rounds": 10},
    },
    "mlp": {
        "classifier": "mlp",
        "ensemble": 1,
        "mlp": {
            "hidden": [32, 32],
            "epochs": 15,
            "batch_size": 512,
            "learning_rate": 0.003,
            "patience": 3,
        },
    },
}


def make_window(n_bkg: int = 20000, n_sig: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mjj = 2.9 + rng.exponential(0.6, 3 * n_bkg)
    mjj = mjj[mjj < 4.1][:n_bkg]
    X = np.column_stack(
        [
            rng.normal(0.2, 0.1, n_bkg),
            rng.normal(0.1, 0.1, n_bkg),
            rng.uniform(0, 1, n_bkg),
            rng.uniform(0, 1, n_bkg),
        ]
    )
    Xs = rng.normal([0.5, 0.4, 0.2, 0.3], [0.02, 0.02, 0.05, 0.05], size=(n_sig, 4))
    df = pd.DataFrame(np.vstack([X, Xs]).astype(np.float32), columns=list(FEATURES))
    df.insert(0, "mjj", np.concatenate([mjj, rng.uniform(3.35, 3.65, n_sig)]))
    df["label"] = np.r_[np.zeros(n_bkg), np.ones(n_sig)].astype(np.int8)
    df.insert(0, "event_id", np.arange(len(df), dtype=np.int64))
    df["fold"] = rng.permutation(np.arange(len(df)) % 5).astype(np.int8)
    return df


def sr_auc(scores: pd.DataFrame) -> float:
    sr = scores[scores["region"] == SIGNAL_REGION]
    return roc_auc_score(sr["label"], sr["score"])


def run(df: pd.DataFrame, clf: str, seed: int = 11) -> pd.DataFrame:
    return score_out_of_fold(
        get_scorer("cwola"), FAST[clf], df, WINDOW, seed=seed, threads=1, validation_fraction=0.2
    )


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return make_window()


@pytest.mark.parametrize("clf", ["hgb", "mlp"])
def test_cwola_finds_the_injected_signal(events, clf):
    scores = run(events, clf)
    assert len(scores) == len(events) and scores["event_id"].is_unique
    auc = sr_auc(scores)
    assert auc > 0.8, f"{clf}: signal vs background AUC in the SR only {auc:.3f}"
    # the score cut enriches signal: the top 1% of SR events is mostly signal
    sr = scores[scores["region"] == SIGNAL_REGION]
    top = sr.nlargest(len(sr) // 100, "score")
    assert top["label"].mean() > 0.5


def test_cwola_without_signal_learns_nothing():
    """Features independent of mjj: SR-vs-SB classification is no better than chance."""
    scores = run(make_window(n_sig=0, seed=1), "hgb")
    sr_vs_sb = roc_auc_score(scores["region"] == SIGNAL_REGION, scores["score"])
    assert abs(sr_vs_sb - 0.5) < 0.03


def test_cwola_is_deterministic(events):
    small = events.iloc[:5000]
    for clf in ("hgb", "mlp"):
        a, b = run(small, clf), run(small, clf)
        pd.testing.assert_frame_equal(a, b)
    c = run(small, "hgb", seed=12)
    assert not np.array_equal(a["score"], c["score"])


def test_cwola_ignores_mjj_and_round_trips(events, tmp_path):
    data = WindowData.from_frame(events.iloc[:6000], WINDOW)
    idx = np.random.default_rng(0).permutation(len(data))
    train, valid = data.subset(idx[:4500]), data.subset(idx[4500:])
    for clf in ("hgb", "mlp"):
        scorer = CWoLa(**FAST[clf], seed=3).fit(train, valid)
        s = scorer.score(data)
        shifted = WindowData(data.X, data.mjj + 1.0, data.region, data.label)
        np.testing.assert_array_equal(s, scorer.score(shifted))  # mjj is never an input
        scorer.save(tmp_path / clf)
        np.testing.assert_array_equal(s, CWoLa.load(tmp_path / clf).score(data))


def test_cwola_config_and_input_errors(events, tmp_path):
    with pytest.raises(AnomalyHuntError, match="classifier 'svm' unknown"):
        CWoLa(classifier="svm")
    data = WindowData.from_frame(events.iloc[:2000], WINDOW)
    sb_only = data.subset(data.region == 1)
    with pytest.raises(AnomalyHuntError, match="no signal-region events"):
        CWoLa(**FAST["hgb"]).fit(sb_only, sb_only)
    with pytest.raises(AnomalyHuntError, match="not found"):
        CWoLa.load(tmp_path / "missing")


def correlated_window(seed: int = 2, n_bkg: int = 30000) -> pd.DataFrame:
    """Background only, with jet-mass-like features that grow with mjj (as real jet masses do)."""
    df = make_window(n_bkg=n_bkg, n_sig=0, seed=seed)
    scale = (df["mjj"].to_numpy() / 3.5) ** 3
    df[FEATURES[0]] = (df[FEATURES[0]] * scale).astype(np.float32)
    df[FEATURES[1]] = (df[FEATURES[1]] * scale).astype(np.float32)
    return df


def test_decorrelated_cwola_does_not_sculpt_a_bump():
    """location_scale removes most of the hump a 5% cut sculpts at the SR (not all: see docs)."""

    def sr_over_sb_efficiency(params: dict) -> float:
        scores = score_out_of_fold(
            get_scorer("cwola"), params, df, WINDOW, seed=4, threads=1, validation_fraction=0.2
        )
        keep = scores["score"] >= scores["score"].quantile(0.95)
        sr = scores["region"] == SIGNAL_REGION
        return keep[sr].mean() / keep[~sr].mean()

    df = correlated_window()
    plain = sr_over_sb_efficiency(FAST["hgb"])
    flat = sr_over_sb_efficiency({**FAST["hgb"], "decorrelate": "location_scale"})
    assert plain > 1.5  # the SR-vs-SB classifier learned mjj from the masses
    assert abs(flat - 1.0) < 0.5 * abs(plain - 1.0)


def test_decorrelator_round_trips(tmp_path):
    data = WindowData.from_frame(correlated_window(n_bkg=6000), WINDOW)
    idx = np.random.default_rng(0).permutation(len(data))
    params = {**FAST["hgb"], "decorrelate": "location_scale"}
    scorer = CWoLa(**params, seed=3).fit(data.subset(idx[:4500]), data.subset(idx[4500:]))
    scorer.save(tmp_path / "m")
    np.testing.assert_array_equal(scorer.score(data), CWoLa.load(tmp_path / "m").score(data))
    with pytest.raises(AnomalyHuntError, match="decorrelate 'pca' unknown"):
        CWoLa(decorrelate="pca")


def test_only_network_methods_ask_torch_for_a_device():
    # the scores command resolves config `device` (importing torch) only for these
    assert not CWoLa.uses_torch({"classifier": "hgb"}) and not CWoLa.uses_torch({})
    assert CWoLa.uses_torch({"classifier": "mlp"})
    assert not get_scorer("supervised").uses_torch({"classifier": "hgb"})
    assert get_scorer("idealized").uses_torch({"classifier": "mlp"})
    assert all(get_scorer(m).uses_torch({}) for m in ("anode", "cathode", "autoencoder", "vae"))
