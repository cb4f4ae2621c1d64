"""ROOT copies of the results: every row, features joined, and the bump hunt's score cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot

from anomalyhunt.bumphunt import cut_mask
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.export import main
from anomalyhunt.io import write_parquet
from anomalyhunt.scores.kfold import empty_scores


def _tables(n: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    events = pd.DataFrame(
        {
            "event_id": np.arange(3 * n, dtype=np.int64),
            "mjj": rng.uniform(2.5, 6, 3 * n),
            "mj_light": rng.uniform(0, 0.5, 3 * n),
            "delta_mj": rng.uniform(0, 0.5, 3 * n),
            "tau21_light": rng.uniform(0, 1, 3 * n),
            "tau21_heavy": rng.uniform(0, 1, 3 * n),
            "label": np.zeros(3 * n, np.int8),
            "fold": rng.integers(0, 5, 3 * n).astype(np.int8),
        }
    )
    ids = rng.choice(3 * n, n, replace=False)
    scores = pd.DataFrame(
        {
            "event_id": ids,
            "mjj": events.mjj.to_numpy()[ids],
            "region": rng.integers(0, 3, n).astype(np.int8),
            "fold": events.fold.to_numpy()[ids],
            "label": np.zeros(n, np.int8),
            "score": rng.random(n),
        }
    )
    return scores, events


def test_scores_and_selected_events_to_root(tmp_path: Path) -> None:
    scores, events = _tables()
    write_parquet(scores, tmp_path / "scores.parquet")
    write_parquet(events, tmp_path / "events.parquet")
    main(
        [
            "--input",
            str(tmp_path / "scores.parquet"),
            "--events",
            str(tmp_path / "events.parquet"),
            "--out",
            str(tmp_path / "scores.root"),
            "--selected-out",
            str(tmp_path / "sel.root"),
            "--keep-fraction",
            "0.1",
        ]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.parquet",
        "scores.parquet",
        "scores.root",
        "sel.root",
    ]  # nothing temporary left
    with uproot.open(tmp_path / "scores.root") as f:
        assert f.classnames() == {"events;1": "TTree"}
        back = pd.DataFrame(f["events"].arrays(library="np"))
    pd.testing.assert_frame_equal(back[list(scores.columns)], scores)
    joined = events.set_index("event_id").loc[scores.event_id, "tau21_heavy"].to_numpy()
    np.testing.assert_array_equal(back["tau21_heavy"].to_numpy(), joined)
    with uproot.open(tmp_path / "sel.root") as f:
        sel = f["events"].arrays(["event_id", "score"], library="np")
    keep, _ = cut_mask(scores, 0.1)
    np.testing.assert_array_equal(sel["event_id"], scores.event_id.to_numpy()[keep])
    assert 0.09 < len(sel["event_id"]) / len(scores) < 0.11


def test_empty_window_and_errors(tmp_path: Path) -> None:
    write_parquet(empty_scores(), tmp_path / "empty.parquet")
    main(
        [
            "--input",
            str(tmp_path / "empty.parquet"),
            "--out",
            str(tmp_path / "e.root"),
            "--selected-out",
            str(tmp_path / "s.root"),
        ]
    )
    with uproot.open(tmp_path / "s.root") as f:
        assert f["events"].num_entries == 0 and "score" in f["events"].keys()
    with pytest.raises(AnomalyHuntError, match="must be .root files"):
        main(["--input", str(tmp_path / "empty.parquet"), "--out", str(tmp_path / "e.parquet")])
    with pytest.raises(AnomalyHuntError, match="file not found"):
        main(["--input", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "e.root")])
    scores, _ = _tables(50)
    write_parquet(scores.drop(columns="fold"), tmp_path / "nofold.parquet")
    with pytest.raises(AnomalyHuntError, match="needs a 'fold' column"):
        main(
            [
                "--input",
                str(tmp_path / "nofold.parquet"),
                "--out",
                str(tmp_path / "e.root"),
                "--selected-out",
                str(tmp_path / "s.root"),
            ]
        )
