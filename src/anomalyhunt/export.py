"""Tables of the search as ROOT TTrees, for analysers whose tools read ROOT rather than parquet.

``python -m anomalyhunt.export --input scores.parquet [--events events.parquet] --out scores.root
[--selected-out selected.root --keep-fraction 0.01] [--tree events]``

The input (parquet or pandas HDF5) is written as one flat TTree, one branch per column. With
``--events`` (the regions stage's events.parquet) the scores gain each event's features, joined
on ``event_id``. ``--selected-out`` writes only the events that pass a score cut keeping the top
``--keep-fraction`` of each fold, the same cut as the bump hunt's (so the file holds exactly
the events of that bump-hunt selection). Every file is written atomically.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from anomalyhunt import cli
from anomalyhunt.data.files import HDF_SUFFIXES, write_events_root
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet

log = logging.getLogger("anomalyhunt.export")


def read_table(path: str | Path) -> pd.DataFrame:
    """A parquet or pandas-HDF5 table (key 'df' or the only one)."""
    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    if path.suffix.lower() == ".parquet":
        return read_parquet(path)
    if path.suffix.lower() in HDF_SUFFIXES:
        from anomalyhunt.data import safe_hdf

        return safe_hdf.read_frame(path)  # numeric columns only; nothing is unpickled
    raise AnomalyHuntError(f"{path}: unknown table type '{path.suffix}'; use .parquet or .h5")


def with_features(scores: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Scores with each event's feature columns (those the scores table lacks), by ``event_id``."""
    if "event_id" not in scores.columns or "event_id" not in events.columns:
        raise AnomalyHuntError("--events: both tables need an 'event_id' column to be joined")
    extra = ["event_id", *[c for c in events.columns if c not in scores.columns]]
    out = scores.merge(events[extra], on="event_id", how="left", validate="one_to_one")
    if len(scores) and out[extra[1:]].isna().any(axis=None):
        raise AnomalyHuntError("--events: some scored events are not in the events table")
    return out


def select(scores: pd.DataFrame, keep_fraction: float) -> pd.DataFrame:
    """The events above the bump hunt's per-fold score cut at ``keep_fraction``."""
    from anomalyhunt.bumphunt import cut_mask

    if not 0 < keep_fraction <= 1:
        raise AnomalyHuntError(f"--keep-fraction must be in (0, 1], got {keep_fraction}")
    if len(scores) == 0:
        return scores
    for col in ("score", "fold"):
        if col not in scores.columns:
            raise AnomalyHuntError(f"a score cut needs a '{col}' column (a scores table)")
    keep, _ = cut_mask(scores, keep_fraction)
    return scores[keep].reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.export", description=__doc__.splitlines()[0]
    )
    p.add_argument("--input", required=True, help="table to export (.parquet or .h5)")
    p.add_argument(
        "--events", default=None, help="events.parquet whose features are joined on event_id"
    )
    p.add_argument("--out", required=True, help="ROOT file with every row")
    p.add_argument("--selected-out", default=None, help="ROOT file with the events passing the cut")
    p.add_argument(
        "--keep-fraction",
        type=float,
        default=0.01,
        help="fraction of each fold's events kept by the cut (default 0.01)",
    )
    p.add_argument("--tree", default="events", help="TTree name (default: events)")
    args = p.parse_args(argv)
    if not args.out.endswith(".root") or (
        args.selected_out and not args.selected_out.endswith(".root")
    ):
        raise AnomalyHuntError("--out and --selected-out must be .root files")
    table = read_table(args.input)
    if args.events:
        table = with_features(table, read_parquet(args.events))
    selected = select(table, args.keep_fraction) if args.selected_out else None
    write_events_root(table, args.out, tree=args.tree)
    log.info("%d rows -> %s:%s", len(table), args.out, args.tree)
    if selected is not None:
        write_events_root(selected, args.selected_out, tree=args.tree)
        log.info(
            "%d rows above the %g cut -> %s", len(selected), args.keep_fraction, args.selected_out
        )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
