"""Unsupervised scores from sideband-trained autoencoders: "autoencoder" and "vae".

Trained on the *sideband* events of the training folds only, the network learns to compress and
rebuild what background looks like near the SR; events it rebuilds badly (high reconstruction
error, or low evidence lower bound for the VAE) are atypical. Unlike CWoLa or the density-ratio
methods this needs no signal in the data to learn from, and so does not improve as the signal
grows: it finds only signals that are rare *and* unusual, a useful, model-agnostic baseline.

Inputs are the four features, standardised with the training sideband's mean and spread (stored
in the network, so a saved model is self-contained). Training: Adam, early stopping on the
validation sideband loss with the best epoch's weights restored, seeded and device aware (the
shared loop of :mod:`anomalyhunt.scores.training`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIDEBAND
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.torchio import (
    load_network,
    save_network,
)

_LOG_2PI = math.log(2.0 * math.pi)


def _mlp(widths: list[int]) -> Any:
    from torch import nn

    layers: list[Any] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def _build(kind: str, n_features: int, hidden: list[int], latent: int) -> Any:
    import torch
    from torch import nn

    class _Net(nn.Module):
        """Encoder/decoder with the standardisation buffers; a VAE's encoder also gives log-variances."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(n_features))
            self.register_buffer("scale", torch.ones(n_features))
            out = 2 * latent if kind == "vae" else latent
            self.encoder = _mlp([n_features, *hidden, out])
            self.decoder = _mlp([latent, *reversed(hidden), n_features])
            # the VAE's Gaussian decoder has one learned noise width per feature
            self.log_sigma = nn.Parameter(torch.zeros(n_features)) if kind == "vae" else None

        def standardise(self, x: torch.Tensor) -> torch.Tensor:
            return (x - self.mean) / self.scale

    return _Net()


class _SidebandAutoencoder(Scorer):
    """Shared training, scoring in batches, save and load of both autoencoders."""

    kind: ClassVar[str] = ""
    FORMAT: ClassVar[str] = ""
    requires_regions = (SIDEBAND,)

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (32, 32),
        latent: int = 2,
        epochs: int = 100,
        batch_size: int = 512,
        learning_rate: float = 1e-3,
        patience: int = 8,
        max_train_events: int = 100000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(latent) < 1:
            raise AnomalyHuntError(f"scores.{self.name}.latent must be at least 1")
        self.hidden = [int(h) for h in hidden]
        self.latent = int(latent)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.patience = int(patience)
        self.max_train_events = int(max_train_events)
        self.net: Any = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    # per-event losses: training minimises their mean, the score is the (averaged) loss itself
    def _event_loss(self, z: Any, generator: Any = None) -> Any:
        raise NotImplementedError

    def _score_batch(self, z: Any, generator: Any) -> Any:
        return self._event_loss(z, generator)

    def _sideband(self, data: WindowData, what: str) -> np.ndarray:
        X = np.ascontiguousarray(data.X[data.in_sb], dtype=np.float32)
        if len(X) == 0:
            raise AnomalyHuntError(f"{self.name}: the {what} data have no sideband events")
        if not np.isfinite(X).all():
            raise AnomalyHuntError(
                f"{self.name}: the {what} features contain NaN or infinite values"
            )
        return X

    def fit(self, train: WindowData, valid: WindowData) -> _SidebandAutoencoder:
        """Train on the sideband events of ``train``; ``valid``'s sideband decides when to stop."""
        from anomalyhunt.scores.training import (
            cap_events,
            seeded,
            set_standardisation,
            train_network,
        )

        X, X_val = self._sideband(train, "training"), self._sideband(valid, "validation")
        keep, keep_val = cap_events(len(X), len(X_val), self.max_train_events, self.seed)
        X, X_val = X[keep], X_val[keep_val]
        with seeded(self.seed):
            self.net = net = _build(self.kind, X.shape[1], self.hidden, self.latent)
        set_standardisation(net, X)
        result = train_network(
            net,
            lambda batch, gen: self._event_loss(net.standardise(batch[0]), gen),
            (X,),
            (X_val,),
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
            label=self.name,
        )
        self.best_epoch, self.history = result.best_epoch, result.history
        return self

    def score(self, data: WindowData) -> np.ndarray:
        from anomalyhunt.scores.training import batched

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() or load() first")
        self.net.eval()
        X = np.ascontiguousarray(data.X, dtype=np.float32)
        return batched(
            lambda batch, gen: self._score_batch(self.net.standardise(batch[0]), gen),
            (X,),
            device=self.device,
            seed=derive_seed(self.seed, "score"),
            threads=self.threads,
        )

    def save(self, path: str | os.PathLike) -> None:
        """One torch file of plain tensors and numbers (loads with ``weights_only=True``)."""
        save_network(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> _SidebandAutoencoder:
        def build(model: _SidebandAutoencoder, n_features: int) -> Any:
            return _build(cls.kind, n_features, model.hidden, model.latent)

        return load_network(cls, path, build, f"'{cls.name}' model", device, threads)


@register
class Autoencoder(_SidebandAutoencoder):
    """Deterministic autoencoder; score = mean squared reconstruction error (standardised units).

    The parameters are the config's ``scores.autoencoder`` block (its ``validation_fraction`` is
    read by the k-fold driver).

    Parameters
    ----------
    hidden : sequence of int, default (32, 32)
        Widths of the encoder's hidden layers (the decoder mirrors them).
    latent : int, default 2
        Size of the bottleneck.
    epochs : int, default 100
        Most passes over the training sideband.
    batch_size : int, default 512
        Events per optimiser step.
    learning_rate : float, default 1e-3
        Adam's step size.
    patience : int, default 8
        Epochs without a better validation loss before training stops (the best epoch is kept).
    max_train_events : int, default 100000
        A larger training sideband is randomly subsampled to this many events (validation to a
        quarter of it), bounding the time per fold.
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    name = "autoencoder"
    kind = "ae"
    FORMAT = "anomalyhunt.autoencoder/1"

    def _event_loss(self, z: Any, generator: Any = None) -> Any:
        return ((self.net.decoder(self.net.encoder(z)) - z) ** 2).mean(dim=-1)


@register
class VAE(_SidebandAutoencoder):
    """Variational autoencoder (Gaussian encoder and decoder, standard normal prior).

    Score = negative evidence lower bound, -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || N(0, 1)),
    the reconstruction term estimated by Monte Carlo with ``score_samples`` draws per event (seeded,
    so scores are reproducible). The parameters are the config's ``scores.vae`` block.

    Parameters
    ----------
    score_samples : int, default 16
        Monte-Carlo draws per event for the -ELBO score (training uses one).

    Other Parameters
    ----------------
    hidden, latent, epochs, batch_size, learning_rate, patience, max_train_events, seed, device, threads
        As for :class:`Autoencoder`.
    """

    name = "vae"
    kind = "vae"
    FORMAT = "anomalyhunt.vae/1"

    def __init__(self, *, score_samples: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.score_samples = int(score_samples)

    def _neg_elbo(self, z: Any, generator: Any, samples: int) -> Any:
        import torch

        h = self.net.encoder(z)
        mu, logvar = h.chunk(2, dim=-1)
        logvar = logvar.clamp(-12.0, 8.0)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=-1)
        log_sigma = self.net.log_sigma.clamp(-5.0, 3.0)
        std = (0.5 * logvar).exp()
        nll = torch.zeros(len(z), device=z.device)
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator, device=z.device)
            x_hat = self.net.decoder(mu + std * eps)
            nll = nll + (
                0.5 * ((z - x_hat) / log_sigma.exp()) ** 2 + log_sigma + 0.5 * _LOG_2PI
            ).sum(dim=-1)
        return nll / samples + kl

    def _event_loss(self, z: Any, generator: Any = None) -> Any:
        return self._neg_elbo(z, generator, 1)

    def _score_batch(self, z: Any, generator: Any) -> Any:
        return self._neg_elbo(z, generator, self.score_samples)
