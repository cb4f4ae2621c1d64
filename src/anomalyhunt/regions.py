"""Sliding mjj windows (signal region + two sidebands), signal injection and k-fold assignment.

The window geometry is a pure function of the config, so Snakemake knows every job before any data
exists; whether a window has enough events is decided by this stage and recorded (``skipped``), and
the later stages honour it instead of crashing on an empty window.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import FEATURE_COLUMNS, cli
from anomalyhunt import config as cfgmod
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, read_parquet, write_json, write_parquet

log = logging.getLogger(__name__)

OUTSIDE, SIDEBAND, SIGNAL_REGION = 0, 1, 2


@dataclass(frozen=True)
class Window:
    id: str
    sr: tuple[float, float]
    sb_low: tuple[float, float]
    sb_high: tuple[float, float]

    @property
    def centre(self) -> float:
        return 0.5 * (self.sr[0] + self.sr[1])

    @property
    def span(self) -> tuple[float, float]:
        return (self.sb_low[0], self.sb_high[1])

    def region_of(self, mjj: np.ndarray) -> np.ndarray:
        """0 outside the window, 1 in a sideband, 2 in the signal region (half-open intervals)."""
        mjj = np.asarray(mjj)
        region = np.zeros(mjj.shape, dtype=np.int8)
        region[(mjj >= self.span[0]) & (mjj < self.span[1])] = SIDEBAND
        region[(mjj >= self.sr[0]) & (mjj < self.sr[1])] = SIGNAL_REGION
        return region

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Window:
        return cls(d["id"], tuple(d["sr"]), tuple(d["sb_low"]), tuple(d["sb_high"]))


def windows(regions_cfg: dict[str, Any]) -> list[Window]:
    """Every window of the scan: SRs of ``sr_width`` every ``step``, sidebands inside ``scan``."""
    lo, hi = regions_cfg["scan"]["min"], regions_cfg["scan"]["max"]
    width, step, sb = regions_cfg["sr_width"], regions_cfg["step"], regions_cfg["sideband_width"]
    out = []
    k = 0
    while True:
        sr_lo = round(lo + sb + k * step, 6)
        sr_hi = round(sr_lo + width, 6)
        if sr_hi + sb > hi + 1e-9:
            break
        out.append(
            Window(
                f"w{k:02d}",
                (sr_lo, sr_hi),
                (round(sr_lo - sb, 6), sr_lo),
                (sr_hi, round(sr_hi + sb, 6)),
            )
        )
        k += 1
    return out


def window_ids(regions_cfg: dict[str, Any]) -> list[str]:
    return [w.id for w in windows(regions_cfg)]


def inject_signal(features: pd.DataFrame, n_inject: int, seed: int) -> pd.DataFrame:
    """All background events plus ``n_inject`` signal events drawn from the signal pool, shuffled.

    Unlabelled events (label -1, e.g. a black box or the user's data) are kept as they are: they
    are the data. ``event_id`` is the row in the features table, so every event can be traced.
    """
    labels = features["label"].to_numpy()
    rng = np.random.default_rng(seed)
    signal_rows = np.flatnonzero(labels == 1)
    if n_inject > len(signal_rows):
        raise AnomalyHuntError(
            f"regions.n_inject = {n_inject} but the data hold only {len(signal_rows)} signal events"
        )
    chosen = rng.choice(signal_rows, size=n_inject, replace=False) if n_inject else np.empty(0, int)
    keep = np.concatenate([np.flatnonzero(labels != 1), np.sort(chosen)])
    rng.shuffle(keep)
    data = features.iloc[keep].reset_index(drop=True)
    data.insert(0, "event_id", keep.astype(np.int64))
    return data


def assign_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """Balanced random fold ids 0..folds-1."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % folds).astype(np.int8)


def summarize_windows(
    data: pd.DataFrame, wins: Sequence[Window], min_events: dict[str, int]
) -> list[dict[str, Any]]:
    mjj = data["mjj"].to_numpy()
    labels = data["label"].to_numpy()
    rows = []
    for w in wins:
        region = w.region_of(mjj)
        n_sr, n_sb = int((region == SIGNAL_REGION).sum()), int((region == SIDEBAND).sum())
        reason = None
        if n_sr < min_events["sr"]:
            reason = f"{n_sr} events in the signal region, fewer than regions.min_events.sr = {min_events['sr']}"
        elif n_sb < min_events["sb"]:
            reason = f"{n_sb} events in the sidebands, fewer than regions.min_events.sb = {min_events['sb']}"
        row = asdict(w) | {"centre": w.centre, "n_sr": n_sr, "n_sb": n_sb, "skipped": reason}
        row["n_signal_sr"] = int(((region == SIGNAL_REGION) & (labels == 1)).sum())
        rows.append(row)
        if reason:
            log.warning("window %s (SR %.2f-%.2f TeV) skipped: %s", w.id, *w.sr, reason)
    return rows


def build(features: pd.DataFrame, config: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The data sample of the search (with folds) and the description of its windows."""
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise AnomalyHuntError(f"features table lacks columns {missing}")
    rc = config["regions"]
    minimum = rc["min_events"]["sr"] + rc["min_events"]["sb"]
    if len(features) < minimum:
        raise AnomalyHuntError(
            f"the data hold {len(features)} events, fewer than the {minimum} that one window needs "
            f"(regions.min_events: sr {rc['min_events']['sr']} + sb {rc['min_events']['sb']}); "
            "nothing could be tested"
        )
    n_inject = rc["n_inject"] if (features["label"] == 1).any() else 0
    if rc["n_inject"] and not n_inject:
        log.warning("the data have no labelled signal events: nothing injected")
    data = inject_signal(features, n_inject, cfgmod.derive_seed(config["seed"], "inject"))
    data["fold"] = assign_folds(len(data), rc["folds"], cfgmod.derive_seed(config["seed"], "folds"))
    wins = windows(rc)
    meta = {
        "n_events": len(data),
        "n_injected": int(n_inject),
        "folds": rc["folds"],
        "windows": summarize_windows(data, wins, rc["min_events"]),
    }
    if all(w["skipped"] for w in meta["windows"]):
        first = meta["windows"][0]
        raise AnomalyHuntError(
            f"all {len(wins)} windows of regions.scan [{rc['scan']['min']}, {rc['scan']['max']}] TeV "
            f"have too few events (e.g. {first['id']}: {first['skipped']}); nothing could be "
            f"tested in {len(data)} events"
        )
    return data, meta


def load_windows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The window records of a windows.json (id, sr, sidebands, counts, ``skipped`` reason)."""
    return read_json(path)["windows"]


def find_window(path: str | os.PathLike, window_id: str) -> tuple[Window, str | None]:
    """Window ``window_id`` of a windows.json and why it was skipped (None if it was not).

    The one lookup every per-window command uses, so a wrong id is the same clear error everywhere.
    """
    by_id = {w["id"]: w for w in load_windows(path)}
    if window_id not in by_id:
        raise AnomalyHuntError(
            f"{path}: no window '{window_id}' (known: {', '.join(by_id) or 'none'})"
        )
    record = by_id[window_id]
    return Window.from_dict(record), record.get("skipped")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.regions", description=__doc__.splitlines()[0]
    )
    p.add_argument("--config", required=True)
    p.add_argument("--features", required=True, help="features.parquet from the data stage")
    p.add_argument("--out-events", required=True, help="events.parquet: the data sample with folds")
    p.add_argument("--out-windows", required=True, help="windows.json")
    args = p.parse_args(argv)
    config = cfgmod.load(args.config)
    data, meta = build(read_parquet(args.features), config)
    write_parquet(data, args.out_events)
    write_json(meta, args.out_windows)
    n_ok = sum(w["skipped"] is None for w in meta["windows"])
    log.info(
        "%d events (%d signal injected), %d of %d windows usable",
        len(data),
        meta["n_injected"],
        n_ok,
        len(meta["windows"]),
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
