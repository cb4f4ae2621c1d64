"""Users' HDF5/ROOT files and the data-stage command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from anomalyhunt.data import files as read_files
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
    main(
        [
            "features",
            "--input",
            str(tmp_path / "ev.root"),
            "--tree",
            "Events",
            "--out",
            str(tmp_path / "root.parquet"),
        ]
    )
    a, b = read_parquet(tmp_path / "h5.parquet"), read_parquet(tmp_path / "root.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (a["label"] == 1).sum() == 300 and a["mjj"].between(1.5, 10).all()


def test_events_command_toy_is_seeded(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "seed: 4\ndata:\n  toy: {n_background: 2000, n_signal: 100, mjj_correlation: 2}\n"
        "regions: {n_inject: 50}\n"  # at most the signal pool, checked when the config is loaded
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
        [
            sys.executable,
            "-m",
            "anomalyhunt.data",
            "features",
            "--input",
            str(missing),
            "--out",
            str(tmp_path / "f.parquet"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"anomalyhunt: error: {missing}: file not found"]
    assert not (tmp_path / "f.parquet").exists()


def test_root_branch_names_and_chunked_reading(events: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "renamed.root"
    names = {c: f"FatJet_{c}" for c in LHCO_COLUMNS} | {"label": "is_signal"}
    with uproot.recreate(path) as f:
        f.mktree("Events", {names[c]: events[c].dtype for c in events.columns}).extend(
            {names[c]: events[c].to_numpy() for c in events.columns}
        )
    with pytest.raises(AnomalyHuntError, match="under the names in data.file.branches"):
        read_events(path, branches={"mj1": "nope"})
    got = read_files.read_root_events(path, branches=names, step_size=500)  # many small chunks
    pd.testing.assert_frame_equal(got, events)
    # the same mapping renames the columns of an HDF5 file
    write_hdf(events.rename(columns=names), tmp_path / "renamed.h5")
    pd.testing.assert_frame_equal(read_events(tmp_path / "renamed.h5", branches=names), events)


def _jagged_jets(events: pd.DataFrame, rng: np.random.Generator) -> ak.Array:
    """Per-event jet collections: the two LHCO jets plus 0-2 softer ones, in shuffled order."""
    per_jet = {}
    for tag in ("j1", "j2"):
        px, py, pz = (events[f"{q}{tag}"].to_numpy() for q in ("px", "py", "pz"))
        pt = np.hypot(px, py)
        per_jet[tag] = {
            "pt": pt,
            "eta": np.arcsinh(pz / pt),
            "phi": np.arctan2(py, px),
            "mass": events[f"m{tag}"].to_numpy(),
            **{f"tau{n}": events[f"tau{n}{tag}"].to_numpy() for n in (1, 2, 3)},
        }
    rows = []
    for i in range(len(events)):
        jets_i = [{k: float(v[i]) for k, v in per_jet[tag].items()} for tag in ("j1", "j2")]
        for _ in range(rng.integers(0, 3)):
            jets_i.append(
                {
                    "pt": float(rng.uniform(20, 100)),
                    "eta": 0.5,
                    "phi": 1.0,
                    "mass": 5.0,
                    "tau1": 0.3,
                    "tau2": 0.2,
                    "tau3": 0.1,
                }
            )
        rng.shuffle(jets_i)
        rows.append(jets_i)
    rows.append(
        [
            {
                "pt": 1500.0,
                "eta": 0.0,
                "phi": 0.0,
                "mass": 50.0,
                "tau1": 0.2,
                "tau2": 0.1,
                "tau3": 0.05,
            }
        ]
    )  # one event with a single jet: dropped
    return ak.Array(rows)


def test_root_jagged_jets_give_the_same_features(events: pd.DataFrame, tmp_path: Path) -> None:
    from anomalyhunt.data.features import compute_features

    small = events.iloc[:500].reset_index(drop=True)
    jets = _jagged_jets(small, np.random.default_rng(0))
    label = np.append(small["label"].to_numpy(), 0).astype(np.int32)
    path = tmp_path / "nano.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {"Jet": jets.type.content, "truth": np.int32}).extend(
            {"Jet": jets, "truth": label}
        )
    mapping = {
        "pt": "Jet_pt",
        "eta": "Jet_eta",
        "phi": "Jet_phi",
        "mass": "Jet_mass",
        "tau1": "Jet_tau1",
        "tau2": "Jet_tau2",
        "tau3": None,
    }
    got = read_files.read_root_events(
        path, jets=mapping, branches={"label": "truth"}, step_size=100
    )
    assert len(got) == len(small) and (got["tau3j1"] == 0).all()
    want = compute_features(small)
    have = compute_features(got)
    pd.testing.assert_frame_equal(have, want, rtol=1e-9, check_dtype=False)
    with pytest.raises(AnomalyHuntError, match=r"no branches \['FatJet_pt'\]"):
        read_files.read_root_events(path, jets={**mapping, "pt": "FatJet_pt"})
    with pytest.raises(AnomalyHuntError, match="variable number of entries"):
        read_files.read_root_events(path, branches={c: "Jet_pt" for c in LHCO_COLUMNS})

    # through the command and a config, as the workflow runs it
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data:\n  source: file\n  file:\n    path: {path}\n    tree: Events\n"
        "    branches: {label: truth}\n    jets: {pt: Jet_pt, eta: Jet_eta, phi: Jet_phi, "
        "mass: Jet_mass, tau1: Jet_tau1, tau2: Jet_tau2}\n"
    )
    main(
        [
            "features",
            "--config",
            str(cfg),
            "--input",
            str(path),
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "f.parquet"), want, rtol=1e-9)
