"""Particle-level LHCO files: layout checks, chunked reading and clustering, download, CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastjet")

from anomalyhunt.data import jets, lhco, lhco_raw  # noqa: E402
from anomalyhunt.data.__main__ import main  # noqa: E402
from anomalyhunt.data.features import LHCO_COLUMNS  # noqa: E402
from anomalyhunt.errors import AnomalyHuntError  # noqa: E402
from anomalyhunt.io import read_parquet, write_hdf  # noqa: E402
from tests.test_lhco_download import _Server  # noqa: E402

N = 300


@pytest.fixture(scope="module")
def events() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return lhco_raw.synthetic_events(N, seed=21, signal_fraction=0.2)


def _frame(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, label: np.ndarray | None
) -> pd.DataFrame:
    """The published layout built by hand: columns pT0, eta0, phi0, pT1, ..., then the label."""
    cols = {}
    for i in range(lhco_raw.N_PARTICLES):
        cols[3 * i], cols[3 * i + 1], cols[3 * i + 2] = pt[:, i], eta[:, i], phi[:, i]
    if label is not None:
        cols[lhco_raw.N_PARTICLE_COLUMNS] = label.astype(np.float64)
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def raw_file(events: tuple, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "events_anomalydetection_v2.h5"
    _frame(*events).to_hdf(path, key="df", mode="w", format="fixed")
    return path


@pytest.fixture(scope="module")
def one_shot(raw_file: Path) -> pd.DataFrame:
    return lhco_raw.process(raw_file, 0, N, batch_size=N, progress=False)


def test_reading_and_padding(events: tuple, raw_file: Path, tmp_path: Path) -> None:
    pt, eta, phi, label = events
    assert lhco_raw.n_events(raw_file) == N
    rows, got_label = lhco_raw.read_rows(raw_file, 10, 20)
    np.testing.assert_array_equal(rows[..., 0], pt[10:20])
    np.testing.assert_array_equal(rows[..., 2], phi[10:20])
    np.testing.assert_array_equal(got_label, label[10:20])
    prt = lhco_raw.particles(rows)
    np.testing.assert_array_equal(np.asarray([len(p) for p in prt.pt]), (pt[10:20] > 0).sum(axis=1))
    assert float(np.min([np.min(p) for p in prt.pt])) > 0
    # the package's writer makes the same file content
    lhco_raw.write_raw(tmp_path / "w.h5", pt, eta, phi, label)
    pd.testing.assert_frame_equal(pd.read_hdf(tmp_path / "w.h5", "df"), pd.read_hdf(raw_file, "df"))


def test_chunked_equals_one_shot(raw_file: Path, one_shot: pd.DataFrame) -> None:
    assert one_shot.attrs["n_read"] == N and len(one_shot) == N
    assert list(one_shot.columns) == [*LHCO_COLUMNS, "label"]
    batched = lhco_raw.process(raw_file, 0, N, batch_size=37, progress=False)
    pd.testing.assert_frame_equal(batched, one_shot)
    parts = [
        lhco_raw.process(raw_file, a, a + 100, batch_size=64, progress=False) for a in (0, 100, 200)
    ]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), one_shot)


def test_workflow_commands_match_the_features_file_path(
    events: tuple, raw_file: Path, tmp_path: Path
) -> None:
    """raw-chunk jobs + merge + features == clustering the same particles + features file."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data:\n  source: lhco_raw\n  lhco_raw: {n_events: 300, chunk_size: 120, batch_size: 50}\n"
    )
    chunks = []
    for k in range(3):
        chunks.append(str(tmp_path / f"chunk_{k}.h5"))
        main(
            [
                "raw-chunk",
                "--config",
                str(cfg),
                "--input",
                str(raw_file),
                "--chunk",
                str(k),
                "--out",
                chunks[-1],
                "--no-progress",
            ]
        )
    main(["merge", "--keep-order", "--inputs", *chunks, "--out", str(tmp_path / "raw_events.h5")])
    main(
        [
            "features",
            "--input",
            str(tmp_path / "raw_events.h5"),
            "--out",
            str(tmp_path / "raw.parquet"),
        ]
    )

    # the same events through the existing path: four-vectors -> cluster -> LHCO features file
    pt, eta, phi, label = events
    four = [
        jets.four_vectors_from_pt_eta_phi(pt[i][pt[i] > 0], eta[i][pt[i] > 0], phi[i][pt[i] > 0])
        for i in range(N)
    ]
    ref = jets.cluster_events(four, leading_pt_min=0.0)
    ref["label"] = label[np.asarray(ref.attrs["event"])]
    ref.attrs = {}
    write_hdf(ref, tmp_path / "events.features.h5")
    main(
        [
            "features",
            "--input",
            str(tmp_path / "events.features.h5"),
            "--out",
            str(tmp_path / "ref.parquet"),
        ]
    )

    a, b = read_parquet(tmp_path / "raw.parquet"), read_parquet(tmp_path / "ref.parquet")
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    assert (a["label"] == 1).sum() == label.sum() and a["tau21_light"].between(0, 1).all()
    # the synthetic signal jets are two-pronged: lower tau21 than the one-prong background
    assert a.loc[a.label == 1, "tau21_heavy"].median() < a.loc[a.label == 0, "tau21_heavy"].median()

    # more events configured than the file holds: one clear line
    cfg.write_text("data:\n  source: lhco_raw\n  lhco_raw: {n_events: 301, chunk_size: 120}\n")
    with pytest.raises(AnomalyHuntError, match="has 300 events but 301 are configured"):
        main(
            [
                "raw-chunk",
                "--config",
                str(cfg),
                "--input",
                str(raw_file),
                "--chunk",
                "0",
                "--out",
                str(tmp_path / "x.h5"),
            ]
        )
    with pytest.raises(AnomalyHuntError, match="raw-chunk' jobs"):
        main(["events", "--config", str(cfg), "--out", str(tmp_path / "x.h5")])


def test_black_box_layout_has_no_label(events: tuple, tmp_path: Path) -> None:
    pt, eta, phi, _ = events
    path = tmp_path / "events_LHCO2020_BlackBox1.h5"
    _frame(pt[:40], eta[:40], phi[:40], None).to_hdf(path, key="df", mode="w", format="fixed")
    df = lhco_raw.process(path, 0, 40, progress=False)
    assert len(df) == 40 and (df["label"] == -1).all()


def test_bad_files_are_one_clear_error(events: tuple, tmp_path: Path) -> None:
    pt, eta, phi, label = events
    with pytest.raises(AnomalyHuntError, match="file not found"):
        lhco_raw.n_events(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(AnomalyHuntError, match="cannot open it as HDF5"):
        lhco_raw.n_events(tmp_path / "text.h5")
    short = _frame(pt[:5], eta[:5], phi[:5], label[:5]).iloc[:, :2000]
    short.to_hdf(tmp_path / "short.h5", key="df", mode="w", format="fixed")
    with pytest.raises(AnomalyHuntError, match="2000 columns; a raw LHCO file is"):
        lhco_raw.read_rows(tmp_path / "short.h5", 0, 5)
    _frame(pt[:5], eta[:5], phi[:5], label[:5]).to_hdf(tmp_path / "t.h5", key="df", format="table")
    with pytest.raises(AnomalyHuntError, match="not a DataFrame in 'fixed' format"):
        lhco_raw.read_rows(tmp_path / "t.h5", 0, 5)
    _frame(pt[:5], eta[:5], phi[:5], label[:5]).to_hdf(
        tmp_path / "k.h5", key="other", format="fixed"
    )
    with pytest.raises(AnomalyHuntError, match="no table 'df'"):
        lhco_raw.read_rows(tmp_path / "k.h5", 0, 5)
    bad = pt[:5].copy()
    bad[2, 3] = np.nan
    lhco_raw.write_raw(tmp_path / "nan.h5", bad, eta[:5], phi[:5], label[:5])
    with pytest.raises(AnomalyHuntError, match=r"NaN or infinite values in events \[2\]"):
        lhco_raw.read_rows(tmp_path / "nan.h5", 0, 5)


@contextmanager
def _serving(payload: bytes) -> Iterator[_Server]:
    srv = _Server(payload)
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def test_resolve_and_download_without_md5(
    raw_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = lhco_raw.resolve({"kind": "blackbox2", "chunk_size": 10})
    assert (
        spec["url"]
        == "https://zenodo.org/records/4536624/files/events_LHCO2020_BlackBox2.h5?download=1"
    )
    assert spec["path"] == "resources/lhco/events_LHCO2020_BlackBox2.h5" and spec["md5"] is None
    assert lhco_raw.n_chunks({"kind": "rnd", "chunk_size": 50_000}) == 22

    with _serving(raw_file.read_bytes()) as srv:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"data:\n  source: lhco_raw\n  lhco_raw: {{url: '{srv.url}'}}\n")
        with caplog.at_level(logging.WARNING):
            main(["download", "--config", str(cfg), "--out", str(tmp_path / "got.h5")])
        assert (tmp_path / "got.h5").read_bytes() == raw_file.read_bytes()
        assert "no md5 known" in caplog.text


def _record(filename: str, md5: str, layout: str) -> bytes:
    """A Zenodo record's JSON in the legacy (files list) or InvenioRDM (files.entries) layout."""
    entry = {"key": filename, "size": 1, "checksum": f"md5:{md5}"}
    other = {"key": "README.txt", "size": 1, "checksum": "md5:" + "0" * 32}
    if layout == "legacy":
        files: object = [other, entry]
    else:
        files = {"enabled": True, "entries": {other["key"]: other, filename: entry}}
    return json.dumps({"id": 4536624, "files": files}).encode()


@pytest.mark.parametrize("layout", ["legacy", "rdm"])
def test_zenodo_md5_reads_both_record_layouts(layout: str) -> None:
    good = hashlib.md5(b"x").hexdigest()
    with _serving(_record("events_LHCO2020_BlackBox1.h5", good, layout)) as api:
        url = api.url.split("?")[0]
        assert lhco.zenodo_md5(url, "events_LHCO2020_BlackBox1.h5") == good
        with pytest.raises(AnomalyHuntError, match="lists no file events_LHCO2020_BlackBox2.h5"):
            lhco.zenodo_md5(url, "events_LHCO2020_BlackBox2.h5")
    with (
        _serving(b"<html>not json</html>") as api,
        pytest.raises(AnomalyHuntError, match="could not read the Zenodo record"),
    ):
        lhco.zenodo_md5(api.url, "events_LHCO2020_BlackBox1.h5")


def test_download_checks_the_md5_of_the_zenodo_record(
    raw_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The record's md5 is used: the right one lets the file in, a wrong one keeps it out."""
    payload = raw_file.read_bytes()
    name = lhco_raw.RAW_FILES["rnd"].filename
    assert (
        lhco_raw.resolve({"kind": "rnd"})["record_url"] == "https://zenodo.org/api/records/4536377"
    )
    good = hashlib.md5(payload).hexdigest()
    for md5, ok in ((good, True), ("f" * 32, False)):
        out = tmp_path / f"got_{ok}.h5"
        with _serving(payload) as files, _serving(_record(name, md5, "rdm")) as api:
            cfg = tmp_path / "c.yaml"
            cfg.write_text(
                f"data:\n  source: lhco_raw\n  lhco_raw: {{url: '{files.url}', record_url: '{api.url}'}}\n"
            )
            caplog.clear()
            with caplog.at_level(logging.INFO):
                if ok:
                    main(["download", "--config", str(cfg), "--out", str(out)])
                    assert out.read_bytes() == payload
                    assert f"from the Zenodo record {api.url}: {good}" in caplog.text
                    assert "no md5 known" not in caplog.text
                else:
                    with pytest.raises(AnomalyHuntError, match=f"expected {md5}"):
                        main(["download", "--config", str(cfg), "--out", str(out)])
                    assert not out.exists() and not out.with_name(out.name + ".part").exists()
