"""Windows, injection and folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalyhunt import FEATURE_COLUMNS, config, regions
from anomalyhunt.errors import AnomalyHuntError


def _features(n_bkg: int, n_sig: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_bkg + n_sig
    df = pd.DataFrame({c: rng.random(n) for c in FEATURE_COLUMNS[1:-1]})
    df.insert(
        0, "mjj", np.concatenate([2.7 + rng.exponential(0.5, n_bkg), rng.normal(3.5, 0.1, n_sig)])
    )
    df["label"] = np.concatenate([np.zeros(n_bkg), np.ones(n_sig)]).astype(np.int8)
    return df


def test_default_windows_tile_the_scan():
    cfg = config.validate({})
    wins = regions.windows(cfg["regions"])
    assert [w.id for w in wins][:2] == ["w00", "w01"]
    assert (
        wins[1].sr == (3.3, 3.7) and wins[1].sb_low == (2.7, 3.3) and wins[1].sb_high == (3.7, 4.3)
    )
    assert wins[0].sb_low[0] >= cfg["regions"]["scan"]["min"]
    assert wins[-1].sb_high[1] <= cfg["regions"]["scan"]["max"] + 1e-9
    assert np.allclose(np.diff([w.centre for w in wins]), cfg["regions"]["step"])


def test_region_codes():
    w = regions.Window("w", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))
    codes = w.region_of(np.array([2.8, 2.9, 3.29, 3.3, 3.69, 3.7, 4.09, 4.1]))
    assert codes.tolist() == [0, 1, 1, 2, 2, 1, 1, 0]


@pytest.mark.parametrize("n_inject", [0, 1000])
def test_injection_keeps_all_background_and_n_signal(n_inject):
    feats = _features(20_000, 5_000)
    data = regions.inject_signal(feats, n_inject, seed=3)
    assert (data["label"] == 0).sum() == 20_000
    assert (data["label"] == 1).sum() == n_inject
    assert data["event_id"].is_unique
    np.testing.assert_array_equal(
        feats.loc[data["event_id"], "mjj"].to_numpy(), data["mjj"].to_numpy()
    )
    assert not (np.diff(data["event_id"].to_numpy()) > 0).all(), "sample must be shuffled"


def test_injection_is_reproducible_and_seeded():
    feats = _features(5000, 1000)
    a = regions.inject_signal(feats, 100, seed=7)
    b = regions.inject_signal(feats, 100, seed=7)
    c = regions.inject_signal(feats, 100, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["event_id"].equals(c["event_id"])


def test_too_much_injection_is_a_clear_error():
    with pytest.raises(AnomalyHuntError, match="only 10 signal events"):
        regions.inject_signal(_features(100, 10), 11, seed=0)


def test_folds_are_balanced():
    folds = regions.assign_folds(10_003, 5, seed=1)
    counts = np.bincount(folds)
    assert len(counts) == 5 and counts.max() - counts.min() <= 1


def test_sparse_windows_are_skipped_with_a_reason():
    cfg = config.validate({"regions": {"n_inject": 100}})
    data, meta = regions.build(_features(3000, 500), cfg)
    skipped = [w for w in meta["windows"] if w["skipped"]]
    kept = [w for w in meta["windows"] if not w["skipped"]]
    assert kept and skipped
    assert all("fewer than regions.min_events" in w["skipped"] for w in skipped)
    assert meta["n_injected"] == 100 and len(data) == 3100
    assert set(np.unique(data["fold"])) == set(range(5))
