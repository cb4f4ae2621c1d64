"""The data stage: make the events (toy or LHCO download), then the features table.

``python -m anomalyhunt.data events --config CONFIG --out EVENTS.h5``
``python -m anomalyhunt.data features --input EVENTS --out FEATURES.parquet``
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.data.features import compute_features
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import write_hdf, write_parquet

log = logging.getLogger("anomalyhunt.data")


def make_events(config: dict[str, Any], out: str) -> None:
    """Write the events the config asks for; a user's own file is read directly by `features`."""
    source = config["data"]["source"]
    if source == "toy":
        from anomalyhunt.data import toy

        tc = config["data"]["toy"]
        events = toy.generate(
            tc["n_background"], tc["n_signal"], cfgmod.derive_seed(config["seed"], "toy"),
            mjj_correlation=tc["mjj_correlation"], mjj_signal=tc["signal"]["mjj"],
            mx=tc["signal"]["mx"], my=tc["signal"]["my"],
        )  # fmt: skip
        write_hdf(events, out)
        log.info("toy: %d background + %d signal events -> %s",
                 tc["n_background"], tc["n_signal"], out)  # fmt: skip
    elif source == "lhco":
        from anomalyhunt.data import lhco

        lc = config["data"]["lhco"]
        lhco.download(lc["url"], out, lc["md5"])
    else:
        raise AnomalyHuntError(
            f"data.source is '{source}': a user's file needs no events step; run "
            "'python -m anomalyhunt.data features --input YOUR_FILE' (the workflow does so)"
        )


def make_features(path: str, tree: str | None, out: str) -> None:
    """Features table of an events file, with the signal/background counts logged."""
    from anomalyhunt.data.files import read_events

    features = compute_features(read_events(path, tree), source=str(path))
    write_parquet(features, out)
    labels = features["label"].to_numpy()
    n_sig, n_bkg = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    n_unknown = len(labels) - n_sig - n_bkg
    log.info("%d events (%d signal, %d background, %d unlabelled) -> %s",
             len(labels), n_sig, n_bkg, n_unknown, out)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m anomalyhunt.data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("events", help="generate the toy events or download the LHCO file")
    ev.add_argument("--config", required=True)
    ev.add_argument("--out", required=True, help="events file (pandas HDF5, LHCO layout)")
    ft = sub.add_parser("features", help="compute the features table of an events file")
    ft.add_argument("--input", required=True, help="events file: .h5/.hdf5 (key 'df') or .root")
    ft.add_argument("--tree", default=None, help="TTree name in a ROOT file with several trees")
    ft.add_argument("--out", required=True, help="features table (.parquet)")
    args = p.parse_args(argv)
    if args.command == "events":
        make_events(cfgmod.load(args.config), args.out)
    else:
        make_features(args.input, args.tree, args.out)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
