"""The contract every anomaly-score method follows, and the registry that finds methods by name.

A method is one module in ``anomalyhunt.scores`` holding a :class:`Scorer` subclass decorated with
:func:`register`, plus its block under ``scores:`` in the config. The k-fold driver and the stage
command only ever talk to this interface, so adding a method touches nothing else.
"""

from __future__ import annotations

import abc
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from anomalyhunt import FEATURES
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION, Window


@dataclass(frozen=True)
class WindowData:
    """The events of one mjj window as arrays a scorer can train on or score.

    ``X`` holds the four features (never mjj); ``mjj`` and ``region`` are there for methods that
    condition on mass (e.g. density estimators) and for CWoLa's SR/SB labels. ``label`` is the
    truth (1 signal, 0 background, -1 unknown) and must never be used for training.
    """

    X: np.ndarray
    mjj: np.ndarray
    region: np.ndarray
    label: np.ndarray
    event_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.X)
        if self.X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {self.X.shape}")
        for name in ("mjj", "region", "label", "event_id"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows, X has {n}")

    def __len__(self) -> int:
        return len(self.X)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, window: Window | None = None) -> WindowData:
        """Build from an events table; the region comes from ``window`` or a ``region`` column."""
        missing = [c for c in ("mjj", *FEATURES) if c not in df.columns]
        if missing:
            raise AnomalyHuntError(f"events table lacks columns {missing}")
        mjj = df["mjj"].to_numpy(dtype=np.float64)
        if window is not None:
            region = window.region_of(mjj)
        elif "region" in df.columns:
            region = df["region"].to_numpy(dtype=np.int8)
        else:
            raise AnomalyHuntError("events table has no 'region' column and no window was given")
        label = (
            df["label"].to_numpy(dtype=np.int8)
            if "label" in df.columns
            else np.full(len(df), -1, dtype=np.int8)
        )
        event_id = df["event_id"].to_numpy(dtype=np.int64) if "event_id" in df.columns else None
        X = np.ascontiguousarray(df[list(FEATURES)].to_numpy(dtype=np.float32))
        return cls(X=X, mjj=mjj, region=region, label=label, event_id=event_id)

    def subset(self, index: np.ndarray) -> WindowData:
        """The events selected by a boolean mask or an integer index array."""
        index = np.asarray(index)
        return WindowData(
            X=self.X[index],
            mjj=self.mjj[index],
            region=self.region[index],
            label=self.label[index],
            event_id=None if self.event_id is None else self.event_id[index],
        )

    @property
    def in_sr(self) -> np.ndarray:
        return self.region == SIGNAL_REGION

    @property
    def in_sb(self) -> np.ndarray:
        return self.region == SIDEBAND

    def count(self, region: int) -> int:
        return int((self.region == region).sum())


#: Keyword arguments every configurable class takes that are settings of the run, not of the method.
RUNTIME_KEYS: tuple[str, ...] = ("seed", "device", "threads")


class Configurable:
    """Hyperparameters as keyword arguments, scikit-learn style, plus construction from a config.

    Each hyperparameter is a keyword-only argument of ``__init__`` whose default is the schema's
    (tests/test_defaults.py checks that they agree) and is stored unchanged as the attribute of the
    same name. A subclass whose ``__init__`` takes ``**kwargs`` and passes them to its parent's
    inherits the parent's hyperparameters.
    """

    #: Keys of a config block that belong to the caller (e.g. the k-fold driver), not to the class.
    DRIVER_KEYS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """Every hyperparameter with its default (run settings, ``RUNTIME_KEYS``, left out)."""
        out: dict[str, Any] = {}
        for klass in cls.__mro__:
            if "__init__" not in vars(klass) or klass is object:
                continue
            params = inspect.signature(klass.__init__).parameters.values()
            for p in params:
                if p.kind is p.KEYWORD_ONLY and p.name not in RUNTIME_KEYS:
                    out.setdefault(p.name, p.default)
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        return out

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters of this instance, as a JSON-friendly dict (tuples become lists)."""
        return {k: _plain(getattr(self, k)) for k in self.param_defaults()}

    @classmethod
    def from_config(cls: type[C], block: Mapping[str, Any] | None = None, **runtime: Any) -> C:
        """An instance from a config block (missing keys take their defaults) plus run settings.

        Unknown keys are a clear error rather than a silently ignored typo.
        """
        block = dict(block or {})
        names = cls.param_defaults()
        kwargs = {k: v for k, v in block.items() if k in names or k not in cls.DRIVER_KEYS}
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise AnomalyHuntError(
                f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        return cls(**kwargs, **runtime)


C = TypeVar("C", bound=Configurable)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Scorer(Configurable, abc.ABC):
    """An anomaly score trained on one window's data (scikit-learn style: fit, then score).

    Subclasses set ``name`` (the config/CLI name) and ``requires_regions`` (the regions whose events
    training cannot do without; the k-fold driver checks them so a thin window fails clearly), and
    take their hyperparameters as keyword arguments (:class:`Configurable`); the k-fold driver
    builds them with :meth:`from_config` from the config's ``scores.<name>`` block.

    Parameters
    ----------
    seed : int, default 0
        Seeds everything random in training and scoring.
    device : str, default "cpu"
        Torch device of the networks, if any.
    threads : int, default 1
        CPU threads per model.
    """

    name: ClassVar[str] = ""
    requires_regions: ClassVar[tuple[int, ...]] = (SIDEBAND, SIGNAL_REGION)
    DRIVER_KEYS = ("validation_fraction",)  # read by the k-fold driver

    def __init__(self, *, seed: int = 0, device: str = "cpu", threads: int = 1) -> None:
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)

    @classmethod
    def uses_torch(cls, params: Mapping[str, Any]) -> bool:
        """Whether this method, with the config block ``params``, trains torch networks.

        When it does not, the device is never resolved: importing torch only to ask for a GPU costs
        two seconds in every job of the default (gradient-boosting) search.
        """
        return True

    @abc.abstractmethod
    def fit(self, train: WindowData, valid: WindowData) -> Scorer:
        """Train on ``train``; ``valid`` is for early stopping and model selection only."""

    @abc.abstractmethod
    def score(self, data: WindowData) -> np.ndarray:
        """One float per event; higher means more anomalous."""

    def background_template(self, mjj: np.ndarray, seed: int) -> np.ndarray | None:
        """Features of background events sampled at these mjj values, for a method that learns
        the background density (CATHODE, ANODE); None for the others.

        Scored like the data, they predict the background a cut keeps without a sideband fit
        (arXiv:2411.00085; measured in ``benchmarks/template_background.py``, not yet accurate
        enough for the bump hunt with the CPU-sized flows).
        """
        return None

    @abc.abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Store the trained scorer so the scores can be reproduced or applied to new data."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> Scorer:
        """Restore a scorer written by :meth:`save`."""


_REGISTRY: dict[str, type[Scorer]] = {}

S = TypeVar("S", bound=type[Scorer])


def register(cls: S) -> S:
    """Class decorator: make a Scorer findable by its ``name``."""
    name = getattr(cls, "name", "")
    if not name:
        raise TypeError(f"{cls.__name__} must set a class attribute 'name' to be registered")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise TypeError(f"scoring method '{name}' is already registered by {_REGISTRY[name]}")
    _REGISTRY[name] = cls
    return cls


def get_scorer(name: str) -> type[Scorer]:
    """The Scorer class registered as ``name``; a clear error lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AnomalyHuntError(
            f"unknown scoring method '{name}'; available: {', '.join(available()) or 'none'}"
        ) from None


def available() -> list[str]:
    """Names of every registered scoring method."""
    return sorted(_REGISTRY)


def gpu_slots(device: str) -> int:
    """GPUs one training job of this ``device`` setting claims (Snakemake ``resources: gpu``).

    Decided where the DAG is built: 'cuda' claims one even on a login node without a GPU (the
    jobs run on GPU nodes), 'auto' only where torch sees one, so ``--resources gpu=1`` keeps two
    GPU jobs off one card and CPU-only runs stay parallel.
    """
    if device == "cpu":
        return 0
    if device == "cuda" or device.startswith("cuda:"):
        return 1
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """Turn the config's device ('auto', 'cpu', 'cuda') into one torch can use, or fail clearly."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise AnomalyHuntError(
                f"device is '{device}' but torch sees no CUDA GPU; set device: auto or cpu"
            )
        return device
    raise AnomalyHuntError(f"unknown device '{device}'; use auto, cpu or cuda")
