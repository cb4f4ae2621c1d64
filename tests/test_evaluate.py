"""Score metrics on cases small enough to work out by hand, then the command end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from anomalyhunt import cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.evaluate import (
    auc,
    evaluate_scores,
    jensen_shannon,
    main,
    max_sic,
    max_sic_point,
    rejection_at,
    roc,
    sculpting_jsd,
    sic,
)

# signal scores 6, 5, 3; background scores 4, 2, 1
LABELS = np.array([1, 1, 0, 1, 0, 0])
SCORES = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])


def test_roc_by_hand():
    r = roc(LABELS, SCORES)
    np.testing.assert_allclose(r.tpr, [1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(r.fpr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(r.n_background, [0, 0, 1, 1, 2, 3])
    np.testing.assert_array_equal(r.threshold, SCORES)
    assert auc(LABELS, SCORES) == pytest.approx(8 / 9)  # 8 of 9 signal-background pairs ordered
    # unknown labels (-1) are ignored
    assert auc(np.r_[LABELS, -1], np.r_[SCORES, 10.0]) == pytest.approx(8 / 9)


def test_ties_are_one_point_and_auc_matches_sklearn():
    r = roc(np.array([1, 0]), np.array([1.0, 1.0]))
    assert r.tpr.tolist() == [1.0] and r.fpr.tolist() == [1.0]
    assert auc(np.array([1, 0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(y, 1.0), 1)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_sic_and_max_sic_by_hand():
    np.testing.assert_allclose(sic([1.0, 0.5], [0.25, 0.01]), [2.0, 5.0])
    assert np.isnan(sic([0.5], [0.0])[0])
    # cuts with >= 1 background event: best is TPR 1 at FPR 1/3 -> sqrt(3)
    assert max_sic(LABELS, SCORES, min_background=1) == pytest.approx(math.sqrt(3))
    # >= 2 background events: TPR 1 at FPR 2/3
    point = max_sic_point(LABELS, SCORES, min_background=2)
    assert point["sic"] == pytest.approx(math.sqrt(1.5)) and point["n_background"] == 2
    assert point["threshold"] == 2.0
    with pytest.raises(AnomalyHuntError, match="fewer than 4 background"):
        max_sic(LABELS, SCORES, min_background=4)
    # perfect separation, 100 background events: the rule stops at 25 of them -> 1/sqrt(0.25)
    y = np.r_[np.ones(10), np.zeros(100)]
    s = np.r_[np.full(10, 2.0), np.linspace(0, 1, 100)]
    assert max_sic(y, s) == pytest.approx(2.0)


def test_rejection_by_hand():
    assert rejection_at(LABELS, SCORES, 0.5) == math.inf  # TPR 2/3 reached before any background
    assert rejection_at(LABELS, SCORES, 2 / 3) == math.inf
    assert rejection_at(LABELS, SCORES, 0.9) == pytest.approx(3.0)  # TPR 1 at FPR 1/3
    assert rejection_at(LABELS, SCORES, 1.0) == pytest.approx(3.0)
    with pytest.raises(AnomalyHuntError, match="efficiency"):
        rejection_at(LABELS, SCORES, 0.0)
    with pytest.raises(AnomalyHuntError, match="both signal"):
        roc(np.zeros(3), np.arange(3.0))


def test_jensen_shannon_by_hand():
    assert jensen_shannon([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert jensen_shannon([1, 0], [0, 5]) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4)
    expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2))
    assert jensen_shannon([1, 0], [1, 1]) == pytest.approx(expected)


def test_sculpting_by_hand():
    mjj = (np.arange(1000) + 0.5) / 1000  # uniform over 20 bins of [0, 1]
    edges = np.linspace(0, 1, 21)
    # score = mjj: keeping 10% keeps exactly the top two bins
    out = sculpting_jsd(mjj, mjj, keep=(0.1,), bins=edges)
    m_low, m_top = 0.05 / 2, (0.05 + 0.5) / 2
    kl_p = 18 * 0.05 * math.log2(0.05 / m_low) + 2 * 0.05 * math.log2(0.05 / m_top)
    kl_q = 2 * 0.5 * math.log2(0.5 / m_top)
    assert out[0.1]["jsd"] == pytest.approx(0.5 * (kl_p + kl_q))
    assert out[0.1]["n_kept"] == 100
    # a score that does not know mjj sculpts no more than a random cut of the same size
    rng = np.random.default_rng(1)
    m = rng.uniform(3, 4, 20000)
    flat = sculpting_jsd(m, rng.normal(size=len(m)), keep=(0.1, 0.01))
    for f in (0.1, 0.01):
        assert flat[f]["jsd"] < 3 * flat[f]["jsd_random"] + 1e-3
    assert sculpting_jsd(m, m)[0.1]["jsd"] > 0.5


def _table(seed: int, with_labels: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_b, n_s = 4000, 200
    label = np.r_[np.zeros(n_b), np.ones(n_s)].astype(np.int8)
    return pd.DataFrame(
        {
            "event_id": np.arange(n_b + n_s, dtype=np.int64),
            "mjj": np.r_[rng.uniform(2.9, 4.1, n_b), rng.normal(3.5, 0.05, n_s)],
            "region": np.r_[rng.integers(1, 3, n_b), np.full(n_s, 2)].astype(np.int8),
            "fold": np.zeros(n_b + n_s, np.int8),
            "label": label if with_labels else np.full(n_b + n_s, -1, np.int8),
            "score": rng.normal(label * 2.0, 1.0),
        }
    )


def test_evaluate_table_and_command(tmp_path):
    m = evaluate_scores(_table(0))
    assert 0.9 < m["auc"] < 1 and m["max_sic"] > 1 and set(m["rejection"]) == {"0.2", "0.5"}
    assert m["max_sic_at"]["n_background"] >= 25
    unlabelled = evaluate_scores(_table(0, with_labels=False))
    assert "auc" not in unlabelled and unlabelled["sculpting_on"].startswith("all events")
    (tmp_path / "w01" / "cwola").mkdir(parents=True)
    _table(0).to_parquet(tmp_path / "w01" / "cwola" / "scores.parquet")
    _table(1).to_parquet(tmp_path / "b.parquet")
    argv = [
        "--scores",
        str(tmp_path / "w01" / "cwola" / "scores.parquet"),
        "--scores",
        f"other={tmp_path / 'b.parquet'}",
        "--out",
        str(tmp_path / "m.json"),
        "--plot",
        str(tmp_path / "roc.png"),
        "--sculpt-plot",
        str(tmp_path / "sculpt.png"),
    ]
    assert cli.run(main, argv) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics["scores"]) == {"cwola/w01", "other"}
    assert metrics["rules"]["max_sic_min_background"] == 25
    assert (tmp_path / "roc.png").stat().st_size > 0 and (tmp_path / "sculpt.png").exists()
    assert cli.run(main, ["--scores", str(tmp_path / "nope.parquet"), "--out", "x.json"]) == 2
