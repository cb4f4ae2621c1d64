"""A killed scoring job resumes from its fold checkpoints and ends with the uninterrupted scores.

Preempted or killed training jobs are common on batch systems; the scores stage checkpoints every
finished fold in ``--model-dir`` so the rerun only trains what is missing. These tests kill a real
``python -m anomalyhunt.scores`` process between folds and check the resumed result bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from anomalyhunt import cli
from anomalyhunt.io import read_parquet
from anomalyhunt.scores.__main__ import main as scores_main
from tests.test_scores import make_events

FOLDS = 5
#: Slow enough (no early stopping, two members) that a fold takes a moment, so the test can kill
#: the job between folds; small enough that a whole run stays within seconds.
CWOLA = {
    "classifier": "hgb",
    "ensemble": 2,
    "hgb": {"max_iter": 60, "min_samples_leaf": 20, "early_stopping_rounds": 1000},
}
WINDOWS = {
    "windows": [{"id": "w01", "sr": [3.3, 3.7], "sb_low": [2.9, 3.3], "sb_high": [3.7, 4.1]}],
    "folds": FOLDS,
}


def _setup(directory: Path, cwola: dict = CWOLA) -> list[str]:
    """Write config, events and windows into ``directory``; return the command's arguments."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"seed": 11, "device": "cpu", "threads": 1, "scores": {"cwola": cwola}}
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    make_events(8000, 200, folds=FOLDS, seed=1).to_parquet(directory / "events.parquet")
    (directory / "windows.json").write_text(json.dumps(WINDOWS))
    return [
        "--config",
        str(directory / "config.yaml"),
        "--events",
        str(directory / "events.parquet"),
        "--windows",
        str(directory / "windows.json"),
        "--window",
        "w01",
        "--method",
        "cwola",
        "--out",
        str(directory / "scores.parquet"),
        "--model-dir",
        str(directory / "models"),
        "--keep-checkpoints",  # these tests look at the markers after success
    ]


def _done(directory: Path) -> list[Path]:
    return sorted((directory / "models").glob("fold*.done.json"))


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "anomalyhunt.scores", *argv]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The scores of one uninterrupted run (in process: same code, no interpreter start-up)."""
    directory = tmp_path_factory.mktemp("uninterrupted")
    assert cli.run(scores_main, _setup(directory)) == 0
    assert len(_done(directory)) == FOLDS
    return read_parquet(directory / "scores.parquet")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> tuple[Path, str]:
    """A run killed (SIGKILL) after its first finished fold, then rerun to completion."""
    directory = tmp_path_factory.mktemp("killed")
    argv = _setup(directory)
    proc = subprocess.Popen(
        _command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()
    )
    try:
        deadline = time.monotonic() + 120
        while not _done(directory) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        finished_at_kill = len(_done(directory))
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert alive, "the job ended before it could be killed"
    assert 1 <= finished_at_kill < FOLDS
    assert proc.returncode == -signal.SIGKILL
    assert not (directory / "scores.parquet").exists()
    n_done = len(_done(directory))
    assert n_done < FOLDS, "all folds finished before the kill took effect"

    rerun = subprocess.run(_command(argv), capture_output=True, text=True, timeout=300, env=_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return directory, rerun.stderr


def test_killed_job_leaves_no_scores_and_resumes_finished_folds(resumed):
    directory, log = resumed
    n_resumed = log.count("resumed fold")
    assert 1 <= n_resumed < FOLDS, log
    assert "retraining" not in log  # a fold killed mid-way has no marker: trained, not 'stale'
    assert len(_done(directory)) == FOLDS
    # nothing half-written is left beside the checkpoints
    assert not list((directory / "models").glob(".*"))


def test_resumed_scores_equal_the_uninterrupted_run_exactly(resumed, reference):
    directory, _ = resumed
    scores = read_parquet(directory / "scores.parquet")
    pd.testing.assert_frame_equal(scores, reference, check_exact=True)
    np.testing.assert_array_equal(scores["score"].to_numpy(), reference["score"].to_numpy())


def test_changed_config_retrains_instead_of_resuming(resumed, reference, caplog):
    directory, _ = resumed
    argv = _setup(directory, CWOLA | {"ensemble": 1})
    caplog.set_level("INFO", logger="anomalyhunt")
    assert cli.run(scores_main, argv) == 0
    text = caplog.text
    assert "resumed fold" not in text
    assert text.count("fingerprint differs in params") == FOLDS, text
    changed = read_parquet(directory / "scores.parquet")
    assert not np.array_equal(changed["score"].to_numpy(), reference["score"].to_numpy())
    # the checkpoints now vouch for the new settings: the same config resumes every fold
    caplog.clear()
    assert cli.run(scores_main, argv) == 0
    assert caplog.text.count("resumed fold") == FOLDS
    pd.testing.assert_frame_equal(read_parquet(directory / "scores.parquet"), changed)


def test_incomplete_or_tampered_checkpoints_are_retrained(tmp_path, caplog):
    """A model without marker, a corrupted scores file or --no-resume: the fold is trained again."""
    fast = {"classifier": "hgb", "ensemble": 1, "hgb": {"max_iter": 5, "min_samples_leaf": 20}}
    argv = _setup(tmp_path, fast)
    assert cli.run(scores_main, argv) == 0
    first = read_parquet(tmp_path / "scores.parquet")
    models = tmp_path / "models"
    (models / "fold0.done.json").unlink()  # as if killed between the model and the marker
    (models / "fold1.scores.npz").write_bytes(b"garbage")
    caplog.set_level("INFO", logger="anomalyhunt")
    assert cli.run(scores_main, argv) == 0
    assert caplog.text.count("resumed fold") == FOLDS - 2
    assert "retraining fold 1" in caplog.text and "does not match the marker" in caplog.text
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "scores.parquet"), first)
    caplog.clear()
    assert cli.run(scores_main, [*argv, "--no-resume"]) == 0
    assert "resumed fold" not in caplog.text
    assert len(_done(tmp_path)) == FOLDS
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "scores.parquet"), first)


def test_a_finished_job_clears_its_checkpoints_so_a_forced_rerun_retrains(tmp_path, caplog):
    """Checkpoints finish interrupted jobs; a finished job removes them all (fold models, score
    files, markers: about 2.7 MB a window), so `snakemake --forcerun scores` trains afresh."""
    fast = {"classifier": "hgb", "ensemble": 1, "hgb": {"max_iter": 5, "min_samples_leaf": 20}}
    argv = [a for a in _setup(tmp_path, fast) if a != "--keep-checkpoints"]
    assert cli.run(scores_main, argv) == 0
    assert _done(tmp_path) == []
    assert not (tmp_path / "models").exists(), "the README promises that checkpoints are cleared"
    first = read_parquet(tmp_path / "scores.parquet")
    caplog.set_level("INFO", logger="anomalyhunt")
    assert cli.run(scores_main, argv) == 0
    assert "resumed fold" not in caplog.text
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "scores.parquet"), first)
