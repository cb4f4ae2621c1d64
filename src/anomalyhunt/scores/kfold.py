"""Out-of-fold scoring: every window event is scored by models that never saw it.

The scores later select events for the bump hunt in the very same data, so an event scored by a
model trained on it would carry an upward bias exactly where the search looks (the SR). k-fold
cross-scoring removes that bias while still using all events for both training and scoring.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION, Window
from anomalyhunt.scores.base import Scorer, WindowData

log = logging.getLogger(__name__)

#: Columns of every scores table (an empty table for a skipped window has the same ones).
SCORE_COLUMNS: tuple[str, ...] = ("event_id", "mjj", "region", "fold", "label", "score")
_REGION_NAMES = {SIDEBAND: "sideband", SIGNAL_REGION: "signal-region"}


def empty_scores() -> pd.DataFrame:
    """A scores table with no rows and the usual column types."""
    return pd.DataFrame(
        {
            "event_id": np.empty(0, np.int64),
            "mjj": np.empty(0, np.float64),
            "region": np.empty(0, np.int8),
            "fold": np.empty(0, np.int8),
            "label": np.empty(0, np.int8),
            "score": np.empty(0, np.float64),
        }
    )


def split_train_valid(
    region: np.ndarray, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation indices, stratified by region so both keep the SR/SB mix."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for r in np.unique(region):
        idx = rng.permutation(np.flatnonzero(region == r))
        n_val = int(round(validation_fraction * len(idx)))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        valid.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def _require(data: WindowData, regions: tuple[int, ...], what: str, window: Window) -> None:
    for r in regions:
        if data.count(r) == 0:
            raise AnomalyHuntError(
                f"window {window.id}: the {what} has no {_REGION_NAMES.get(r, f'region {r}')} "
                f"events; the window holds too few events for k-fold scoring "
                f"(raise regions.min_events or lower regions.folds)"
            )


def score_out_of_fold(
    scorer_cls: type[Scorer],
    params: dict[str, Any],
    events: pd.DataFrame,
    window: Window,
    *,
    seed: int,
    device: str = "cpu",
    threads: int = 1,
    validation_fraction: float = 0.2,
    model_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score the window's events (SR and sidebands) fold by fold.

    For fold k a fresh scorer trains on the window events of all other folds (split at random into
    train and validation by ``validation_fraction``, stratified by region) and scores fold k.
    Returns one row per window event, in the order of ``events``, with columns
    :data:`SCORE_COLUMNS`. Each fold's model goes to ``model_dir/fold<k>`` when given.
    """
    missing = [c for c in ("event_id", "fold") if c not in events.columns]
    if missing:
        raise AnomalyHuntError(f"events table lacks columns {missing}")
    if not 0 < validation_fraction < 1:
        raise AnomalyHuntError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    region = window.region_of(events["mjj"].to_numpy())
    inside = events.loc[region > 0]
    data = WindowData.from_frame(inside, window)
    fold = inside["fold"].to_numpy().astype(np.int8)
    out = empty_scores()
    if len(data) == 0:
        log.warning("window %s holds no events: nothing to score", window.id)
        return out
    folds = np.unique(fold)
    if len(folds) < 2:
        raise AnomalyHuntError(
            f"window {window.id}: all its events are in one fold; k-fold scoring needs at least two"
        )
    report = log.info if progress else log.debug
    score = np.full(len(data), np.nan)
    for k in folds:
        t0 = time.perf_counter()
        test = fold == k
        pool = np.flatnonzero(~test)
        pool_data = data.subset(pool)
        tr, va = split_train_valid(
            pool_data.region, validation_fraction, derive_seed(seed, "split", int(k))
        )
        train, valid = pool_data.subset(tr), pool_data.subset(va)
        _require(train, scorer_cls.requires_regions, f"training set of fold {k}", window)
        _require(valid, scorer_cls.requires_regions, f"validation set of fold {k}", window)
        scorer = scorer_cls(
            params, seed=derive_seed(seed, "fold", int(k)), device=device, threads=threads
        )
        scorer.fit(train, valid)
        s = np.asarray(scorer.score(data.subset(test)), dtype=np.float64)
        if s.shape != (int(test.sum()),) or not np.isfinite(s).all():
            raise AnomalyHuntError(
                f"window {window.id}, fold {k}: the '{scorer_cls.name}' scorer gave "
                f"{'non-finite' if s.shape == (int(test.sum()),) else 'the wrong number of'} scores"
            )
        score[test] = s
        if model_dir is not None:
            scorer.save(Path(model_dir) / f"fold{int(k)}")
        report(
            "window %s, %s fold %d/%d: trained on %d (+%d validation), scored %d in %.1f s",
            window.id,
            scorer_cls.name,
            int(k) + 1,
            len(folds),
            len(train),
            len(valid),
            int(test.sum()),
            time.perf_counter() - t0,
        )
    out = pd.DataFrame(
        {
            "event_id": inside["event_id"].to_numpy(dtype=np.int64),
            "mjj": data.mjj,
            "region": data.region.astype(np.int8),
            "fold": fold,
            "label": data.label.astype(np.int8),
            "score": score,
        }
    )
    return out
