"""A particle-level LHCO file through the whole workflow: chunk jobs, ordered merge, ROOT output.

The file (2000 synthetic events in the published 700-particle layout) is made here and named
in data.lhco_raw.path, so nothing is downloaded; output.root adds the ROOT copies of the results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
import yaml

from tests.test_workflow import snakemake

pytest.importorskip("fastjet")

from anomalyhunt.bumphunt import cut_mask  # noqa: E402
from anomalyhunt.data import lhco_raw  # noqa: E402

N = 2000


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    workdir = tmp_path_factory.mktemp("lhco_raw")
    pt, eta, phi, label = lhco_raw.synthetic_events(N, seed=8, signal_fraction=0.15)
    lhco_raw.write_raw(workdir / "raw.h5", pt, eta, phi, label)
    config = {
        "run": "raw",
        "seed": 3,
        "data": {
            "source": "lhco_raw",
            "lhco_raw": {
                "path": str(workdir / "raw.h5"),
                "n_events": N,
                "chunk_size": 1000,
                "batch_size": 300,
            },
        },
        "regions": {
            "scan": {"min": 2.6, "max": 4.6},
            "n_inject": 30,
            "folds": 2,
            "min_events": {"sr": 5, "sb": 10},
        },
        "scores": {"cwola": {"ensemble": 1, "hgb": {"max_iter": 20, "min_samples_leaf": 5}}},
        "bumphunt": {"efficiencies": [1.0, 0.1], "limits": False},  # limits: tested elsewhere
        "summary": {"toys": 20},
        "output": {"root": True, "root_keep_fraction": 0.1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "--cores", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir, label


@pytest.mark.workflow
def test_chunks_merge_in_file_order(raw_run: tuple[Path, np.ndarray]) -> None:
    workdir, label = raw_run
    out = workdir / "results" / "raw"
    assert sorted(p.name for p in (out / "data" / "lhco_raw").glob("*.h5")) == [
        "chunk_0.h5",
        "chunk_1.h5",
    ]
    events = pd.read_hdf(out / "data" / "lhco_raw_events.h5", "df")
    np.testing.assert_array_equal(events["label"].to_numpy(), label)  # file order, nothing dropped
    features = pd.read_parquet(out / "data" / "features.parquet")
    assert len(features) == N and features["tau21_light"].between(0, 1).all()


@pytest.mark.workflow
def test_root_copies_of_the_results(raw_run: tuple[Path, np.ndarray]) -> None:
    workdir, _ = raw_run
    windows = sorted((workdir / "results" / "raw" / "windows").glob("w*/cwola"))
    assert windows
    for wdir in windows:
        scores = pd.read_parquet(wdir / "scores.parquet")
        with uproot.open(wdir / "scores.root") as f:
            assert f["events"].num_entries == len(scores)
            assert {"score", "tau21_heavy", "event_id"} <= set(f["events"].keys())
        with uproot.open(wdir / "selected.root") as f:
            n_sel = f["events"].num_entries
        assert n_sel == cut_mask(scores, 0.1)[0].sum()  # the bump hunt's cut (ties kept)


@pytest.mark.workflow
def test_finished_raw_run_has_nothing_to_do(raw_run: tuple[Path, np.ndarray]) -> None:
    proc = snakemake(raw_run[0], "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
