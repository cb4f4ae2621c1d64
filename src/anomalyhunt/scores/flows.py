"""Conditional normalizing flows p(x | mjj): the one place they are built (ANODE and CATHODE use it).

Everything that depends on the flow library (nflows) lives here, so it can be swapped without
touching the scorers. A flow is a conditional masked autoregressive flow (MAF): ``layers`` masked
affine autoregressive transforms conditioned on the scaled mjj, with the feature order reversed
between them, on a standard normal base.

Preprocessing (:class:`Preprocessor`) maps each feature into (0, 1) with a margin beyond the
fitted min/max, applies a logit and standardises. The logit sends hard edges (a mass difference
at 0, tau21 near 1) to long smooth tails, but only if the margin is small: with 5% of the range
the edge stays a cliff in logit space, and a classifier told the flow's samples from the true
signal-region background with AUC 0.536 against 0.521 at the default 1e-3
(benchmarks/flow_fidelity.py). Much smaller margins stretch the tails of unbounded features
(1e-4 lost 0.1 in mean log-density on a Gaussian). :meth:`ConditionalFlow.log_prob` adds the log-Jacobian of this map, so every
density is in the original feature space and densities of flows with different preprocessing
can be compared (ANODE's ratio). Events outside the fitted range (an out-of-fold event beyond
the training extremes, or garbage) are clipped onto its edge, where the flow has seen data, so
they get a finite, small density rather than NaN. Clipping them deep into the margin instead
would multiply their density by the logit's huge Jacobian there and could rank a far outlier
above an ordinary event. Samples always fall inside the range widened by the margin.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.base import Configurable
from anomalyhunt.scores.torchio import load_payload, save_payload, state_dict_cpu


class Preprocessor:
    """Invertible feature map x -> z (scale into (0,1), logit, standardise) and mjj -> context.

    Works in float64 so that ``inverse(transform(x))`` reproduces in-range ``x`` to rounding.
    """

    def __init__(self, margin: float) -> None:
        if not margin > 0:
            raise AnomalyHuntError(f"the flow preprocessing margin must be > 0, got {margin}")
        self.margin = float(margin)
        self.lo: np.ndarray | None = None
        self.width: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.m_mean = 0.0
        self.m_std = 1.0

    @property
    def fitted(self) -> bool:
        return self.lo is not None

    def fit(self, X: np.ndarray, m: np.ndarray) -> Preprocessor:
        """Learn the feature ranges, logit mean/std and the mjj scaling from training events."""
        X = np.asarray(X, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        if X.ndim != 2 or len(X) < 2 or len(m) != len(X):
            raise AnomalyHuntError(f"flow preprocessing needs >= 2 events, got X {X.shape}")
        if not (np.isfinite(X).all() and np.isfinite(m).all()):
            raise AnomalyHuntError("flow preprocessing: features or mjj contain NaN/inf")
        xmin, xmax = X.min(axis=0), X.max(axis=0)
        span = xmax - xmin
        span = np.where(span > 0, span, np.maximum(np.abs(xmax), 1.0))
        self.lo = xmin - self.margin * span
        self.width = span * (1 + 2 * self.margin)
        y = self._logit(X)
        self.mean = y.mean(axis=0)
        std = y.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self.m_mean = float(m.mean())
        m_std = float(m.std())
        self.m_std = m_std if m_std > 0 else 1.0
        return self

    def _check(self) -> None:
        if not self.fitted:
            raise RuntimeError("Preprocessor: call fit() first")

    def _unit(self, X: np.ndarray) -> np.ndarray:
        u = (np.asarray(X, dtype=np.float64) - self.lo) / self.width
        edge = self.margin / (1 + 2 * self.margin)  # where the fitted min and max lie
        return np.clip(u, edge, 1 - edge)

    def _logit(self, X: np.ndarray) -> np.ndarray:
        u = self._unit(X)
        return np.log(u) - np.log1p(-u)

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``z`` and per event log|det dz/dx| (to turn a density in z into one in x)."""
        self._check()
        u = self._unit(X)
        z = (np.log(u) - np.log1p(-u) - self.mean) / self.std
        logdet = -(np.log(u) + np.log1p(-u)).sum(axis=1) - np.log(self.width * self.std).sum()
        return z, logdet

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        """x from z (exact inverse of :meth:`transform` for events inside the fitted range)."""
        self._check()
        y = np.asarray(Z, dtype=np.float64) * self.std + self.mean
        u = 0.5 * (1 + np.tanh(0.5 * y))  # sigmoid without overflow
        return self.lo + u * self.width

    def context(self, m: np.ndarray) -> np.ndarray:
        """The flow's conditioning variable: standardised mjj, shape (n, 1)."""
        self._check()
        return ((np.asarray(m, dtype=np.float64) - self.m_mean) / self.m_std)[:, None]

    def state(self) -> dict[str, Any]:
        self._check()
        return {
            "margin": self.margin,
            "lo": self.lo.tolist(),
            "width": self.width.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "m_mean": self.m_mean,
            "m_std": self.m_std,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        pre = cls(state["margin"])
        for key in ("lo", "width", "mean", "std"):
            setattr(pre, key, np.asarray(state[key], dtype=np.float64))
        pre.m_mean, pre.m_std = float(state["m_mean"]), float(state["m_std"])
        return pre


TRANSFORMS = ("affine", "spline")


def build_flow(
    n_features: int,
    layers: int,
    hidden: int,
    blocks: int,
    transform: str,
    bins: int,
    tail_bound: float,
    context_features: int = 1,
) -> Any:
    """A conditional MAF (nflows); the project's one builder of autoregressive flows.

    The context is mjj (1-D) for the scores; other branches condition on more
    (``context_features``).

    ``transform='spline'`` uses monotonic rational-quadratic splines (Durkan et al. 2019) with
    ``bins`` bins on [-tail_bound, tail_bound] of the standardised logit features and linear tails
    outside; they bend where an affine step can only shift and scale.
    """
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import (
        MaskedAffineAutoregressiveTransform,
        MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
    )
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.permutations import ReversePermutation

    if transform not in TRANSFORMS:
        raise AnomalyHuntError(f"flow transform '{transform}' unknown; use one of {TRANSFORMS}")
    transforms: list[Any] = []
    for i in range(layers):
        if i > 0:
            transforms.append(ReversePermutation(features=n_features))
        common = {
            "features": n_features,
            "hidden_features": hidden,
            "context_features": int(context_features),
            "num_blocks": blocks,
            "use_residual_blocks": True,
        }
        if transform == "spline":
            step = MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                num_bins=int(bins), tails="linear", tail_bound=float(tail_bound), **common
            )
        else:
            step = MaskedAffineAutoregressiveTransform(**common)
        transforms.append(step)
    return Flow(CompositeTransform(transforms), StandardNormal([n_features]))


class ConditionalFlow(Configurable):
    """A trainable density p(x | m) in the original feature space.

    ``fit`` trains with the shared loop (:func:`~anomalyhunt.scores.training.train_network`):
    Adam, early stopping on the validation NLL with the best epoch restored. Deterministic for a
    given seed and thread count. The parameters are the config's ``flow`` blocks.

    Parameters
    ----------
    layers : int, default 4
        MADE layers (masked autoregressive transforms), the feature order reversed between them.
    hidden : int, default 64
        Hidden units per MADE layer.
    blocks : int, default 1
        Residual blocks per MADE.
    epochs : int, default 30
        Most passes over the training set.
    batch_size : int, default 2048
        Events per optimiser step.
    learning_rate : float, default 1e-3
        Adam's step size.
    patience : int, default 5
        Epochs without a better validation NLL before training stops.
    margin : float, default 1e-3
        Fraction of each feature's range added on both sides before the logit (module docstring).
    max_train_events : int, default 100000
        A larger training set is randomly subsampled to this many events (validation to a quarter
        of it), bounding the time per window.
    transform : {"affine", "spline"}, default "affine"
        MADE step: affine (shift and scale) or monotonic rational-quadratic spline.
    bins : int, default 8
        Spline bins (``transform="spline"``).
    tail_bound : float, default 4.0
        Spline range in standardised logit units, linear tails outside (``transform="spline"``).
    seed : int, default 0
        Seeds the initial weights, the subsampling, the batch order and the default sampling.
    device : str, default "cpu"
        Torch device.
    threads : int, default 1
        Torch CPU threads.
    """

    FORMAT = "anomalyhunt.conditional_flow/1"

    def __init__(
        self,
        *,
        layers: int = 4,
        hidden: int = 64,
        blocks: int = 1,
        epochs: int = 30,
        batch_size: int = 2048,
        learning_rate: float = 1e-3,
        patience: int = 5,
        margin: float = 1e-3,
        max_train_events: int = 100000,
        transform: str = "affine",
        bins: int = 8,
        tail_bound: float = 4.0,
        seed: int = 0,
        device: str = "cpu",
        threads: int = 1,
    ) -> None:
        if transform not in TRANSFORMS:
            raise AnomalyHuntError(f"flow transform '{transform}' unknown; use one of {TRANSFORMS}")
        self.layers = int(layers)
        self.hidden = int(hidden)
        self.blocks = int(blocks)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.patience = int(patience)
        self.margin = float(margin)
        self.max_train_events = int(max_train_events)
        self.transform = str(transform)
        self.bins = int(bins)
        self.tail_bound = float(tail_bound)
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)
        self.pre: Preprocessor | None = None
        self.net: Any = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    def _build(self, n_features: int) -> Any:
        return build_flow(
            n_features,
            self.layers,
            self.hidden,
            self.blocks,
            self.transform,
            self.bins,
            self.tail_bound,
        )

    def _inputs(self, X: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, context) as float32 and the log-Jacobian of x -> z, per event."""
        z, logdet = self.pre.transform(X)
        return z.astype(np.float32), self.pre.context(m).astype(np.float32), logdet

    def fit(
        self,
        X: np.ndarray,
        m: np.ndarray,
        X_val: np.ndarray,
        m_val: np.ndarray,
        *,
        preprocessor: Preprocessor | None = None,
    ) -> ConditionalFlow:
        """Train on (X, m); (X_val, m_val) decides when to stop.

        ``preprocessor`` (already fitted) lets several flows share one feature map, e.g. so that
        their density ratio is unaffected by clipping of out-of-range events; by default it is
        fitted on (X, m).
        """
        from anomalyhunt.scores.training import cap_events, seeded, train_network

        if len(X) < 2 or len(X_val) < 1:
            raise AnomalyHuntError(
                f"a flow needs training and validation events, got {len(X)} and {len(X_val)}"
            )
        keep, keep_val = cap_events(len(X), len(X_val), self.max_train_events, self.seed)
        X, m = np.asarray(X)[keep], np.asarray(m)[keep]
        X_val, m_val = np.asarray(X_val)[keep_val], np.asarray(m_val)[keep_val]
        self.pre = preprocessor if preprocessor is not None else Preprocessor(self.margin).fit(X, m)
        with seeded(derive_seed(self.seed, "init")):
            self.net = net = self._build(X.shape[1])
        z, c, _ = self._inputs(X, m)
        zv, cv, _ = self._inputs(X_val, m_val)
        result = train_network(
            net,
            lambda batch, _: -net.log_prob(batch[0], batch[1]),
            (z, c),
            (zv, cv),
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            min_delta=1e-6,
            seed=derive_seed(self.seed, "batches"),
            device=self.device,
            threads=self.threads,
            label="flow",
        )
        self.best_epoch, self.history = result.best_epoch, result.history
        return self

    def _ready(self) -> None:
        if self.net is None:
            raise RuntimeError("ConditionalFlow: call fit() or load() first")

    def log_prob(self, X: np.ndarray, m: np.ndarray) -> np.ndarray:
        """log p(x | m) in the original feature space, float64, one per event."""
        from anomalyhunt.scores.training import batched

        self._ready()
        z, c, logdet = self._inputs(X, m)
        lp = batched(
            lambda batch, _: self.net.log_prob(batch[0], batch[1]),
            (z, c),
            device=self.device,
            threads=self.threads,
        )
        return lp + logdet

    def sample(self, m: np.ndarray, *, seed: int | None = None) -> np.ndarray:
        """One event x ~ p(x | m_i) per conditioning value, in the original feature space."""
        import torch

        from anomalyhunt.scores.training import EVAL_BATCH, seeded

        self._ready()
        torch.set_num_threads(self.threads)
        c = torch.as_tensor(
            self.pre.context(m), dtype=torch.float32, device=torch.device(self.device)
        )
        seed = derive_seed(self.seed, "sample") if seed is None else int(seed)
        parts = []
        with torch.no_grad(), seeded(seed, self.device):
            for s in range(0, len(c), EVAL_BATCH):
                zs = self.net.sample(1, context=c[s : s + EVAL_BATCH])
                parts.append(zs.reshape(len(zs), -1).double().cpu().numpy())
        n_features = len(self.pre.lo)
        z = np.concatenate(parts) if parts else np.empty((0, n_features))
        return self.pre.inverse(z)

    def save(self, path: str | os.PathLike) -> None:
        """One torch file: state dict plus the settings and preprocessing needed to rebuild it."""

        self._ready()
        payload = {
            "format": self.FORMAT,
            "params": self.get_params(),
            "seed": self.seed,
            "n_features": len(self.pre.lo),
            "best_epoch": -1 if self.best_epoch is None else int(self.best_epoch),
            "preprocessing": self.pre.state(),
            "state_dict": state_dict_cpu(self.net),
        }
        save_payload(payload, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> ConditionalFlow:
        """Read a flow written by :meth:`save` (``weights_only``: no code runs from the file)."""
        import torch

        payload = load_payload(path, cls.FORMAT, "flow model", device)
        flow = cls.from_config(
            payload["params"], seed=payload["seed"], device=device, threads=threads
        )
        flow.pre = Preprocessor.from_state(payload["preprocessing"])
        flow.net = flow._build(payload["n_features"])
        flow.net.load_state_dict(payload["state_dict"])
        flow.net.to(torch.device(device)).eval()
        flow.best_epoch = None if payload["best_epoch"] < 0 else payload["best_epoch"]
        return flow
