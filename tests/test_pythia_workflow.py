"""Pythia generation wired into the DAG: chunk jobs, the merge, and a run that finishes.

A few hundred generated events only (about 40 QCD events/s per core); the point is that the
chunks, the merge and the features are right and that the whole workflow still finishes (the
evaluation records that so few background events cannot give a meaningful max SIC).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.test_workflow import snakemake

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

MX = 0.5  # TeV

PYTHIA_RUN = {
    "run": "pythia",
    "seed": 5,
    "data": {
        "source": "pythia",
        # 400 / 200 -> 2 QCD chunks, 150 / 200 -> 1 signal chunk
        "pythia": {
            "n_qcd": 400,
            "n_signal": 150,
            "chunk_size": 200,
            "signal": {"mjj": 3.5, "mx": MX, "my": 0.1},
        },
    },
    "regions": {
        "scan": {"min": 2.5, "max": 4.5},
        "n_inject": 30,
        "folds": 2,
        "min_events": {"sr": 5, "sb": 10},
    },
    "scores": {"cwola": {"ensemble": 1, "hgb": {"max_iter": 20, "min_samples_leaf": 5}}},
    "bumphunt": {"efficiencies": [1.0], "limits": False},  # limits: tested elsewhere
    "summary": {"toys": 20},
}


@pytest.fixture(scope="module")
def pythia_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pythia")
    (workdir / "config.yaml").write_text(yaml.safe_dump(PYTHIA_RUN))
    proc = snakemake(workdir, "--cores", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir


@pytest.mark.workflow
def test_chunks_and_merge_ran(pythia_run):
    out = pythia_run / "results" / "pythia"
    chunks = sorted(p.name for p in (out / "data" / "pythia").glob("*.h5"))
    assert chunks == ["qcd_0.h5", "qcd_1.h5", "signal_0.h5"]
    for name in ("qcd_0", "qcd_1", "signal_0"):
        assert (out / "logs" / "pythia_chunk" / f"{name}.log").exists()
    merge_log = (out / "logs" / "pythia_merge.log").read_text()
    assert "qcd: 400 generated" in merge_log and "signal: 150 generated" in merge_log
    events = pd.read_hdf(out / "data" / "pythia_events.h5", "df")
    labels = events["label"].to_numpy()
    assert np.all(np.diff(labels) >= 0), "QCD (label 0) must come first"
    assert 0 < np.sum(labels == 0) <= 400 and 0 < np.sum(labels == 1) <= 150


@pytest.mark.workflow
def test_features_look_like_qcd_and_the_signal(pythia_run):
    features = pd.read_parquet(pythia_run / "results" / "pythia" / "data" / "features.parquet")
    qcd = features[features["label"] == 0]
    # both jets pooled: QCD jets are mostly one-prong, tau21 well above the signal's two-prong X
    pooled = np.concatenate([qcd["tau21_light"], qcd["tau21_heavy"]])
    assert 0.4 < np.median(pooled) < 0.7, np.median(pooled)
    # the lighter (narrower) jet sits higher (about 0.7 here, 0.45 for the heavier one)
    for col in ("tau21_light", "tau21_heavy"):
        assert 0.3 < qcd[col].median() < 0.85, (col, qcd[col].median())
    sig = features[features["label"] == 1]
    mj_heavy = sig["mj_light"] + sig["delta_mj"]
    assert abs(mj_heavy.median() - MX) < 0.2 * MX, mj_heavy.median()


@pytest.mark.workflow
def test_the_run_reaches_its_summary(pythia_run):
    summary = json.loads((pythia_run / "results" / "pythia" / "summary.json").read_text())
    assert summary["methods"] == ["cwola"]


@pytest.mark.workflow
def test_pythia_finished_run_has_nothing_to_do(pythia_run):
    proc = snakemake(pythia_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
