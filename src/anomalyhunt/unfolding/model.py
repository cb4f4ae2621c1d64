"""What the two generative unfolders share: how events become the networks' numbers.

Both the FCGAN (:mod:`.fcgan`) and the cINN (:mod:`.cinn`) learn p(parton event | detector
event) from simulated pairs, in one parametrisation (:class:`Scaling`):

* the condition is the detector event: (log pT, eta, sin phi, cos phi) of every object (the ISR
  jet included) and its m_ll, m_jj and log pT_ll, standardised;
* the output is the *residual* of the hard objects, truth minus detector in (log pT, eta, phi)
  (the azimuth difference folded into [-pi, pi)), the two log-pT residuals of each pair mixed
  into half-sum and half-difference, each divided by its spread in the training set. A network
  thus starts near "the detector event is the truth" and learns the correction and its spread;
  it is a change of variables by the condition, so the posterior density changes only by a
  constant Jacobian;
* parton jets are ordered like the detector jets for training (:func:`align`) and put back in
  pT order after unfolding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anomalyhunt.unfolding.toy import pair_mass, pair_pt, wrap_phi

#: Numbers per hard event: (log pT, eta, phi) of l+, l-, j1, j2.
N_OUT = 12


def align(parton: np.ndarray, detector: np.ndarray) -> np.ndarray:
    """Parton events with their two jets ordered like the two leading detector jets.

    The order (of the two) with the smaller sum of Delta R to the detector jets is kept, so the
    residual of each jet is a resolution effect, not a swap of the pT order; unfolded jets are
    put back into pT order before any observable is computed (:func:`to_objects`).
    """

    def dr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.hypot(a[..., 1] - b[..., 1], wrap_phi(a[..., 2] - b[..., 2]))

    keep = dr(parton[:, 2], detector[:, 2]) + dr(parton[:, 3], detector[:, 3])
    swap = dr(parton[:, 3], detector[:, 2]) + dr(parton[:, 2], detector[:, 3]) < keep
    out = parton.copy()
    out[swap, 2:4] = parton[swap, 3:1:-1]
    return out


#: Residual columns of the log pT of (l+, l-) and of (j1, j2): mixed into half-sum and
#: half-difference, so the pair's common scale (which moves m_ll, m_jj) is one number.
PT_PAIRS = ((0, 3), (6, 9))


def mix(d: Any) -> Any:
    """Residual log pTs of each pair -> (half-sum, half-difference) (numpy or torch, a copy)."""
    out = d.clone() if hasattr(d, "clone") else d.copy()
    for a, b in PT_PAIRS:
        out[..., a] = 0.5 * (d[..., a] + d[..., b])
        out[..., b] = 0.5 * (d[..., a] - d[..., b])
    return out


def unmix(m: Any) -> Any:
    """Inverse of :func:`mix`."""
    out = m.clone() if hasattr(m, "clone") else m.copy()
    for a, b in PT_PAIRS:
        out[..., a] = m[..., a] + m[..., b]
        out[..., b] = m[..., a] - m[..., b]
    return out


def _log_objects(objects: np.ndarray) -> np.ndarray:
    """(log pT, eta, phi) of objects (..., k, 3) (pT, eta, phi)."""
    return np.concatenate([np.log(np.maximum(objects[..., :1], 1e-3)), objects[..., 1:]], axis=-1)


@dataclass
class Scaling:
    """The networks' numbers, fitted on the training pairs (see the module docstring).

    The condition is (log pT, eta, sin phi, cos phi) of every detector object, standardised; the
    residual is (log pT ratio, Delta eta, Delta phi) of each hard object, truth minus detector,
    divided by ``res_scale``.

    Parameters
    ----------
    cond_mean, cond_std : ndarray
        Per-feature mean and spread of the condition.
    res_scale : ndarray, shape (12,)
        Spread of the residual per feature.
    lo, hi : ndarray, shape (k, 2)
        The training range of each detector object's log pT and eta (out-of-range handling).
    """

    cond_mean: np.ndarray
    cond_std: np.ndarray
    res_scale: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def _raw_condition(det: np.ndarray) -> np.ndarray:
        x = _log_objects(det)
        parts = [x[..., :2], np.sin(x[..., 2:]), np.cos(x[..., 2:])]
        pairs = [
            pair_mass(det[:, 0], det[:, 1]),
            pair_mass(det[:, 2], det[:, 3]),
            np.log(np.maximum(pair_pt(det[:, 0], det[:, 1]), 1e-3)),
        ]
        per_object = np.concatenate(parts, axis=-1).reshape(len(det), -1)
        return np.concatenate([per_object, np.stack(pairs, axis=1)], axis=1)

    @staticmethod
    def _raw_residual(det: np.ndarray, truth: np.ndarray) -> np.ndarray:
        d = _log_objects(truth) - _log_objects(det[:, :4])
        d[..., 2] = wrap_phi(d[..., 2])
        return mix(d.reshape(len(det), N_OUT))

    @classmethod
    def fit(cls, det: np.ndarray, truth: np.ndarray) -> Scaling:
        """From detector objects (n, k, 3) and aligned truth objects (n, 4, 3)."""
        cond = cls._raw_condition(det)
        res = cls._raw_residual(det, truth).std(axis=0)
        std = cond.std(axis=0)
        x = _log_objects(det)[..., :2]
        return cls(
            cond.mean(axis=0),
            np.where(std > 0, std, 1.0),
            np.where(res > 0, res, 1.0),
            x.min(axis=0),
            x.max(axis=0),
        )

    def condition(self, det: np.ndarray) -> np.ndarray:
        """Standardised condition of detector objects (n, k, 3), float32."""
        return ((self._raw_condition(det) - self.cond_mean) / self.cond_std).astype(np.float32)

    def residual(self, det: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """The networks' target for aligned truth objects (n, 4, 3), float32."""
        return (self._raw_residual(det, truth) / self.res_scale).astype(np.float32)

    def base(self, det: np.ndarray) -> np.ndarray:
        """(log pT, eta, phi) of the four hard detector objects, (n, 12) float32."""
        return _log_objects(det[:, :4]).reshape(len(det), N_OUT).astype(np.float32)

    def to_objects(self, det: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """Parton objects (..., n, 4, 3) from detector objects and residuals (..., n, 12).

        Azimuths are folded into [-pi, pi) and the two jets put into pT order.
        """
        r = unmix(np.asarray(residual, dtype=np.float64) * self.res_scale)
        x = _log_objects(det[:, :4]) + r.reshape(*r.shape[:-1], 4, 3)
        out = np.concatenate([np.exp(x[..., :1]), x[..., 1:2], wrap_phi(x[..., 2:])], axis=-1)
        swap = out[..., 3, 0] > out[..., 2, 0]
        out[swap, 2:4] = out[swap, 3:1:-1]
        return out

    def outside(self, det: np.ndarray) -> np.ndarray:
        """Mask of detector events with an object's log pT or eta outside the training range."""
        x = _log_objects(det)[..., :2]
        return ((x < self.lo) | (x > self.hi)).any(axis=(1, 2))

    def clip(self, det: np.ndarray) -> np.ndarray:
        """Detector objects with log pT and eta clipped onto the training range."""
        x = _log_objects(det)
        x[..., :2] = np.clip(x[..., :2], self.lo, self.hi)
        return np.concatenate([np.exp(x[..., :1]), x[..., 1:]], axis=-1)


@dataclass
class TrainSettings:
    """The training loop's settings for one network (from the ``unfolding.fcgan``/``cinn`` block).

    Parameters
    ----------
    epochs, batch_size, learning_rate, patience : as for ``train_network``
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
