"""The bump-hunt stage: per-fold cuts, binning, and a window hunt on a known spectrum."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomalyhunt import bumphunt
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import Window
from tests.conftest import run_command

WINDOW = Window("w01", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))


def _scores(n_bkg: int = 60_000, n_sig: int = 0, seed: int = 0) -> pd.DataFrame:
    """Falling mjj spectrum, background scores U(0,1) with a per-fold offset, signal scores near 1."""
    rng = np.random.default_rng(seed)
    mjj = 2.9 + rng.exponential(0.45, 4 * n_bkg)
    mjj = mjj[mjj < 4.1][:n_bkg]
    sig_mjj = rng.normal(3.5, 0.08, n_sig)
    fold = rng.integers(0, 5, len(mjj) + n_sig)
    score = np.concatenate([rng.random(len(mjj)), 1.0 + 0.01 * rng.random(n_sig)]) + fold  # scale differs per fold
    m = np.concatenate([mjj, sig_mjj])
    return pd.DataFrame({"event_id": np.arange(len(m)), "mjj": m, "region": WINDOW.region_of(m),
                         "fold": fold, "label": np.r_[np.zeros(len(mjj)), np.ones(n_sig)].astype(np.int8),
                         "score": score})


def test_cut_keeps_the_fraction_in_every_fold():
    scores = _scores()
    keep, thresholds = bumphunt.cut_mask(scores, 0.1)
    assert set(thresholds) == set(range(5))
    for f in range(5):
        sel = scores["fold"].to_numpy() == f
        assert keep[sel].mean() == pytest.approx(0.1, abs=0.002)
    all_kept, none = bumphunt.cut_mask(scores, 1.0)
    assert all_kept.all() and none == {}


def test_bin_width_must_divide_the_window():
    assert len(bumphunt.bin_edges(WINDOW, 0.05)) == 25
    with pytest.raises(AnomalyHuntError, match="bin_width"):
        bumphunt.bin_edges(WINDOW, 0.07)


def test_hunt_finds_a_signal_that_the_cut_enhances():
    scores = _scores(n_bkg=60_000, n_sig=300)
    no_cut, tight = bumphunt.hunt(scores, WINDOW, [1.0, 0.01], 0.05)
    assert tight["valid"] and no_cut["valid"]
    assert tight["z"] > 5 > no_cut["z"]
    assert tight["n_signal_sr"] > 250
    assert tight["limit"]["observed"] > tight["limit"]["expected"]


def test_background_only_hunt_is_quiet():
    results = bumphunt.hunt(_scores(seed=5), WINDOW, [1.0, 0.1, 0.01], 0.05)
    assert all(r["valid"] and r["z"] < 3 for r in results)


def test_cli_skipped_window_writes_a_skip_record(tmp_path):
    windows = {"windows": [{"id": "w01", "sr": [3.3, 3.7], "sb_low": [2.9, 3.3], "sb_high": [3.7, 4.1],
                            "skipped": "12 events in the signal region"}]}
    (tmp_path / "windows.json").write_text(json.dumps(windows))
    _scores().iloc[:0].to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "c.yaml").write_text("run: t\n")
    proc = run_command(["-m", "anomalyhunt.bumphunt", "--config", str(tmp_path / "c.yaml"),
                        "--windows", str(tmp_path / "windows.json"), "--window", "w01", "--method", "cwola",
                        "--scores", str(tmp_path / "scores.parquet"), "--out", str(tmp_path / "fit.json"),
                        "--plot", str(tmp_path / "fits.png")])
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["skipped"] == "12 events in the signal region" and fit["cuts"] == []
    assert (tmp_path / "fits.png").exists()


def test_cli_unknown_window_is_one_line(tmp_path):
    (tmp_path / "windows.json").write_text(json.dumps({"windows": []}))
    (tmp_path / "c.yaml").write_text("run: t\n")
    proc = run_command(["-m", "anomalyhunt.bumphunt", "--config", str(tmp_path / "c.yaml"),
                        "--windows", str(tmp_path / "windows.json"), "--window", "w07", "--method", "cwola",
                        "--scores", "x.parquet", "--out", str(tmp_path / "fit.json")])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("anomalyhunt: error: window 'w07'")
