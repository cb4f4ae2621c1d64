"""Out-of-fold scoring: every window event is scored by models that never saw it.

The scores later select events for the bump hunt in the very same data, so an event scored by a
model trained on it would carry an upward bias exactly where the search looks (the SR). k-fold
cross-scoring removes that bias while still using all events for both training and scoring.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import anomalyhunt
from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path, read_json
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


#: Bump when the checkpoint layout or the fingerprint changes, so older checkpoints are not trusted.
CHECKPOINT_FORMAT = 1
#: Libraries whose version can change what a trained model scores.
_LIBRARIES = ("numpy", "scikit-learn", "torch", "nflows")


def _sha256(*arrays: np.ndarray) -> str:
    """Hash of arrays' dtypes, shapes and bytes: equal hashes mean equal training inputs."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_CODE_VERSION: dict[str, str] = {}


def code_version() -> dict[str, str]:
    """A hash of this package's source and the library versions.

    A checkpoint trained by other code (a fixed bug, a new sklearn) must be retrained, not resumed,
    or a ``--forcerun scores`` after a code change would silently keep the old models.
    """
    if not _CODE_VERSION:
        root = Path(anomalyhunt.__file__).resolve().parent
        h = hashlib.sha256()
        for f in sorted(root.rglob("*.py")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE_VERSION["anomalyhunt"] = f"{anomalyhunt.__version__}+{h.hexdigest()[:16]}"
        for lib in _LIBRARIES:
            try:
                _CODE_VERSION[lib] = metadata.version(lib)
            except metadata.PackageNotFoundError:
                _CODE_VERSION[lib] = "absent"
    return dict(_CODE_VERSION)


def _dumps(obj: Any) -> str:
    """Canonical JSON text: fingerprints are compared as text, so NaN or tuples compare as stored."""
    return json.dumps(obj, sort_keys=True, default=str)


def _canonical(obj: Any) -> Any:
    """The JSON round trip of ``obj``, so a fresh fingerprint compares equal to a stored one."""
    return json.loads(_dumps(obj))


def _checkpoint_paths(model_dir: Path, k: int) -> tuple[Path, Path, Path]:
    """(model, scores, marker) of fold ``k``; the marker is written last and means 'finished'."""
    return (
        model_dir / f"fold{k}",
        model_dir / f"fold{k}.scores.npz",
        model_dir / f"fold{k}.done.json",
    )


def _clean_staging(model_dir: Path) -> None:
    """Remove temporary files and directories a killed run left behind (never a finished fold)."""
    for p in model_dir.glob(".fold*.tmp*"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _load_checkpoint(
    model_dir: Path, k: int, fingerprint: dict[str, Any], event_ids: np.ndarray
) -> tuple[np.ndarray | None, str]:
    """Fold ``k``'s saved out-of-fold scores if its checkpoint is complete and matches, else why not."""
    model, scores_file, marker = _checkpoint_paths(model_dir, k)
    if not marker.exists():
        return None, ""
    try:
        done = read_json(marker)
    except AnomalyHuntError as exc:
        return None, f"its marker is unreadable ({exc})"
    old = done.get("fingerprint") if isinstance(done, dict) else None
    if not isinstance(old, dict):
        return None, "its marker holds no fingerprint"
    if _dumps(old) != _dumps(fingerprint):
        keys = sorted(
            key
            for key in set(old) | set(fingerprint)
            if _dumps(old.get(key)) != _dumps(fingerprint.get(key))
        )
        return None, f"the fingerprint differs in {', '.join(keys)}"
    if not model.exists():
        return None, f"its model {model.name} is missing"
    try:
        if _file_sha256(scores_file) != done.get("scores_sha256"):
            return None, f"{scores_file.name} does not match the marker"
        with np.load(scores_file) as z:
            ids, score = z["event_id"], z["score"]
    except (OSError, KeyError, ValueError) as exc:
        return None, f"{scores_file.name} is unreadable ({exc})"
    if not np.array_equal(ids, event_ids) or score.shape != event_ids.shape:
        return None, f"{scores_file.name} holds other events"
    return score.astype(np.float64, copy=False), ""


def _save_checkpoint(
    model_dir: Path,
    k: int,
    scorer: Scorer,
    fingerprint: dict[str, Any],
    event_ids: np.ndarray,
    score: np.ndarray,
) -> None:
    """Write fold ``k``'s model and scores, each atomically, then the marker that vouches for them."""
    model, scores_file, marker = _checkpoint_paths(model_dir, k)
    marker.unlink(missing_ok=True)  # the old marker must never vouch for a half-replaced model
    # the model goes to a fresh staging path (scorers save a file or a directory) and is renamed
    # into place in one step
    staging = Path(tempfile.mkdtemp(prefix=f".fold{k}.", suffix=".tmp", dir=model_dir))
    try:
        scorer.save(staging / "model")
        if model.is_dir() and not model.is_symlink():
            shutil.rmtree(model)
        else:
            model.unlink(missing_ok=True)
        os.replace(staging / "model", model)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with atomic_path(scores_file) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, event_id=event_ids, score=score)
    done = {
        "format": CHECKPOINT_FORMAT,
        "fold": k,
        "model": model.name,
        "scores": scores_file.name,
        "scores_sha256": _file_sha256(scores_file),
        "fingerprint": fingerprint,
    }
    with atomic_path(marker) as tmp:  # not write_json: it would store NaN as null
        tmp.write_text(json.dumps(done, indent=2, sort_keys=True, default=str) + "\n")


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
    resume: bool = True,
    fingerprint_extra: dict[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score the window's events (SR and sidebands) fold by fold.

    For fold k a fresh scorer, ``scorer_cls.from_config(params, ...)``, trains on the window
    events of all other folds (split at random into train and validation by
    ``validation_fraction``, stratified by region) and scores fold k. Returns one row per window
    event, in the order of ``events``, with columns :data:`SCORE_COLUMNS`.

    With ``model_dir``, each finished fold leaves ``fold<k>`` (its model), ``fold<k>.scores.npz``
    (its out-of-fold scores) and, written last, ``fold<k>.done.json`` holding the fold's
    fingerprint: method, params, seed, fold, validation fraction, device, window, a hash of the
    window's events (ids, folds, features, mjj) and of the fold's event ids, the code version and
    ``fingerprint_extra`` (anything else the caller's scorer depends on). A rerun with
    ``resume`` reuses every fold whose fingerprint matches instead of retraining it, so a killed
    job picks up where it stopped and returns exactly the scores of an uninterrupted run.
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
    event_id = inside["event_id"].to_numpy(dtype=np.int64)
    ckpt_dir = None if model_dir is None else Path(model_dir)
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        _clean_staging(ckpt_dir)
        base_fingerprint = {
            "format": CHECKPOINT_FORMAT,
            "method": scorer_cls.name,
            "params": params,
            "seed": int(seed),
            "validation_fraction": float(validation_fraction),
            "device": device,
            "window": {
                "id": window.id,
                "sr": list(window.sr),
                "sb_low": list(window.sb_low),
                "sb_high": list(window.sb_high),
            },
            "window_events_sha256": _sha256(event_id, fold, data.X, data.mjj, data.region),
            "code": code_version(),
            "extra": fingerprint_extra or {},
        }
    for k in folds:
        t0 = time.perf_counter()
        test = fold == k
        if ckpt_dir is not None:
            fingerprint = _canonical(
                base_fingerprint
                | {"fold": int(k), "fold_event_ids_sha256": _sha256(event_id[test])}
            )
            if resume:
                saved, why = _load_checkpoint(ckpt_dir, int(k), fingerprint, event_id[test])
                if saved is not None:
                    score[test] = saved
                    report(
                        "window %s, %s fold %d/%d: resumed fold %d from %s (fingerprint matches)",
                        window.id,
                        scorer_cls.name,
                        int(k) + 1,
                        len(folds),
                        int(k),
                        ckpt_dir,
                    )
                    continue
                if why:
                    log.info(
                        "window %s, %s: retraining fold %d, its checkpoint is stale: %s",
                        window.id,
                        scorer_cls.name,
                        int(k),
                        why,
                    )
            _checkpoint_paths(ckpt_dir, int(k))[2].unlink(missing_ok=True)
        pool = np.flatnonzero(~test)
        pool_data = data.subset(pool)
        tr, va = split_train_valid(
            pool_data.region, validation_fraction, derive_seed(seed, "split", int(k))
        )
        train, valid = pool_data.subset(tr), pool_data.subset(va)
        _require(train, scorer_cls.requires_regions, f"training set of fold {k}", window)
        _require(valid, scorer_cls.requires_regions, f"validation set of fold {k}", window)
        scorer = scorer_cls.from_config(
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
        if ckpt_dir is not None:
            _save_checkpoint(ckpt_dir, int(k), scorer, fingerprint, event_id[test], s)
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
            "event_id": event_id,
            "mjj": data.mjj,
            "region": data.region.astype(np.int8),
            "fold": fold,
            "label": data.label.astype(np.int8),
            "score": score,
        }
    )
    return out
