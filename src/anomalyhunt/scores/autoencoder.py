"""Unsupervised scores from sideband-trained autoencoders: "autoencoder" and "vae".

Trained on the *sideband* events of the training folds only, the network learns to compress and
rebuild what background looks like near the SR; events it rebuilds badly (high reconstruction
error, or low evidence lower bound for the VAE) are atypical. Unlike CWoLa or the density-ratio
methods this needs no signal in the data to learn from, and so does not improve as the signal
grows: it finds only signals that are rare *and* unusual, a useful, model-agnostic baseline.

Inputs are the four features, standardised with the training sideband's mean and spread (stored
in the network, so a saved model is self-contained). Training: Adam, early stopping on the
validation sideband loss with the best epoch's weights restored, seeded and device aware.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from typing import Any, ClassVar

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIDEBAND
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.torchio import (
    EarlyStopping,
    load_payload,
    save_payload,
    state_dict_cpu,
    subsample,
)

log = logging.getLogger(__name__)

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
    """Shared training loop, scoring in batches, save and load of both autoencoders."""

    kind: ClassVar[str] = ""
    FORMAT: ClassVar[str] = ""
    requires_regions = (SIDEBAND,)
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden": [32, 32],
        "latent": 2,
        "epochs": 100,
        "batch_size": 512,
        "learning_rate": 1e-3,
        "patience": 8,
        "max_train_events": 100000,
    }

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        super().__init__(self.DEFAULTS | dict(params), seed=seed, device=device, threads=threads)
        if int(self.params["latent"]) < 1:
            raise AnomalyHuntError(f"scores.{self.name}.latent must be at least 1")
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
        import torch
        from tqdm.auto import tqdm

        X, X_val = self._sideband(train, "training"), self._sideband(valid, "validation")
        p = self.params
        limit = int(p["max_train_events"])
        X = X[subsample(len(X), limit, derive_seed(self.seed, "subsample", "train"))]
        X_val = X_val[subsample(len(X_val), max(1, limit // 4), derive_seed(self.seed, "subsample", "valid"))]
        torch.set_num_threads(self.threads)
        dev = torch.device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = _build(self.kind, X.shape[1], list(p["hidden"]), int(p["latent"]))
        scale = X.std(axis=0, dtype=np.float64)
        scale[scale <= 0] = 1.0
        self.net.mean.copy_(torch.as_tensor(X.mean(axis=0, dtype=np.float64), dtype=torch.float32))
        self.net.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.net.to(dev)
        Xt, Xv = torch.as_tensor(X, device=dev), torch.as_tensor(X_val, device=dev)
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["learning_rate"]))
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.Generator(device=dev).manual_seed(derive_seed(self.seed, "noise"))
        bs, n = int(p["batch_size"]), len(Xt)
        stopper = EarlyStopping(int(p["patience"]))
        self.history = []
        bar = tqdm(range(int(p["epochs"])), desc=self.name, unit="epoch", leave=False,
                   disable=not sys.stderr.isatty())  # fmt: skip
        for epoch in bar:
            self.net.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            total = 0.0
            for start in range(0, n, bs):
                loss = self._event_loss(self.net.standardise(Xt[perm[start : start + bs]]), noise)
                loss = loss.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * min(bs, n - start)
            self.net.eval()
            val = float(self._batched(Xv, derive_seed(self.seed, "val"), self._event_loss).mean())
            self.history.append({"epoch": epoch, "train_loss": total / n, "val_loss": val})
            bar.set_postfix(val_loss=f"{val:.4f}")
            if stopper.step(epoch, val, self.net):
                break
        bar.close()
        stopper.restore(self.net)
        self.best_epoch = stopper.best_epoch
        self.net.eval()
        log.debug("%s: %d epochs, best %s, validation loss %.5f",
                  self.name, len(self.history), self.best_epoch, stopper.best)  # fmt: skip
        return self

    def _batched(self, X: Any, seed: int, fn: Any) -> np.ndarray:
        import torch

        out = np.empty(len(X), dtype=np.float64)
        dev = self.net.mean.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        with torch.no_grad():
            for start in range(0, len(X), 65536):
                xb = torch.as_tensor(X[start : start + 65536], device=dev)
                out[start : start + len(xb)] = (
                    fn(self.net.standardise(xb), gen).double().cpu().numpy()
                )
        return out

    def score(self, data: WindowData) -> np.ndarray:
        import torch

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() or load() first")
        torch.set_num_threads(self.threads)
        self.net.eval()
        X = np.ascontiguousarray(data.X, dtype=np.float32)
        return self._batched(X, derive_seed(self.seed, "score"), self._score_batch)

    def save(self, path: str | os.PathLike) -> None:
        """One torch file of plain tensors and numbers (loads with ``weights_only=True``)."""

        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}: nothing to save before fit()")
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
    ) -> _SidebandAutoencoder:
        import torch

        payload = load_payload(path, cls.FORMAT, f"'{cls.name}' model", device)
        model = cls(payload["params"], seed=payload["seed"], device=device, threads=threads)
        p = model.params
        model.net = _build(cls.kind, payload["n_features"], list(p["hidden"]), int(p["latent"]))
        model.net.load_state_dict(payload["state_dict"])
        model.net.to(torch.device(device)).eval()
        model.best_epoch = None if payload["best_epoch"] < 0 else payload["best_epoch"]
        return model


@register
class Autoencoder(_SidebandAutoencoder):
    """Deterministic autoencoder; score = mean squared reconstruction error (standardised units).

    Params (``scores.autoencoder``): ``hidden`` widths of the encoder (mirrored by the decoder),
    ``latent`` size, ``epochs``, ``batch_size``, ``learning_rate``, ``patience``,
    ``max_train_events`` (a larger sideband is randomly subsampled) and ``validation_fraction``
    (read by the k-fold driver).
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
    so scores are reproducible). Params as the autoencoder's, plus ``score_samples``.
    """

    name = "vae"
    kind = "vae"
    FORMAT = "anomalyhunt.vae/1"
    DEFAULTS: ClassVar[dict[str, Any]] = _SidebandAutoencoder.DEFAULTS | {"score_samples": 16}

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
        return self._neg_elbo(z, generator, int(self.params["score_samples"]))
