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
        scorer = CWoLa(FAST[clf], seed=3).fit(train, valid)
        s = scorer.score(data)
        shifted = WindowData(data.X, data.mjj + 1.0, data.region, data.label)
        np.testing.assert_array_equal(s, scorer.score(shifted))  # mjj is never an input
        scorer.save(tmp_path / clf)
        np.testing.assert_array_equal(s, CWoLa.load(tmp_path / clf).score(data))


def test_cwola_config_and_input_errors(events, tmp_path):
    with pytest.raises(AnomalyHuntError, match="classifier 'svm' unknown"):
        CWoLa({"classifier": "svm"}, seed=0)
    data = WindowData.from_frame(events.iloc[:2000], WINDOW)
    sb_only = data.subset(data.region == 1)
    with pytest.raises(AnomalyHuntError, match="no signal-region events"):
        CWoLa(FAST["hgb"], seed=0).fit(sb_only, sb_only)
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
        scores = score_out_of_fold(get_scorer("cwola"), params, df, WINDOW, seed=4, threads=1,
                                   validation_fraction=0.2)
        keep = scores["score"] >= scores["score"].quantile(0.95)
        sr = scores["region"] == SIGNAL_REGION
        return keep[sr].mean() / keep[~sr].mean()

    df = correlated_window()
    plain = sr_over_sb_efficiency(FAST["hgb"])
    flat = sr_over_sb_efficiency({**FAST["hgb"], "decorrelate": "location_scale"})
    quantile = sr_over_sb_efficiency({**FAST["hgb"], "decorrelate": "quantile"})
    assert plain > 1.5  # the SR-vs-SB classifier learned mjj from the masses
    assert abs(flat - 1.0) < 0.5 * abs(plain - 1.0)
    assert abs(quantile - 1.0) < 0.5 * abs(plain - 1.0)


def tail_flatness(Z: np.ndarray, mjj: np.ndarray, q: float = 0.99, n_bins: int = 10) -> float:
    """chi2 / ndf of the counts beyond each feature's q-quantile in equal-count mjj bins."""
    edges = np.quantile(mjj, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, mjj) - 1, 0, n_bins - 1)
    chi2 = []
    for j in range(Z.shape[1]):
        sel = Z[:, j] > np.quantile(Z[:, j], q)
        n = np.bincount(idx[sel], minlength=n_bins)
        exp = np.bincount(idx, minlength=n_bins) * sel.mean()
        chi2.append(((n - exp) ** 2 / exp).sum() / n_bins)
    return max(chi2)


def test_quantile_decorrelation_flattens_the_tails_and_keeps_an_sr_signal():
    """A jet mass whose tail grows faster with mjj than its median: location-scale leaves the tail's
    mjj dependence, the sideband quantile transform removes it, and a signal in the SR (never used
    in the fit) stays in the tail."""
    from anomalyhunt.scores.decorrelate import ConditionalQuantile, LocationScale

    rng = np.random.default_rng(5)
    n = 200_000
    mjj = 3.3 + rng.exponential(0.5, n)
    mjj = mjj[mjj < 4.9][:120_000]
    # a lognormal mass whose width grows with mjj: the tail moves faster than the median
    mass = 0.1 * (mjj / 3.5) ** 3 * np.exp(rng.normal(0, 0.3 + 0.4 * (mjj - 3.3), mjj.size))
    X = np.column_stack([mass, rng.uniform(size=mjj.size)])
    sb = (mjj < 3.9) | (mjj > 4.3)
    assert tail_flatness(X, mjj) > 20
    assert tail_flatness(LocationScale().fit(X, mjj).transform(X, mjj), mjj) > 5
    cq = ConditionalQuantile().fit(X[sb], mjj[sb])
    assert tail_flatness(cq.transform(X, mjj), mjj) < 3
    # 300 signal events in the SR at a mass the background reaches only in its far tail
    sig_mjj = rng.uniform(3.95, 4.25, 300)
    sig = np.column_stack([np.full(300, 0.1 * (4.1 / 3.5) ** 3 * np.exp(3 * 0.54)), rng.uniform(size=300)])
    z_sig = cq.transform(sig, sig_mjj)[:, 0]
    assert np.median(z_sig) > 2.5
    again = ConditionalQuantile.from_dict(cq.to_dict())
    np.testing.assert_array_equal(again.transform(sig, sig_mjj), cq.transform(sig, sig_mjj))


def test_decorrelator_round_trips(tmp_path):
    data = WindowData.from_frame(correlated_window(n_bkg=6000), WINDOW)
    idx = np.random.default_rng(0).permutation(len(data))
    for kind in ("location_scale", "quantile"):
        params = {**FAST["hgb"], "decorrelate": kind}
        scorer = CWoLa(params, seed=3).fit(data.subset(idx[:4500]), data.subset(idx[4500:]))
        scorer.save(tmp_path / kind)
        np.testing.assert_array_equal(scorer.score(data), CWoLa.load(tmp_path / kind).score(data))
    with pytest.raises(AnomalyHuntError, match="decorrelate 'pca' unknown"):
        CWoLa({"decorrelate": "pca"}, seed=0)
