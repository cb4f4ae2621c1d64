"""An :class:`Ensemble` of one kind of classifier whose predicted probabilities are averaged.

Averaging members trained on different splits of the same data (and different seeds) lowers the
variance of a score learnt from few signal events, where a single classifier's ranking of the
most signal-like events is noisy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.scores.classifiers import CLASSIFIERS, BinaryClassifier, check_xy


def _stratified_split(
    y: np.ndarray, n_val_per_class: dict[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c, n_val in n_val_per_class.items():
        idx = rng.permutation(np.flatnonzero(y == c))
        valid.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


class Ensemble:
    """``n_members`` classifiers of one kind whose predicted probabilities are averaged.

    Member 0 trains on the split it is given; every further member trains on a fresh random
    stratified re-split of train+validation (same validation size per class) with its own derived
    seed. Besides the seed this is the members' diversity (gradient boosting without subsampling is
    nearly deterministic), in the spirit of the nested cross-validation of CWoLa hunting; all of it
    stays inside the data the caller allowed, so nothing outside leaks in.

    Parameters
    ----------
    kind : {"hgb", "mlp"}
        The members' classifier (a key of :data:`~anomalyhunt.scores.classifiers.CLASSIFIERS`).
    params : mapping
        The members' hyperparameters (keyword arguments of that class; missing ones take its
        defaults), e.g. the config's ``hgb`` or ``mlp`` block.
    n_members : int
        Number of members.
    seed : int
        Seeds the re-splits and, through derived seeds, every member.
    device : str, default "cpu"
        Torch device of the members.
    threads : int, default 1
        CPU threads per member.
    """

    MANIFEST = "ensemble.json"

    def __init__(
        self,
        kind: str,
        params: Mapping[str, Any] | None,
        n_members: int,
        *,
        seed: int,
        device: str = "cpu",
        threads: int = 1,
    ) -> None:
        if n_members < 1:
            raise AnomalyHuntError(f"an ensemble needs at least one member, got {n_members}")
        if kind not in CLASSIFIERS:
            raise AnomalyHuntError(f"unknown classifier '{kind}'; use one of {sorted(CLASSIFIERS)}")
        self.kind = kind
        self.params = dict(params or {})
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)
        self.members: list[BinaryClassifier] = []

    def member_seed(self, i: int) -> int:
        """The seed of member ``i``."""
        return derive_seed(self.seed, "member", i)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> Ensemble:
        X, y = check_xy(X, y, "training data")
        X_val, y_val = check_xy(X_val, y_val, "validation data")
        X_all, y_all = np.concatenate([X, X_val]), np.concatenate([y, y_val])
        sw_all = None
        if sample_weight is not None or sample_weight_val is not None:
            sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
            swv = (
                np.ones(len(y_val))
                if sample_weight_val is None
                else np.asarray(sample_weight_val, float)
            )
            sw_all = np.concatenate([sw, swv])
        n_val = {c: int((y_val == c).sum()) for c in (0, 1)}
        self.members = []
        for i in range(self.n_members):
            seed = self.member_seed(i)
            if i == 0:
                tr = np.arange(len(y))
                va = np.arange(len(y), len(y_all))
            else:
                tr, va = _stratified_split(y_all, n_val, derive_seed(seed, "split"))
            member = CLASSIFIERS[self.kind].from_config(
                self.params, seed=seed, device=self.device, threads=self.threads
            )
            member.fit(
                X_all[tr],
                y_all[tr],
                X_all[va],
                y_all[va],
                None if sw_all is None else sw_all[tr],
                None if sw_all is None else sw_all[va],
            )
            self.members.append(member)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not self.members:
            raise RuntimeError("Ensemble: call fit() or load() first")
        return np.mean([m.predict_proba(X) for m in self.members], axis=0)

    def save(self, directory: str | os.PathLike) -> None:
        """One file per member plus a manifest (written last, so its presence means complete)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for i, member in enumerate(self.members):
            name = f"member_{i:02d}{member.suffix}"
            member.save(directory / name)
            files.append(name)
        write_json(
            {
                "kind": self.kind,
                "params": self.params,
                "seed": self.seed,
                "n_members": self.n_members,
                "members": files,
            },
            directory / self.MANIFEST,
        )

    @classmethod
    def load(
        cls, directory: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> Ensemble:
        directory = Path(directory)
        manifest = read_json(directory / cls.MANIFEST)
        ens = cls(
            manifest["kind"],
            manifest["params"],
            manifest["n_members"],
            seed=manifest["seed"],
            device=device,
            threads=threads,
        )
        member_cls = CLASSIFIERS[manifest["kind"]]
        ens.members = [
            member_cls.load(directory / f, device=device, threads=threads)
            for f in manifest["members"]
        ]
        return ens
