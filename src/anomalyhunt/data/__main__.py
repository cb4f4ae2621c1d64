"""The data stage: make the events (toy, LHCO download or Pythia chunks), then the features table.

``python -m anomalyhunt.data events --config CONFIG --out EVENTS.h5``
``python -m anomalyhunt.data pythia-chunk --config CONFIG --process qcd --chunk K --out CHUNK.h5``
``python -m anomalyhunt.data download --config CONFIG --out FILE`` (lhco or lhco_raw file)
``python -m anomalyhunt.data raw-chunk --config CONFIG --input RAW.h5 --chunk K --out CHUNK.h5``
``python -m anomalyhunt.data merge --inputs CHUNK.h5 ... [--keep-order] --out EVENTS.h5``
``python -m anomalyhunt.data features --input EVENTS --out FEATURES.parquet``
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.data.features import compute_features
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path, write_hdf, write_parquet

log = logging.getLogger("anomalyhunt.data")


def make_events(config: dict[str, Any], out: str) -> None:
    """Write the events the config asks for; a user's own file is read directly by `features`."""
    source = config["data"]["source"]
    if source == "toy":
        from anomalyhunt.data import toy

        tc = config["data"]["toy"]
        events = toy.generate(
            tc["n_background"],
            tc["n_signal"],
            cfgmod.derive_seed(config["seed"], "toy"),
            mjj_correlation=tc["mjj_correlation"],
            mjj_signal=tc["signal"]["mjj"],
            mx=tc["signal"]["mx"],
            my=tc["signal"]["my"],
        )
        write_hdf(events, out)
        log.info(
            "toy: %d background + %d signal events -> %s", tc["n_background"], tc["n_signal"], out
        )
    elif source == "lhco":
        from anomalyhunt.data import lhco

        lc = config["data"]["lhco"]
        lhco.download(lc["url"], out, lc["md5"])
    else:
        how = {
            "pythia": "Pythia runs as 'pythia-chunk' jobs joined by 'merge' (the workflow does so)",
            "lhco_raw": "the raw LHCO file is fetched by 'download', clustered by 'raw-chunk' "
            "jobs and joined by 'merge --keep-order' (the workflow does so)",
        }.get(
            source,
            "a user's file needs no events step; run 'python -m anomalyhunt.data "
            "features --input YOUR_FILE' (the workflow does so)",
        )
        raise AnomalyHuntError(f"data.source is '{source}': no single events step; {how}")


def download_file(config: dict[str, Any], out: str) -> None:
    """Fetch the file of ``data.source`` lhco (features) or lhco_raw (particles) to ``out``."""
    from anomalyhunt.data import lhco, lhco_raw

    source = config["data"]["source"]
    if source == "lhco":
        spec = config["data"]["lhco"]
    elif source == "lhco_raw":
        spec = lhco_raw.resolve(config["data"]["lhco_raw"])
    else:
        raise AnomalyHuntError(
            f"download: data.source is '{source}'; only lhco and lhco_raw download"
        )
    md5 = spec["md5"]
    if md5 is None and spec.get("record_url"):
        try:
            md5 = lhco.zenodo_md5(spec["record_url"], spec["filename"])
            log.info(
                "md5 of %s from the Zenodo record %s: %s", spec["filename"], spec["record_url"], md5
            )
        except AnomalyHuntError as exc:
            log.warning("%s", exc)
    if md5 is None:
        log.warning(
            "no md5 known for %s: the download is checked for completeness only; set "
            "data.%s.md5 (or record_url) to verify it",
            spec["url"],
            source,
        )
    lhco.download(spec["url"], out, md5)


def make_raw_chunk(
    config: dict[str, Any], path: str, chunk: int, out: str, progress: bool = True
) -> None:
    """Cluster rows chunk x chunk_size .. of a raw LHCO file into one LHCO-layout chunk file."""
    from anomalyhunt.data import lhco_raw

    rc = config["data"]["lhco_raw"]
    wanted = lhco_raw.resolve(rc)["n_events"]
    available = lhco_raw.n_events(path)
    if wanted > available:
        raise AnomalyHuntError(
            f"raw-chunk: {path} has {available} events but {wanted} are configured "
            f"(data.lhco_raw.n_events, or the published size of kind '{rc['kind']}'); "
            f"set data.lhco_raw.n_events: {available}"
        )
    n = lhco_raw.n_chunks(rc)
    if not 0 <= chunk < n:
        raise AnomalyHuntError(f"raw-chunk: chunk {chunk} is out of range 0..{n - 1}")
    start = chunk * rc["chunk_size"]
    stop = min(start + rc["chunk_size"], wanted)
    df = lhco_raw.process(path, start, stop, batch_size=rc["batch_size"], progress=progress)
    meta = {
        "process": f"lhco_raw:{rc['kind']}",
        "chunk": chunk,
        "n_generated": df.attrs["n_read"],
        **df.attrs,
    }
    _write_chunk(df, meta, out)
    log.info(
        "%s rows %d..%d: %d read, %d kept -> %s", path, start, stop, meta["n_read"], len(df), out
    )


def _write_chunk(df: pd.DataFrame, meta: dict[str, Any], out: str) -> None:
    """A chunk table with its generation record as an HDF5 attribute (pandas drops ``df.attrs``)."""
    df = df.copy()
    df.attrs = {}
    with atomic_path(out) as tmp:
        df.to_hdf(tmp, key="df", mode="w", format="fixed")
        with pd.HDFStore(tmp, mode="a") as store:
            setattr(store.get_storer("df").attrs, _GEN_ATTR, meta)


PYTHIA_PROCESSES = ("qcd", "signal")
#: Pythia takes seeds 1..899,999,999 (0 means "seed from the clock").
PYTHIA_SEED_RANGE = 899_999_999
#: HDF5 attribute of a chunk's table holding what generation did (pandas drops ``df.attrs``).
_GEN_ATTR = "anomalyhunt_generation"


def pythia_n_chunks(pythia_config: dict[str, Any], process: str) -> int:
    from anomalyhunt.data.pythia import n_chunks

    return n_chunks(pythia_config, process)


def pythia_seed(seed: int, process: str, chunk: int) -> int:
    """Seed of one chunk: independent per process and chunk, inside the range Pythia accepts."""
    return 1 + cfgmod.derive_seed(seed, "pythia", process, chunk) % PYTHIA_SEED_RANGE


def make_pythia_chunk(config: dict[str, Any], process: str, chunk: int, out: str) -> None:
    """Generate chunk ``chunk`` of ``process``; the table carries its generated/passed counts."""
    from anomalyhunt.data import pythia

    pc = config["data"]["pythia"]
    if process not in PYTHIA_PROCESSES:
        raise AnomalyHuntError(
            f"pythia-chunk: --process must be 'qcd' or 'signal', got {process!r}"
        )
    n_chunks = pythia_n_chunks(pc, process)
    if not 0 <= chunk < n_chunks:
        raise AnomalyHuntError(
            f"pythia-chunk: chunk {chunk} of {process} is out of range: data.pythia.n_{process} = "
            f"{pc[f'n_{process}']} in chunks of {pc['chunk_size']} gives chunks 0..{n_chunks - 1}"
            if n_chunks
            else f"pythia-chunk: data.pythia.n_{process} is 0, so there are no chunks"
        )
    n = min(pc["chunk_size"], pc[f"n_{process}"] - chunk * pc["chunk_size"])
    seed = pythia_seed(config["seed"], process, chunk)
    sig = pc["signal"]
    df = pythia.generate_chunk(
        process,
        n,
        seed,
        mjj_signal=sig["mjj"],
        mx=sig["mx"],
        my=sig["my"],
        pthat_min=pc["pthat_min"],
        leading_pt_min=pc["leading_pt_min"],
    )
    meta = {"process": process, "chunk": chunk, "seed": seed, **df.attrs}
    _write_chunk(df, meta, out)
    log.info(
        "pythia %s chunk %d (seed %d): %d generated, %d passed -> %s",
        process,
        chunk,
        seed,
        meta.get("n_generated", n),
        len(df),
        out,
    )


def _read_chunk(path: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A chunk's table and its generation record (empty for files not written by pythia-chunk)."""
    if not Path(path).exists():
        raise AnomalyHuntError(f"merge: {path}: file not found")
    from anomalyhunt.data import safe_hdf

    try:
        try:  # inspected without unpickling; only numeric columns are read
            df = safe_hdf.read_frame(path, "df")
        except AnomalyHuntError as exc:
            raise AnomalyHuntError(f"merge: {exc}") from None
        with pd.HDFStore(path, mode="r") as store:  # safe: every attribute was checked above
            meta = dict(getattr(store.get_storer("df").attrs, _GEN_ATTR, None) or {})
    except AnomalyHuntError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one user-facing line
        # HDF5 errors carry a multi-line back trace; its last line says what went wrong
        reason = next((ln.strip() for ln in reversed(str(exc).splitlines()) if ln.strip()), "")
        raise AnomalyHuntError(
            f"merge: {path}: not a readable pandas HDF5 file ({reason or type(exc).__name__})"
        ) from exc
    if "label" not in df.columns:
        raise AnomalyHuntError(f"merge: {path}: no 'label' column (not a pythia-chunk output?)")
    return df, meta


def merge_chunks(inputs: Sequence[str], out: str, keep_order: bool = False) -> None:
    """One events file from the chunks, QCD (label 0) first so the order never depends on inputs.

    ``keep_order`` keeps the rows as given instead (chunks of one real file, whose event order
    is the file's).
    """
    if not inputs:
        raise AnomalyHuntError("merge: no --inputs given")
    frames, totals = [], {}
    columns = None
    for path in inputs:
        df, meta = _read_chunk(path)
        if columns is None:
            columns = list(df.columns)
        elif list(df.columns) != columns:
            raise AnomalyHuntError(f"merge: {path}: columns differ from {inputs[0]}")
        frames.append(df)
        process = meta.get("process") or ("signal" if (df["label"] == 1).any() else "qcd")
        gen, passed = totals.get(process, (0, 0))
        totals[process] = (gen + int(meta.get("n_generated", len(df))), passed + len(df))
    merged = pd.concat(frames, ignore_index=True)
    if not keep_order:  # a stable sort keeps each process's chunks in the order given
        order = np.argsort(merged["label"].to_numpy(), kind="stable")
        merged = merged.iloc[order].reset_index(drop=True)
    write_hdf(merged, out)
    for process in sorted(totals, key=lambda p: p != "qcd"):
        gen, passed = totals[process]
        what = "read, %d kept" if keep_order else "generated, %d passed the leading-jet cut"
        log.info(
            f"%s: %d {what} (%.1f%%)", process, gen, passed, 100.0 * passed / gen if gen else 0.0
        )
    log.info("%d files, %d events -> %s", len(inputs), len(merged), out)


def make_features(
    path: str, tree: str | None, out: str, config: dict[str, Any] | None = None
) -> None:
    """Features table of an events file, with the signal/background counts logged.

    With ``data.source: file`` in ``config``, its ``data.file`` branch names and jet branches
    say how to read the user's file; generated events are always in the LHCO layout.
    """
    from anomalyhunt.data.files import read_events

    branches, jets = None, None
    if config is not None and config["data"]["source"] == "file":
        fc = config["data"]["file"]
        tree = tree or fc["tree"]
        branches, jets = fc["branches"], fc["jets"]
    events = read_events(path, tree, branches=branches, jets=jets)
    if len(events) == 0:
        raise AnomalyHuntError(f"{path}: the file holds 0 events; nothing to search")
    features = compute_features(events, source=str(path))
    write_parquet(features, out)
    labels = features["label"].to_numpy()
    n_sig, n_bkg = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    n_unknown = len(labels) - n_sig - n_bkg
    log.info(
        "%d events (%d signal, %d background, %d unlabelled) -> %s",
        len(labels),
        n_sig,
        n_bkg,
        n_unknown,
        out,
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.data", description=__doc__.splitlines()[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("events", help="generate the toy events or download the LHCO file")
    ev.add_argument("--config", required=True)
    ev.add_argument("--out", required=True, help="events file (pandas HDF5, LHCO layout)")
    pc = sub.add_parser("pythia-chunk", help="generate one chunk of Pythia QCD or signal events")
    pc.add_argument("--config", required=True)
    pc.add_argument("--process", required=True, choices=PYTHIA_PROCESSES)
    pc.add_argument("--chunk", required=True, type=int, help="chunk index, from 0")
    pc.add_argument("--out", required=True, help="chunk file (pandas HDF5, LHCO layout + label)")
    dl = sub.add_parser("download", help="fetch the LHCO features or particle file of the config")
    dl.add_argument("--config", required=True)
    dl.add_argument("--out", required=True, help="where the file goes")
    rc = sub.add_parser("raw-chunk", help="cluster one chunk of a raw (particle-level) LHCO file")
    rc.add_argument("--config", required=True)
    rc.add_argument("--input", required=True, help="raw LHCO file (pandas HDF5, 700 particles)")
    rc.add_argument("--chunk", required=True, type=int, help="chunk index, from 0")
    rc.add_argument("--out", required=True, help="chunk file (pandas HDF5, LHCO layout + label)")
    rc.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    mg = sub.add_parser("merge", help="concatenate chunk files into one events file, QCD first")
    mg.add_argument("--inputs", required=True, nargs="+", help="chunk files (pandas HDF5)")
    mg.add_argument(
        "--keep-order",
        action="store_true",
        help="keep the rows in input order (chunks of one real file)",
    )
    mg.add_argument("--out", required=True, help="events file (pandas HDF5, LHCO layout)")
    ft = sub.add_parser("features", help="compute the features table of an events file")
    ft.add_argument("--input", required=True, help="events file: .h5/.hdf5 (key 'df') or .root")
    ft.add_argument("--tree", default=None, help="TTree name in a ROOT file with several trees")
    ft.add_argument("--out", required=True, help="features table (.parquet)")
    ft.add_argument(
        "--config",
        default=None,
        help="config whose data.file (branch names, jet branches) says how to read "
        "a user's file (data.source: file)",
    )
    args = p.parse_args(argv)
    if args.command == "events":
        make_events(cfgmod.load(args.config), args.out)
    elif args.command == "pythia-chunk":
        make_pythia_chunk(cfgmod.load(args.config), args.process, args.chunk, args.out)
    elif args.command == "download":
        download_file(cfgmod.load(args.config), args.out)
    elif args.command == "raw-chunk":
        make_raw_chunk(
            cfgmod.load(args.config),
            args.input,
            args.chunk,
            args.out,
            progress=not args.no_progress,
        )
    elif args.command == "merge":
        merge_chunks(args.inputs, args.out, keep_order=args.keep_order)
    else:
        config = cfgmod.load(args.config) if args.config else None
        make_features(args.input, args.tree, args.out, config)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
