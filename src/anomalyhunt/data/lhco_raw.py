"""The LHC Olympics 2020 particle-level files (R&D sample, black boxes), clustered here into jets.

Layout (as published on Zenodo): a pandas HDF5 'fixed' frame under key 'df' with one row per event,
700 particles x (pT, eta, phi) zero-padded to 2100 columns, plus a 0/1 truth label in column 2100
for the R&D sample (the black boxes have no label column). The files are GBs, so they are read in
row slices straight from the HDF5 array (PyTables, which also decodes the file's compression) and
never loaded whole: one workflow job handles one slice of ``chunk_size`` events, reading it
``batch_size`` rows at a time.

Particles are massless (as stored); jets are anti-kT R = 1.0 with the same N-subjettiness as the
Pythia path (:mod:`anomalyhunt.data.jets`), so the output is the LHCO features layout. The
files already carry the trigger selection, so no leading-jet cut is applied again; events
with fewer than two jets above 20 GeV (none expected) are dropped and counted.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path

log = logging.getLogger(__name__)

N_PARTICLES = 700
N_PARTICLE_COLUMNS = 3 * N_PARTICLES

_ZENODO = "https://zenodo.org/records/{record}/files/{name}?download=1"
_ZENODO_API = "https://zenodo.org/api/records/{record}"


@dataclass(frozen=True)
class RawFile:
    """One published particle-level file. ``md5`` None: take it from the Zenodo record at download."""

    filename: str
    record: int
    n_events: int
    labelled: bool
    md5: str | None = None

    @property
    def url(self) -> str:
        return _ZENODO.format(record=self.record, name=self.filename)

    @property
    def record_url(self) -> str:
        """The record's REST API, which lists every file's md5."""
        return _ZENODO_API.format(record=self.record)


#: The published particle-level files. No md5 is stored here (none could be read where this was
#: written): the download reads each file's md5 from its Zenodo record's API and checks it; where
#: the record cannot be read, the file is checked for completeness only, with a warning.
RAW_FILES: dict[str, RawFile] = {
    "rnd": RawFile("events_anomalydetection_v2.h5", 4536377, 1_100_000, True),
    "background": RawFile("events_LHCO2020_backgroundMC_Pythia.h5", 4536624, 1_000_000, False),
    "blackbox1": RawFile("events_LHCO2020_BlackBox1.h5", 4536624, 1_000_000, False),
    "blackbox2": RawFile("events_LHCO2020_BlackBox2.h5", 4536624, 1_000_000, False),
    "blackbox3": RawFile("events_LHCO2020_BlackBox3.h5", 4536624, 1_000_000, False),
}


def resolve(raw_config: dict[str, Any]) -> dict[str, Any]:
    """url, md5, path and n_events of ``data.lhco_raw``, with the kind's published values as defaults.

    ``record_url`` (where the md5 is looked up when none is given) defaults to the kind's Zenodo
    record only while the file comes from Zenodo too: a mirror's copy need not be the same file.
    """
    spec = RAW_FILES[raw_config["kind"]]
    record_url = raw_config.get("record_url") or (
        None if raw_config.get("url") else spec.record_url
    )
    return {
        "kind": raw_config["kind"],
        "filename": spec.filename,
        "url": raw_config.get("url") or spec.url,
        "record_url": record_url,
        "md5": raw_config.get("md5") or spec.md5,
        "path": raw_config.get("path") or f"resources/lhco/{spec.filename}",
        "n_events": raw_config.get("n_events") or spec.n_events,
    }


def n_chunks(raw_config: dict[str, Any]) -> int:
    """Jobs the configured events need, one per ``chunk_size`` rows."""
    return -(-resolve(raw_config)["n_events"] // raw_config["chunk_size"])


@dataclass(frozen=True)
class RawLayout:
    """Where the particles and the label sit in one file's pandas 'fixed' frame."""

    n_events: int
    blocks: tuple[tuple[str, np.ndarray], ...]  # (values node, column positions of its items)
    n_columns: int
    labelled: bool


def _bad(path: Path, what: str) -> AnomalyHuntError:
    return AnomalyHuntError(
        f"{path}: {what}; a raw LHCO file is a pandas 'fixed' frame under key 'df' with "
        f"{N_PARTICLE_COLUMNS} particle columns (700 x pT, eta, phi) and an optional label column"
    )


def _open(path: Path) -> pd.HDFStore:
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    from anomalyhunt.data import safe_hdf

    try:
        safe_hdf.check_file(path)  # nothing PyTables would unpickle may hold more than plain data
    except AnomalyHuntError as exc:
        if "cannot open it as HDF5" in str(exc):
            raise _bad(path, "cannot open it as HDF5") from None
        raise
    try:
        return pd.HDFStore(path, mode="r")
    except Exception as exc:  # noqa: BLE001 - HDF5 raises many types for a file that is not HDF5
        raise _bad(path, f"cannot open it as HDF5 ({type(exc).__name__})") from exc


def layout(store: pd.HDFStore, path: Path) -> RawLayout:
    """Check the frame's shape and find its value blocks, reading no event data."""
    import tables

    if "/df" not in store.keys():
        raise _bad(path, f"no table 'df' (tables: {store.keys()})")
    storer = store.get_storer("df")
    if getattr(storer, "pandas_type", None) != "frame" or getattr(storer, "is_table", False):
        raise _bad(path, "key 'df' is not a DataFrame in 'fixed' format")
    n_columns = len(store.get_node("/df/axis0"))
    n_events = len(store.get_node("/df/axis1"))
    if n_columns not in (N_PARTICLE_COLUMNS, N_PARTICLE_COLUMNS + 1):
        raise _bad(path, f"{n_columns} columns")
    columns = [
        str(c.decode() if isinstance(c, bytes) else c) for c in store.get_node("/df/axis0")[:]
    ]
    position = {c: i for i, c in enumerate(columns)}
    blocks = []
    for i in range(int(storer.nblocks)):
        values = store.get_node(f"/df/block{i}_values")
        items = [
            str(c.decode() if isinstance(c, bytes) else c)
            for c in store.get_node(f"/df/block{i}_items")[:]
        ]
        if isinstance(values, tables.VLArray) or values.dtype.kind not in "fiu":
            # never read: an object block is a VLArray of pickles, and unpickling can run code
            what = "pickled Python objects" if isinstance(values, tables.VLArray) else values.dtype
            raise AnomalyHuntError(
                f"{path}: column(s) {items[:5]} hold {what}, not numbers (pickles are never "
                "read: unpickling a file can run code)"
            )
        if not getattr(values.attrs, "transposed", False) or values.shape != (n_events, len(items)):
            raise _bad(path, f"block {i} has shape {values.shape}, not ({n_events}, {len(items)})")
        blocks.append((values._v_pathname, np.array([position[c] for c in items])))
    return RawLayout(n_events, tuple(blocks), n_columns, n_columns > N_PARTICLE_COLUMNS)


def read_rows(
    path: str | os.PathLike, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 700, 3) particles (pT, eta, phi) of rows start..stop, and their labels (None if none)."""
    path = Path(path)
    with _open(path) as store:
        lay = layout(store, path)
        start, stop = max(0, start), min(stop, lay.n_events)
        out = np.empty((max(stop - start, 0), lay.n_columns), dtype=np.float64)
        if len(out):
            for node, cols in lay.blocks:
                out[:, cols] = store.get_node(node)[start:stop]
    if not np.all(np.isfinite(out)):
        rows = start + np.flatnonzero(~np.isfinite(out).all(axis=1))
        raise AnomalyHuntError(f"{path}: NaN or infinite values in events {rows[:5].tolist()}...")
    label = out[:, N_PARTICLE_COLUMNS].astype(np.int8) if lay.labelled else None
    return out[:, :N_PARTICLE_COLUMNS].reshape(-1, N_PARTICLES, 3), label


def n_events(path: str | os.PathLike) -> int:
    """Events (rows) in a raw file, from its index alone."""
    path = Path(path)
    with _open(path) as store:
        return layout(store, path).n_events


def particles(rows: np.ndarray) -> Any:  # noqa: ANN401 - an awkward Array
    """Jagged awkward array of records (pt, eta, phi): the zero padding (pT = 0) dropped."""
    import awkward as ak

    keep = rows[:, :, 0] > 0
    counts = keep.sum(axis=1)
    return ak.zip(
        {
            name: ak.unflatten(rows[:, :, i][keep], counts)
            for i, name in enumerate(("pt", "eta", "phi"))
        }
    )


def cluster_rows(rows: np.ndarray) -> pd.DataFrame:
    """LHCO-layout jets (GeV) of padded particle rows; ``df.attrs['event']`` = kept row positions."""
    import awkward as ak

    from anomalyhunt.data import jets

    prt = particles(rows)
    flat = jets.four_vectors_from_pt_eta_phi(
        ak.to_numpy(ak.flatten(prt.pt)),
        ak.to_numpy(ak.flatten(prt.eta)),
        ak.to_numpy(ak.flatten(prt.phi)),
    )
    return jets.cluster_events(
        jets.split_flat(flat, ak.to_numpy(ak.num(prt.pt))), leading_pt_min=0.0
    )


def process(
    path: str | os.PathLike,
    start: int,
    stop: int,
    batch_size: int = 2000,
    progress: bool = True,
) -> pd.DataFrame:
    """LHCO-layout events + ``label`` (-1 where the file has none) of rows start..stop.

    Reads ``batch_size`` rows at a time, so memory stays ~ batch_size x 2101 x 8 bytes plus the
    jets. ``df.attrs`` records the rows read and kept.
    """
    if batch_size < 1:
        raise AnomalyHuntError(f"lhco_raw: batch_size must be positive, got {batch_size}")
    total = n_events(path)
    start, stop = max(0, start), min(stop, total)
    parts, n_in = [], 0
    with tqdm(
        total=max(stop - start, 0),
        unit="ev",
        desc=f"{Path(path).name}[{start}:{stop}]",
        file=sys.stderr,
        disable=not progress,
        mininterval=5.0,
    ) as bar:
        for lo in range(start, stop, batch_size):
            hi = min(lo + batch_size, stop)
            rows, label = read_rows(path, lo, hi)
            df = cluster_rows(rows)
            kept = np.asarray(df.attrs["event"], dtype=np.int64)
            df.attrs = {}
            df["label"] = label[kept] if label is not None else np.full(len(df), -1, np.int8)
            parts.append(df)
            n_in += hi - lo
            bar.update(hi - lo)
    out = pd.concat(parts, ignore_index=True) if parts else _empty()
    out.attrs = {"start": start, "stop": stop, "n_read": n_in, "n_kept": len(out)}
    if len(out) < n_in:
        log.warning(
            "%s[%d:%d]: %d of %d events have fewer than two jets and were dropped",
            path,
            start,
            stop,
            n_in - len(out),
            n_in,
        )
    return out


def _empty() -> pd.DataFrame:
    from anomalyhunt.data.features import LHCO_COLUMNS

    df = pd.DataFrame({c: np.zeros(0) for c in LHCO_COLUMNS})
    df["label"] = np.zeros(0, dtype=np.int8)
    return df


def write_raw(
    path: str | os.PathLike,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    label: np.ndarray | None = None,
) -> None:
    """Write (n, 700) particle arrays in the published layout (pandas 'fixed', key 'df'), atomically.

    Columns interleave (pT, eta, phi) per particle, as in the published files; used by the tests
    and the benchmark, and to bring other particle-level samples into this layout.
    """
    pt, eta, phi = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi))
    if pt.ndim != 2 or pt.shape[1] != N_PARTICLES or eta.shape != pt.shape or phi.shape != pt.shape:
        raise AnomalyHuntError(f"write_raw: need three (n, {N_PARTICLES}) arrays, got {pt.shape}")
    values = np.stack([pt, eta, phi], axis=2).reshape(len(pt), N_PARTICLE_COLUMNS)
    if label is not None:
        values = np.concatenate([values, np.asarray(label, dtype=np.float64)[:, None]], axis=1)
    with atomic_path(path) as tmp:
        pd.DataFrame(values).to_hdf(tmp, key="df", mode="w", format="fixed")


def synthetic_events(
    n: int, seed: int, signal_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pt, eta, phi, label) of ``n`` padded dijet-like particle events, for tests and benchmarks.

    Two back-to-back hard jets of 1.2-2 TeV built from 25-60 massless particles within dR < 0.8
    of their axis (signal: each jet split into two prongs), plus up to 40 soft particles spread
    over the event; not physics, but the right layout, multiplicities and jet masses.
    """
    rng = np.random.default_rng(seed)
    pt = np.zeros((n, N_PARTICLES))
    eta = np.zeros((n, N_PARTICLES))
    phi = np.zeros((n, N_PARTICLES))
    label = (rng.random(n) < signal_fraction).astype(np.int8)
    for i in range(n):
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        phi0 = rng.uniform(-np.pi, np.pi)
        for j, jet_pt in enumerate(rng.uniform(1200.0, 2000.0, 2)):
            axis_eta, axis_phi = rng.uniform(-1.5, 1.5), phi0 + j * np.pi
            prongs = [(0.0, 0.0, 1.0)] if not label[i] else [(-0.15, 0.0, 0.6), (0.15, 0.05, 0.4)]
            for d_eta, d_phi, share in prongs:
                m = rng.integers(25, 60)
                z = rng.dirichlet(np.full(m, 0.7)) * jet_pt * share
                spread = rng.exponential(0.08, m)
                ang = rng.uniform(0, 2 * np.pi, m)
                parts.append(
                    (
                        z,
                        axis_eta + d_eta + np.clip(spread, 0, 0.8) * np.cos(ang),
                        axis_phi + d_phi + np.clip(spread, 0, 0.8) * np.sin(ang),
                    )
                )
        k = rng.integers(0, 40)
        parts.append(
            (
                rng.exponential(3.0, k) + 0.5,
                rng.uniform(-2.5, 2.5, k),
                rng.uniform(-np.pi, np.pi, k),
            )
        )
        p, e, f = (np.concatenate(x) for x in zip(*parts, strict=True))
        order = np.argsort(-p)[:N_PARTICLES]
        pt[i, : len(order)] = p[order]
        eta[i, : len(order)] = e[order]
        phi[i, : len(order)] = np.remainder(f[order] + np.pi, 2 * np.pi) - np.pi
    return pt, eta, phi, label
