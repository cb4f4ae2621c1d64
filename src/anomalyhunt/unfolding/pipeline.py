"""The branch's steps between the toy and the figures: samples, training, unfolding, comparison.

Kept apart from ``__main__`` so the tests can run each step on tiny samples.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.unfolding import cinn, fcgan, metrics, model, toy

log = logging.getLogger(__name__)

#: Out-of-range policies for detector events beyond the simulated training range.
OUT_OF_RANGE = ("clip", "drop", "refuse")


@dataclass
class Prepared:
    """The simulated pairs in the networks' numbers.

    Attributes
    ----------
    events : toy.Events
        All simulated pairs (training, validation, test in this order).
    aligned : ndarray
        Parton objects with jets ordered like the detector jets (:func:`model.align`).
    scaling : model.Scaling
        Fitted on the training pairs.
    n_train, n_valid : int
        Sizes of the first two parts.
    """

    events: toy.Events
    aligned: np.ndarray
    scaling: model.Scaling
    n_train: int
    n_valid: int

    def part(self, name: str) -> slice:
        """Index range of "train", "valid" or "test"."""
        a, b = self.n_train, self.n_train + self.n_valid
        return {"train": slice(0, a), "valid": slice(a, b), "test": slice(b, None)}[name]

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(condition, residual, base) of one part, float32."""
        s = self.part(name)
        det = self.events.detector[s]
        return (
            self.scaling.condition(det),
            self.scaling.residual(det, self.aligned[s]),
            self.scaling.base(det),
        )


def prepare(events: toy.Events, n_train: int, n_valid: int) -> Prepared:
    """Align the jets and fit the scaling on the first ``n_train`` events."""
    aligned = model.align(events.parton, events.detector)
    scaling = model.Scaling.fit(events.detector[:n_train], aligned[:n_train])
    return Prepared(events, aligned, scaling, n_train, n_valid)


def gan_monitor(prep: Prepared, edges: list[np.ndarray], device: str) -> Any:
    """The FCGAN's early-stopping judge: mean triangular discriminator (x1000) over the 15
    observables between one unfolded sample of the validation events and their truth."""
    import torch

    s = prep.part("valid")
    det = prep.events.detector[s]
    truth = toy.observables(prep.events.parton[s])
    cond = torch.as_tensor(prep.scaling.condition(det), device=torch.device(device))

    def monitor(draw: Any) -> float:
        obs = toy.observables(prep.scaling.to_objects(det, draw(cond)))
        return metrics.summary(metrics.compare(obs, truth, edges))["mean_triangular_x1e3"]

    return monitor


def fit_fcgan(
    prep: Prepared,
    cfg: Mapping[str, Any],
    edges: list[np.ndarray],
    *,
    seed: int,
    init_seed: int,
    device: str,
    checkpoint: str | Path | None = None,
) -> tuple[Any, Any]:
    """Build and train the FCGAN with the ``unfolding.fcgan`` settings; (net, TrainingResult)."""
    net = fcgan.build_fcgan(
        prep.scaling, noise_dim=cfg["noise_dim"], hidden=cfg["hidden"], seed=init_seed
    )
    result = fcgan.train_fcgan(
        net,
        prep.arrays("train"),
        prep.arrays("valid"),
        _settings(cfg),
        critic_steps=cfg["critic_steps"],
        mmd_weight=cfg["mmd_weight"],
        monitor=gan_monitor(prep, edges, device),
        seed=seed,
        device=device,
        checkpoint=checkpoint,
    )
    return net, result


def fit_cinn(
    prep: Prepared,
    cfg: Mapping[str, Any],
    *,
    seed: int,
    init_seed: int,
    device: str,
    checkpoint: str | Path | None = None,
) -> tuple[Any, Any]:
    """Build and train the cINN with the ``unfolding.cinn`` settings; (net, TrainingResult)."""
    c, r, _ = prep.arrays("train")
    cv, rv, _ = prep.arrays("valid")
    net = cinn.build_cinn(
        c.shape[1],
        blocks=cfg["blocks"],
        hidden=cfg["hidden"],
        layers=cfg["layers"],
        transform=cfg["transform"],
        bins=cfg["bins"],
        seed=init_seed,
    )
    result = cinn.train_cinn(
        net, (c, r), (cv, rv), _settings(cfg), seed=seed, device=device, checkpoint=checkpoint
    )
    return net, result


def _settings(cfg: Mapping[str, Any]) -> model.TrainSettings:
    return model.TrainSettings(
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        learning_rate=cfg["learning_rate"],
        patience=cfg["patience"],
    )


def unfold(
    kind: str,
    net: Any,
    scaling: model.Scaling,
    detector: np.ndarray,
    n_samples: int,
    *,
    seed: int,
    device: str,
) -> np.ndarray:
    """``n_samples`` parton events per detector event, objects (n_samples, n, 4, 3)."""
    cond = scaling.condition(detector)
    draw = cinn.sample_cinn if kind == "cinn" else fcgan.sample_fcgan
    return scaling.to_objects(detector, draw(net, cond, n_samples, seed=seed, device=device))


def guard_range(
    scaling: model.Scaling, detector: np.ndarray, policy: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Detector events as the networks may see them, the mask of events kept, and the report.

    ``policy`` (``unfolding.out_of_range``): "clip" moves an event's log pT and eta onto the
    training range, "drop" leaves such events out of every method's comparison, "refuse" stops.
    """
    if policy not in OUT_OF_RANGE:
        raise AnomalyHuntError(f"unfolding.out_of_range '{policy}' unknown; use {OUT_OF_RANGE}")
    outside = scaling.outside(detector)
    n_out = int(outside.sum())
    report = {"policy": policy, "events_outside": n_out, "fraction_outside": n_out / len(detector)}
    if n_out:
        log.warning(
            "unfolding: %d of %d data events lie outside the simulated training range (%s)",
            n_out,
            len(detector),
            policy,
        )
    if policy == "refuse" and n_out:
        raise AnomalyHuntError(
            f"unfolding.out_of_range: {n_out} of {len(detector)} data events lie outside the "
            "simulated training range; set out_of_range to clip or drop to unfold them anyway"
        )
    keep = ~outside if policy == "drop" else np.ones(len(detector), dtype=bool)
    seen = scaling.clip(detector) if policy == "clip" else detector
    return seen, keep, report


def in_band(detector: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Events whose leading detector jet pT lies in ``band`` (GeV): the phase-space slice."""
    pt = detector[:, 2, 0]
    return (pt > band[0]) & (pt < band[1])


def omnifold_features(objects: np.ndarray) -> np.ndarray:
    """What OmniFold's classifiers read: the 15 observables, plus any further object's kinematics."""
    extra = objects[:, 4:].reshape(len(objects), -1)
    return np.concatenate([toy.observables(objects), extra], axis=1)


def peak(m: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Median and half inter-quartile range of a mass distribution (GeV): position and width."""
    w = np.ones(len(m)) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(m)
    cdf = np.cumsum(w[order]) / w.sum()
    q25, q50, q75 = (float(np.interp(q, cdf, m[order])) for q in (0.25, 0.5, 0.75))
    return {"median_gev": q50, "half_iqr_gev": 0.5 * (q75 - q25)}
