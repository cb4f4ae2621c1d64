"""Sideband-trained autoencoder and VAE scores: out of fold, find an unusual signal, reproducible.

Uses the synthetic window of test_cwola (flat features, a compact signal far in their tails), so
reconstruction error and -ELBO have an easy, unambiguous job.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIGNAL_REGION
from anomalyhunt.scores import WindowData, get_scorer, score_out_of_fold
from anomalyhunt.scores.autoencoder import VAE, Autoencoder
from tests.test_cwola import WINDOW, make_window

FAST = {"hidden": [16, 16], "latent": 2, "epochs": 25, "batch_size": 256, "patience": 4}


@pytest.fixture(scope="module")
def events():
    return make_window(n_bkg=6000, n_sig=250, seed=3)


@pytest.mark.parametrize("method", ["autoencoder", "vae"])
def test_out_of_fold_scores_separate_the_signal(events, method):
    scores = score_out_of_fold(get_scorer(method), FAST, events, WINDOW, seed=5, threads=1)
    inside = WINDOW.region_of(events["mjj"].to_numpy()) > 0
    assert len(scores) == int(inside.sum()) and scores["event_id"].is_unique
    assert set(scores["event_id"]) == set(events.loc[inside, "event_id"])
    assert np.isfinite(scores["score"]).all()
    sr = scores[scores["region"] == SIGNAL_REGION]
    auc = roc_auc_score(sr["label"], sr["score"])
    assert auc > 0.7, f"{method}: SR signal-vs-background AUC only {auc:.3f}"


@pytest.mark.parametrize("cls", [Autoencoder, VAE])
def test_trains_on_sidebands_deterministic_and_round_trips(events, tmp_path, cls):
    data = WindowData.from_frame(events.iloc[:3000], WINDOW)
    idx = np.random.default_rng(0).permutation(len(data))
    train, valid = data.subset(idx[:2400]), data.subset(idx[2400:])
    a = cls(**FAST, seed=7).fit(train, valid)
    s = a.score(data)
    assert s.shape == (len(data),) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, a.score(data))  # scoring itself is seeded
    np.testing.assert_array_equal(s, cls(**FAST, seed=7).fit(train, valid).score(data))
    assert a.history and a.best_epoch is not None
    # SR events of the training set play no part: moving them changes nothing
    no_sr = cls(**FAST, seed=7).fit(train.subset(train.in_sb), valid.subset(valid.in_sb))
    np.testing.assert_array_equal(s, no_sr.score(data))
    a.save(tmp_path / "model.pt")
    np.testing.assert_array_equal(s, cls.load(tmp_path / "model.pt").score(data))
    assert not np.array_equal(s, cls(**FAST, seed=8).fit(train, valid).score(data))


def test_errors(events, tmp_path):
    data = WindowData.from_frame(events.iloc[:2000], WINDOW)
    sr_only = data.subset(data.in_sr)
    with pytest.raises(AnomalyHuntError, match="no sideband events"):
        Autoencoder(**FAST).fit(sr_only, sr_only)
    with pytest.raises(AnomalyHuntError, match="latent"):
        VAE(latent=0)
    with pytest.raises(AnomalyHuntError, match="not found"):
        VAE.load(tmp_path / "missing.pt")
    ae = Autoencoder(**FAST | {"epochs": 1}).fit(data, data)
    ae.save(tmp_path / "ae.pt")
    with pytest.raises(AnomalyHuntError, match="not an anomalyhunt 'vae' model"):
        VAE.load(tmp_path / "ae.pt")
