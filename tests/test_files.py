"""Users' HDF5/ROOT files and the data-stage command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot

from anomalyhunt.data import toy
from anomalyhunt.data.__main__ import main
from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.data.files import read_events, write_events_root
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet, write_hdf

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return toy.generate(3000, 300, seed=9)


def test_root_round_trip(events: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "ev.root"
    write_events_root(events, path)
    back = read_events(path)
    pd.testing.assert_frame_equal(back, events, check_dtype=True)
    assert [p.name for p in tmp_path.iterdir()] == ["ev.root"]  # no temporary left behind
    with uproot.open(path) as f:  # a classic TTree, readable by any ROOT
        assert f.classnames() == {"events;1": "TTree"}


def test_root_without_label_and_tree_choice(events: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        f.mktree("a", {c: np.float64 for c in LHCO_COLUMNS}).extend(
            {c: events[c].to_numpy() for c in LHCO_COLUMNS}
        )
        f["b"] = {"x": np.arange(3.0)}  # uproot writes this one as an RNTuple
    with pytest.raises(AnomalyHuntError, match=r"2 trees \['a', 'b'\]; name the one"):
        read_events(path)
    got = read_events(path, tree="a")
    assert list(got.columns) == LHCO_COLUMNS and len(got) == len(events)
    with pytest.raises(AnomalyHuntError, match=r"missing branches of tree 'b'"):
        read_events(path, tree="b")
    with pytest.raises(AnomalyHuntError, match=r"no tree 'c'"):
        read_events(path, tree="c")


def test_hdf_only_key_and_errors(events: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "ev.hdf5"
    write_hdf(events, path, key="mine")
    pd.testing.assert_frame_equal(read_events(path), events)
    with pytest.raises(AnomalyHuntError, match="file not found"):
        read_events(tmp_path / "nope.h5")
    (tmp_path / "ev.csv").write_text("a,b\n")
    with pytest.raises(AnomalyHuntError, match="unknown file type '.csv'"):
        read_events(tmp_path / "ev.csv")


def test_features_command_same_for_h5_and_root(events: pd.DataFrame, tmp_path: Path) -> None:
    write_hdf(events, tmp_path / "ev.h5")
    write_events_root(events, tmp_path / "ev.root", tree="Events")
    main(["features", "--input", str(tmp_path / "ev.h5"), "--out", str(tmp_path / "h5.parquet")])
    main(["features", "--input", str(tmp_path / "ev.root"), "--tree", "Events",
          "--out", str(tmp_path / "root.parquet")])  # fmt: skip
    a, b = read_parquet(tmp_path / "h5.parquet"), read_parquet(tmp_path / "root.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (a["label"] == 1).sum() == 300 and a["mjj"].between(1.5, 10).all()


def test_events_command_toy_is_seeded(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "seed: 4\ndata:\n  toy: {n_background: 2000, n_signal: 100, mjj_correlation: 2}\n"
    )
    main(["events", "--config", str(cfg), "--out", str(tmp_path / "a.h5")])
    main(["events", "--config", str(cfg), "--out", str(tmp_path / "b.h5")])
    a, b = read_events(tmp_path / "a.h5"), read_events(tmp_path / "b.h5")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2100 and (a["label"] == 1).sum() == 100
    cfg.write_text("data:\n  source: file\n  file: {path: x.root}\n")
    with pytest.raises(AnomalyHuntError, match="needs no events step"):
        main(["events", "--config", str(cfg), "--out", str(tmp_path / "c.h5")])


def test_cli_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "anomalyhunt.data", "features", "--input", str(missing),
         "--out", str(tmp_path / "f.parquet")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"anomalyhunt: error: {missing}: file not found"]
    assert not (tmp_path / "f.parquet").exists()
