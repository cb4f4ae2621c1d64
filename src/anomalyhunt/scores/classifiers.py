"""Two interchangeable binary classifiers (a PyTorch MLP and scikit-learn's histogram gradient
boosting) behind one small interface (:mod:`~anomalyhunt.scores.ensemble` averages several).

Both weight the two classes equally (CWoLa's SR and SB differ in size and the score should not
just learn the prior), stop early on a validation set the caller provides, and are deterministic
given their seed and thread count.

Interface: hyperparameters as keyword arguments (``from_config(block, seed=...)`` builds one
from a config block), ``fit(X, y, X_val, y_val, sample_weight=None, sample_weight_val=None) ->
self``, ``predict_proba(X) -> P(class 1)`` as a 1-D float64 array (unlike scikit-learn's (n, 2)
matrix), ``save(path)`` and ``classmethod load(path, device=..., threads=...)``.
"""

from __future__ import annotations

import abc
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path
from anomalyhunt.scores.base import Configurable
from anomalyhunt.scores.torchio import (
    load_network,
    save_network,
)

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


def check_xy(X: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as contiguous float32 and 0/1 labels as int64, or a clear error naming ``what``."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"{what}: X of shape {X.shape} does not match {len(y)} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 or 1")
    if not np.isfinite(X).all():
        raise AnomalyHuntError(f"{what}: the features contain NaN or infinite values")
    return X, y


class BinaryClassifier(Configurable, abc.ABC):
    """A binary classifier with early stopping on a given validation set.

    Parameters
    ----------
    seed : int, default 0
        Seeds everything random in training: equal seeds (and thread counts) give equal models.
    device : str, default "cpu"
        Torch device (the MLP; gradient boosting always runs on the CPU).
    threads : int, default 1
        CPU threads.
    """

    kind: ClassVar[str] = ""
    suffix: ClassVar[str] = ""

    def __init__(self, *, seed: int = 0, device: str = "cpu", threads: int = 1) -> None:
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


def _build_mlp(n_features: int, hidden: Sequence[int]) -> Any:
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
    """A small fully connected network: ReLU layers, BCE-with-logits loss, Adam.

    Trained by :func:`~anomalyhunt.scores.training.train_network`: after each epoch the
    class-weighted validation loss is computed; training stops after ``patience`` epochs without
    improvement and the best epoch's weights are restored.

    Parameters
    ----------
    hidden : sequence of int, default (64, 64, 64)
        Widths of the hidden layers.
    epochs : int, default 50
        Most passes over the training set.
    batch_size : int, default 1024
        Events per optimiser step.
    learning_rate : float, default 1e-3
        Adam's step size.
    patience : int, default 5
        Epochs without a better validation loss before training stops.
    seed, device, threads
        As for :class:`BinaryClassifier`.
    """

    kind = "mlp"
    suffix = ".pt"
    FORMAT = "anomalyhunt.mlp/1"

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 64, 64),
        epochs: int = 50,
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        patience: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden = [int(h) for h in hidden]
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.patience = int(patience)
        self.net: Any = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> MLPClassifier:
        import torch.nn.functional as F

        from anomalyhunt.scores.training import seeded, set_standardisation, train_network

        X, y = check_xy(X, y, "training data")
        X_val, y_val = check_xy(X_val, y_val, "validation data")
        with seeded(self.seed):
            self.net = net = _build_mlp(X.shape[1], self.hidden)
        set_standardisation(net, X)

        def loss(batch: tuple[Any, ...], generator: Any) -> Any:
            x, target = batch
            return F.binary_cross_entropy_with_logits(net(x), target, reduction="none")

        result = train_network(
            net,
            loss,
            (X, y.astype(np.float32)),
            (X_val, y_val.astype(np.float32)),
            weight=balanced_weights(y, sample_weight),
            valid_weight=balanced_weights(y_val, sample_weight_val),
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
            label="mlp",
        )
        self.best_epoch, self.history = result.best_epoch, result.history
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        from anomalyhunt.scores.training import batched

        if self.net is None:
            raise RuntimeError("MLPClassifier: call fit() or load() first")
        self.net.eval()
        X = np.ascontiguousarray(X, dtype=np.float32)
        return batched(
            lambda b, _: torch.sigmoid(self.net(b[0])),
            (X,),
            device=self.device,
            threads=self.threads,
        )

    def save(self, path: str | os.PathLike) -> None:
        save_network(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> MLPClassifier:
        def build(model: MLPClassifier, n_features: int) -> Any:
            return _build_mlp(n_features, model.hidden)

        return load_network(cls, path, build, "MLP model", device, threads)


# --------------------------------------------------------------------------------------------
# scikit-learn histogram gradient boosting


class HGBClassifier(BinaryClassifier):
    """scikit-learn's HistGradientBoostingClassifier with early stopping on the given validation set.

    The validation set is passed to ``fit`` (``X_val``), and boosting stops when the
    class-weighted validation log-loss has not improved for ``early_stopping_rounds`` iterations
    (as in scikit-learn, those last few trees are kept; at these learning rates they change
    little).

    Saved with joblib (a pickle): loading runs code stored in the file, so only load models you
    trained yourself.

    Parameters
    ----------
    max_iter : int, default 200
        Most boosting iterations (trees).
    learning_rate : float, default 0.1
        Shrinkage of each tree's contribution.
    max_leaf_nodes : int, default 31
        Leaves per tree.
    min_samples_leaf : int, default 200
        Fewest training events in a leaf; large, so trees do not chase statistical noise.
    early_stopping_rounds : int, default 10
        Iterations without a better validation loss before boosting stops.
    seed, device, threads
        As for :class:`BinaryClassifier`.
    """

    kind = "hgb"
    suffix = ".joblib"

    def __init__(
        self,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 200,
        early_stopping_rounds: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_iter = int(max_iter)
        self.learning_rate = float(learning_rate)
        self.max_leaf_nodes = int(max_leaf_nodes)
        self.min_samples_leaf = int(min_samples_leaf)
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.model: Any = None

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

        X, y = check_xy(X, y, "training data")
        X_val, y_val = check_xy(X_val, y_val, "validation data")
        w = balanced_weights(y, sample_weight)
        w_val = balanced_weights(y_val, sample_weight_val)
        self.model = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=True,
            scoring="loss",
            n_iter_no_change=self.early_stopping_rounds,
            validation_fraction=None,
            random_state=self.seed % (2**32),
        )
        t0 = time.perf_counter()
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            self.model.fit(X, y, w, X_val=X_val, y_val=y_val, sample_weight_val=w_val)
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
            joblib.dump({"params": self.get_params(), "seed": self.seed, "model": self.model}, tmp)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> HGBClassifier:
        """Unpickles the file: it can run arbitrary code, so load only models you trained."""
        import joblib

        if not Path(path).exists():
            raise AnomalyHuntError(f"{path}: model file not found")
        payload = joblib.load(path)
        model = cls.from_config(
            payload["params"], seed=payload["seed"], device=device, threads=threads
        )
        model.model = payload["model"]
        return model


#: Every classifier an :class:`~anomalyhunt.scores.ensemble.Ensemble` can hold, by kind
#: (:mod:`~anomalyhunt.scores.penalties` adds the decorrelated MLP).
CLASSIFIERS: dict[str, type[BinaryClassifier]] = {"mlp": MLPClassifier, "hgb": HGBClassifier}
#: What the config's ``classifier`` key may name (the decorrelated MLP is chosen by ``decorrelate``).
CONFIG_CLASSIFIERS: tuple[str, ...] = ("hgb", "mlp")


def is_network(params: Mapping[str, Any]) -> bool:
    """Whether a scorer block's ``classifier`` (gradient boosting when unset) is a torch network."""
    return params.get("classifier", "hgb") != "hgb"


def check_kind(kind: str, where: str = "classifier") -> str:
    """``kind`` if it names a classifier, else a clear error naming the config key ``where``."""
    if kind not in CONFIG_CLASSIFIERS:
        raise AnomalyHuntError(f"{where} '{kind}' unknown; use one of {sorted(CONFIG_CLASSIFIERS)}")
    return kind
