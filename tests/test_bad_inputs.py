"""Bad inputs (issue 12): each one stops with one clear line, runs no code and leaves no stale result."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError
from tests.conftest import run_command


class _RunsCommand:
    """Unpickling this runs a shell command: what a hostile HDF5 file can carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (self.command,))


def lhco_frame(n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.uniform(10, 1000, n) for c in LHCO_COLUMNS})


def write_h5(df: pd.DataFrame, path, **kw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about pickled object columns
        df.to_hdf(path, key="df", mode="w", **kw)


def test_pickled_column_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    df = lhco_frame()
    df["payload"] = [_RunsCommand(f"touch {marker}")] * len(df)
    write_h5(df, tmp_path / "evil.h5", format="fixed")
    from anomalyhunt.data.files import read_events

    with pytest.raises(AnomalyHuntError, match="payload") as err:
        read_events(tmp_path / "evil.h5")
    assert "pickle" in str(err.value)
    assert not marker.exists()
    # the user's path: one line, exit 2, nothing run, nothing written
    proc = run_command(["-m", "anomalyhunt.data", "features", "--input", str(tmp_path / "evil.h5"),
                        "--out", str(tmp_path / "f.parquet")])  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("anomalyhunt: error:")
    assert "payload" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "f.parquet").exists()


def test_pickled_attribute_is_never_unpickled(tmp_path):
    """PyTables unpickles attributes as soon as a node is opened: they are checked first."""
    marker = tmp_path / "ran"
    write_h5(lhco_frame(), tmp_path / "evil.h5", format="fixed")
    with warnings.catch_warnings(), pd.HDFStore(tmp_path / "evil.h5", mode="a") as store:
        warnings.simplefilter("ignore")
        store.get_storer("df").attrs.note = _RunsCommand(f"touch {marker}")
    assert not marker.exists()
    from anomalyhunt.data import lhco, lhco_raw
    from anomalyhunt.data.files import read_events
    from anomalyhunt.export import read_table

    for read in (read_events, lhco.read_features_h5, lhco_raw.n_events, read_table):
        with pytest.raises(AnomalyHuntError, match="'note'"):
            read(tmp_path / "evil.h5")
    assert not marker.exists()


def test_raw_lhco_file_with_pickled_column_is_refused(tmp_path):
    from anomalyhunt.data import lhco_raw

    marker = tmp_path / "ran"
    pt, eta, phi, label = lhco_raw.synthetic_events(3, seed=1)
    values = np.stack([pt, eta, phi], axis=2).reshape(3, lhco_raw.N_PARTICLE_COLUMNS)
    df = pd.DataFrame(values)
    df[lhco_raw.N_PARTICLE_COLUMNS] = [_RunsCommand(f"touch {marker}")] * 3
    write_h5(df, tmp_path / "raw.h5", format="fixed")
    with pytest.raises(AnomalyHuntError, match="2100"):
        lhco_raw.read_rows(tmp_path / "raw.h5", 0, 3)
    assert not marker.exists()


def test_numeric_hdf5_files_still_read(tmp_path):
    from anomalyhunt.data.files import read_events

    df = lhco_frame()
    df["label"] = np.int8(0)
    for fmt in ("fixed", "table"):
        write_h5(df, tmp_path / f"{fmt}.h5", format=fmt)
        got = read_events(tmp_path / f"{fmt}.h5")
        pd.testing.assert_frame_equal(got, df, check_dtype=False)
