"""Two interchangeable binary classifiers (a PyTorch MLP and scikit-learn's histogram gradient
boosting) behind one small interface, and an :class:`Ensemble` that averages several of them.

Both weight the two classes equally (CWoLa's SR and SB differ in size and the score should not
just learn the prior), stop early on a validation set the caller provides, and are deterministic
given their seed and thread count.

Interface: ``fit(X, y, X_val, y_val, sample_weight=None, sample_weight_val=None) -> self``,
``predict_proba(X) -> P(class 1)`` as a 1-D float64 array (unlike scikit-learn's (n, 2) matrix),
``save(path)`` and ``classmethod load(path, device=..., threads=...)``.
"""

from __future__ import annotations

import abc
import inspect
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path, read_json, write_json
from anomalyhunt.scores.torchio import EarlyStopping, load_payload, save_payload, state_dict_cpu

log = logging.getLogger(__name__)


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-event weights under which both classes carry the same total weight (n/2 each)."""
    y = np.asarray(y)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    out = np.empty(len(y), dtype=np.float64)
    for c in (0, 1):
        sel = y == c
        total = w[sel].sum()
        if total <= 0:
            raise AnomalyHuntError(
                f"cannot train a classifier: class {c} has no events (or weight)"
            )
        out[sel] = w[sel] * (0.5 * len(y) / total)
    return out


def _check_xy(X: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"{what}: X of shape {X.shape} does not match {len(y)} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 or 1")
    if not np.isfinite(X).all():
        raise AnomalyHuntError(f"{what}: the features contain NaN or infinite values")
    return X, y


class BinaryClassifier(abc.ABC):
    """A binary classifier with early stopping on a given validation set."""

    kind: ClassVar[str] = ""
    suffix: ClassVar[str] = ""

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        self.params = dict(params)
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)

    @abc.abstractmethod
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> BinaryClassifier:
        """Train on (X, y); (X_val, y_val) decides when to stop."""

    @abc.abstractmethod
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1 | x) for each row, float64."""

    @abc.abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Write the trained model to one file."""

    @classmethod
    @abc.abstractmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> BinaryClassifier:
        """Read a model written by :meth:`save`."""


# --------------------------------------------------------------------------------------------
# PyTorch MLP


def _build_mlp(n_features: int, hidden: list[int]) -> Any:
    import torch
    from torch import nn

    class _Net(nn.Module):
        """Standardises its input with stored statistics, so a saved model is self-contained."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(n_features))
            self.register_buffer("scale", torch.ones(n_features))
            layers: list[nn.Module] = []
            width = n_features
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            layers.append(nn.Linear(width, 1))
            self.body = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body((x - self.mean) / self.scale).squeeze(-1)

    return _Net()


class MLPClassifier(BinaryClassifier):
    """A small fully connected network: ReLU layers of ``hidden`` widths, BCE-with-logits, Adam.

    Early stopping: after each epoch the class-weighted validation loss is computed; training stops
    after ``patience`` epochs without improvement and the best epoch's weights are restored.
    """

    kind = "mlp"
    suffix = ".pt"
    FORMAT = "anomalyhunt.mlp/1"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden": [64, 64, 64],
        "epochs": 50,
        "batch_size": 1024,
        "learning_rate": 1e-3,
        "patience": 5,
    }

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        super().__init__(self.DEFAULTS | dict(params), seed=seed, device=device, threads=threads)
        self.net: Any = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    def _weighted_loss(self, X: Any, y: Any, w: Any) -> float:
        import torch
        import torch.nn.functional as F

        total = 0.0
        bs = 65536
        with torch.no_grad():
            for start in range(0, len(X), bs):
                logits = self.net(X[start : start + bs])
                loss = F.binary_cross_entropy_with_logits(
                    logits, y[start : start + bs], reduction="none"
                )
                total += float((loss * w[start : start + bs]).sum())
        return total / float(w.sum())

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> MLPClassifier:
        import torch
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        X, y = _check_xy(X, y, "training data")
        X_val, y_val = _check_xy(X_val, y_val, "validation data")
        w = balanced_weights(y, sample_weight)
        w_val = balanced_weights(y_val, sample_weight_val)
        p = self.params
        torch.set_num_threads(self.threads)
        dev = torch.device(self.device)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = _build_mlp(X.shape[1], list(p["hidden"]))
        mean = X.mean(axis=0, dtype=np.float64)
        scale = X.std(axis=0, dtype=np.float64)
        scale[scale <= 0] = 1.0
        self.net.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.net.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.net.to(dev)

        def tensors(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[Any, Any, Any]:
            return (
                torch.as_tensor(a, device=dev),
                torch.as_tensor(b, dtype=torch.float32, device=dev),
                torch.as_tensor(c, dtype=torch.float32, device=dev),
            )

        Xt, yt, wt = tensors(X, y, w)
        Xv, yv, wv = tensors(X_val, y_val, w_val)
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["learning_rate"]))
        gen = torch.Generator().manual_seed(self.seed)
        bs = int(p["batch_size"])
        n = len(Xt)

        stopper = EarlyStopping(int(p["patience"]))
        self.history = []
        bar = tqdm(
            range(int(p["epochs"])),
            desc="mlp",
            unit="epoch",
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        for epoch in bar:
            self.net.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            train_sum = 0.0
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                wb = wt[idx]
                loss_each = F.binary_cross_entropy_with_logits(
                    self.net(Xt[idx]), yt[idx], reduction="none"
                )
                loss = (loss_each * wb).sum() / wb.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                train_sum += float(loss.detach()) * len(idx)
            self.net.eval()
            val_loss = self._weighted_loss(Xv, yv, wv)
            self.history.append({"epoch": epoch, "train_loss": train_sum / n, "val_loss": val_loss})
            bar.set_postfix(val_loss=f"{val_loss:.4f}")
            if stopper.step(epoch, val_loss, self.net):
                break
        bar.close()
        stopper.restore(self.net)
        self.best_epoch = stopper.best_epoch
        self.net.eval()
        log.debug(
            "mlp: %d epochs, best epoch %s, validation loss %.5f",
            len(self.history),
            self.best_epoch,
            stopper.best,
        )
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        if self.net is None:
            raise RuntimeError("MLPClassifier: call fit() or load() first")
        torch.set_num_threads(self.threads)
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(len(X), dtype=np.float64)
        bs = 65536
        self.net.eval()
        with torch.no_grad():
            for start in range(0, len(X), bs):
                xb = torch.as_tensor(X[start : start + bs], device=self.net.mean.device)
                out[start : start + bs] = torch.sigmoid(self.net(xb)).double().cpu().numpy()
        return out

    def save(self, path: str | os.PathLike) -> None:

        if self.net is None:
            raise RuntimeError("MLPClassifier: nothing to save before fit()")
        payload = {
            "format": self.FORMAT,
            "params": {**self.params, "hidden": list(self.params["hidden"])},
            "seed": self.seed,
            "n_features": int(self.net.mean.numel()),
            "best_epoch": -1 if self.best_epoch is None else int(self.best_epoch),
            "state_dict": state_dict_cpu(self.net),
        }
        save_payload(payload, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> MLPClassifier:
        import torch

        payload = load_payload(path, cls.FORMAT, "MLP model", device)
        model = cls(payload["params"], seed=payload["seed"], device=device, threads=threads)
        model.net = _build_mlp(payload["n_features"], list(payload["params"]["hidden"]))
        model.net.load_state_dict(payload["state_dict"])
        model.net.to(torch.device(device)).eval()
        model.best_epoch = None if payload["best_epoch"] < 0 else payload["best_epoch"]
        return model


# --------------------------------------------------------------------------------------------
# scikit-learn histogram gradient boosting


class HGBClassifier(BinaryClassifier):
    """scikit-learn's HistGradientBoostingClassifier with early stopping on the given validation set.

    With scikit-learn >= 1.7 the validation set is passed to ``fit`` (``X_val``), and boosting stops
    when the class-weighted validation log-loss has not improved for ``early_stopping_rounds``
    iterations (as in scikit-learn, those last few trees are kept; at these learning rates they
    change little). Older versions split the same fraction off the pooled data themselves.

    Saved with joblib (a pickle): loading runs code stored in the file, so only load models you
    trained yourself.
    """

    kind = "hgb"
    suffix = ".joblib"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "max_iter": 200,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 200,
        "early_stopping_rounds": 10,
    }

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        super().__init__(self.DEFAULTS | dict(params), seed=seed, device=device, threads=threads)
        self.model: Any = None

    def _estimator(self, validation_fraction: float | None = None) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        p = self.params
        return HistGradientBoostingClassifier(
            max_iter=int(p["max_iter"]),
            learning_rate=float(p["learning_rate"]),
            max_leaf_nodes=int(p["max_leaf_nodes"]),
            min_samples_leaf=int(p["min_samples_leaf"]),
            early_stopping=True,
            scoring="loss",
            n_iter_no_change=int(p["early_stopping_rounds"]),
            validation_fraction=validation_fraction,
            random_state=self.seed % (2**32),
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> HGBClassifier:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        X, y = _check_xy(X, y, "training data")
        X_val, y_val = _check_xy(X_val, y_val, "validation data")
        w = balanced_weights(y, sample_weight)
        w_val = balanced_weights(y_val, sample_weight_val)
        native = "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters
        t0 = time.perf_counter()
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            if native:
                self.model = self._estimator(None)
                self.model.fit(X, y, w, X_val=X_val, y_val=y_val, sample_weight_val=w_val)
            else:  # scikit-learn < 1.7: let it split off a validation set of the same size
                frac = len(X_val) / (len(X) + len(X_val))
                self.model = self._estimator(frac)
                self.model.fit(
                    np.concatenate([X, X_val]),
                    np.concatenate([y, y_val]),
                    np.concatenate([w, w_val]),
                )
        log.debug("hgb: %d iterations in %.1f s", self.model.n_iter_, time.perf_counter() - t0)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        if self.model is None:
            raise RuntimeError("HGBClassifier: call fit() or load() first")
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            proba = self.model.predict_proba(np.ascontiguousarray(X, dtype=np.float32))
        return proba[:, 1].astype(np.float64)

    def save(self, path: str | os.PathLike) -> None:
        import joblib

        if self.model is None:
            raise RuntimeError("HGBClassifier: nothing to save before fit()")
        with atomic_path(path) as tmp:
            joblib.dump({"params": self.params, "seed": self.seed, "model": self.model}, tmp)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> HGBClassifier:
        """Unpickles the file: it can run arbitrary code, so load only models you trained."""
        import joblib

        if not Path(path).exists():
            raise AnomalyHuntError(f"{path}: model file not found")
        payload = joblib.load(path)
        model = cls(payload["params"], seed=payload["seed"], device=device, threads=threads)
        model.model = payload["model"]
        return model


CLASSIFIERS: dict[str, type[BinaryClassifier]] = {"mlp": MLPClassifier, "hgb": HGBClassifier}


def make_classifier(
    kind: str, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
) -> BinaryClassifier:
    """A fresh, untrained classifier of the given kind ('hgb' or 'mlp')."""
    if kind not in CLASSIFIERS:
        raise AnomalyHuntError(f"unknown classifier '{kind}'; use one of {sorted(CLASSIFIERS)}")
    return CLASSIFIERS[kind](params, seed=seed, device=device, threads=threads)


# --------------------------------------------------------------------------------------------
# Ensemble


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
    """

    MANIFEST = "ensemble.json"

    def __init__(
        self,
        kind: str,
        params: dict[str, Any],
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
        self.params = dict(params)
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)
        self.members: list[BinaryClassifier] = []

    def member_seed(self, i: int) -> int:
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
        X, y = _check_xy(X, y, "training data")
        X_val, y_val = _check_xy(X_val, y_val, "validation data")
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
            member = make_classifier(
                self.kind, self.params, seed=seed, device=self.device, threads=self.threads
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
