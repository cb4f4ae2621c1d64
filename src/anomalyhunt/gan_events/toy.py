"""Parton-level pp -> t tbar -> (b q q')(bbar q q') events, generated in numpy in seconds.

The process of arXiv:1907.03764 (there from MadGraph), written out by hand so that every fact a
test checks is known exactly:

* The top and W masses of each event are drawn from (non-relativistic) Breit-Wigner shapes
  with the physical widths, m_t = 173 GeV, Gamma_t = 1.5 GeV and m_W = 80.4 GeV,
  Gamma_W = 2.1 GeV, truncated at ``cutoff`` widths from the pole (15, MadGraph's default
  ``bwcutoff``).
* The t tbar pair: its invariant mass is threshold plus a Gamma(2, 80 GeV) excess (a falling
  spectrum peaking near 430 GeV, mean about 510 GeV), the top's direction in the pair's rest
  frame is isotropic, the pair has a rapidity drawn from N(0, 1) and a transverse momentum from
  an exponential of mean 20 GeV (a stand-in for initial-state radiation) at a uniform azimuth.
* t -> b W+ and W+ -> q qbar' (and their conjugates) are isotropic two-body decays in the
  parent's rest frame. The b quarks carry 4.7 GeV, the light quarks are massless, so every
  final state is on shell and an event is fixed by its 18 momentum components.

Four-vectors are arrays ``(..., 4)`` holding (E, px, py, pz) in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

M_TOP, GAMMA_TOP = 173.0, 1.5
M_W, GAMMA_W = 80.4, 2.1
M_B = 4.7
#: Masses of the six final-state quarks, in the order of :func:`momenta`.
QUARK_MASSES = (M_B, 0.0, 0.0, M_B, 0.0, 0.0)
#: Names of the six quarks (t -> b W+, W+ -> u dbar; tbar -> bbar W-, W- -> d ubar).
QUARKS = ("b", "u", "dbar", "bbar", "d", "ubar")
PAIR_MASS_SCALE = 80.0  # GeV, scale of the Gamma(2) excess of m_tt over threshold
PAIR_PT_MEAN = 20.0  # GeV
PAIR_RAPIDITY_SD = 1.0


@dataclass
class TopPairs:
    """One sample of events: every intermediate and final four-vector, shape (n, 4) each.

    Attributes
    ----------
    tops, ws : ndarray, shape (n, 2, 4)
        The top and the antitop, the W+ and the W-.
    quarks : ndarray, shape (n, 6, 4)
        The final state in the order of :data:`QUARKS` (first three from the top).
    """

    tops: np.ndarray
    ws: np.ndarray
    quarks: np.ndarray

    def __len__(self) -> int:
        return len(self.quarks)

    def momenta(self) -> np.ndarray:
        """The 18 numbers a GAN learns: (px, py, pz) of each quark, shape (n, 18), float32."""
        return self.quarks[..., 1:].reshape(len(self), 18).astype(np.float32)


def minkowski_mass(p: np.ndarray) -> np.ndarray:
    """Invariant mass of four-vectors ``(..., 4)`` (negative mass squared counts as zero)."""
    m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
    return np.sqrt(np.clip(m2, 0.0, None))


def breit_wigner(
    rng: np.random.Generator, n: int, mass: float, width: float, cutoff: float
) -> np.ndarray:
    """``n`` masses from a Breit-Wigner (Cauchy) of ``width`` truncated at ``cutoff`` widths.

    Inverse-CDF sampling: the quantile function of a Cauchy of half-width width/2 is
    mass + width/2 tan(u) with u uniform, here restricted to |u| < atan(2 cutoff).
    """
    edge = np.arctan(2.0 * cutoff)
    return mass + 0.5 * width * np.tan(rng.uniform(-edge, edge, n))


def breit_wigner_iqr(width: float, cutoff: float) -> float:
    """Interquartile range of the truncated Breit-Wigner of :func:`breit_wigner`.

    Equal to ``width`` without truncation; about 0.97 width at a cutoff of 15 widths.
    """
    return float(width * np.tan(0.5 * np.arctan(2.0 * cutoff)))


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    cos = rng.uniform(-1.0, 1.0, n)
    sin = np.sqrt(1.0 - cos**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=-1)


def boost(p: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Four-vectors ``p`` given in the rest frame of ``frame`` (a four-vector), in the lab."""
    m = minkowski_mass(frame)[..., None]
    beta_gamma = frame[..., 1:] / m  # gamma * beta
    gamma = frame[..., :1] / m
    pdotb = np.sum(p[..., 1:] * beta_gamma, axis=-1, keepdims=True)
    energy = gamma * p[..., :1] + pdotb
    space = p[..., 1:] + beta_gamma * (pdotb / (gamma + 1.0) + p[..., :1])
    return np.concatenate([energy, space], axis=-1)


def two_body(
    rng: np.random.Generator, parent: np.ndarray, m1: np.ndarray | float, m2: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic decay of ``parent`` (n, 4) into masses m1, m2 in its rest frame, in the lab."""
    n = len(parent)
    big = minkowski_mass(parent)
    m1 = np.broadcast_to(np.asarray(m1, dtype=np.float64), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=np.float64), (n,))
    lam = (big**2 - (m1 + m2) ** 2) * (big**2 - (m1 - m2) ** 2)
    p = np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * big)
    direction = _isotropic(rng, n) * p[:, None]
    d1 = np.concatenate([np.sqrt(p**2 + m1**2)[:, None], direction], axis=-1)
    d2 = np.concatenate([np.sqrt(p**2 + m2**2)[:, None], -direction], axis=-1)
    return boost(d1, parent), boost(d2, parent)


def generate(rng: np.random.Generator, n: int, *, cutoff: float) -> TopPairs:
    """``n`` t tbar events with all-hadronic decays (module docstring).

    Parameters
    ----------
    rng : numpy Generator
        The only source of randomness (seed it from the branch).
    n : int
        Events.
    cutoff : float
        Breit-Wigner truncation in widths around each pole.
    """
    m_t = breit_wigner(rng, 2 * n, M_TOP, GAMMA_TOP, cutoff).reshape(n, 2)
    m_w = breit_wigner(rng, 2 * n, M_W, GAMMA_W, cutoff).reshape(n, 2)
    m_tt = m_t.sum(axis=1) + rng.gamma(2.0, PAIR_MASS_SCALE, n)
    pt = rng.exponential(PAIR_PT_MEAN, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    y = rng.normal(0.0, PAIR_RAPIDITY_SD, n)
    mt_pair = np.sqrt(m_tt**2 + pt**2)
    pair = np.stack(
        [mt_pair * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt_pair * np.sinh(y)], axis=-1
    )
    rest = np.stack([m_tt, np.zeros(n), np.zeros(n), np.zeros(n)], axis=-1)
    top, antitop = two_body(rng, rest, m_t[:, 0], m_t[:, 1])
    top, antitop = boost(top, pair), boost(antitop, pair)
    quarks, ws = [], []
    for parent, m_wi in ((top, m_w[:, 0]), (antitop, m_w[:, 1])):
        b, w = two_body(rng, parent, M_B, m_wi)
        q1, q2 = two_body(rng, w, 0.0, 0.0)
        quarks += [b, q1, q2]
        ws.append(w)
    return TopPairs(
        tops=np.stack([top, antitop], axis=1),
        ws=np.stack(ws, axis=1),
        quarks=np.stack(quarks, axis=1),
    )


def four_vectors(momenta: np.ndarray) -> np.ndarray:
    """Quark four-vectors (n, 6, 4) from the 18 momenta, with the on-shell energies."""
    p = np.asarray(momenta, dtype=np.float64).reshape(-1, 6, 3)
    m = np.asarray(QUARK_MASSES)[None, :, None]
    energy = np.sqrt(np.sum(p**2, axis=-1, keepdims=True) + m**2)
    return np.concatenate([energy, p], axis=-1)


def reconstruct(momenta: np.ndarray) -> dict[str, np.ndarray]:
    """The W and top four-vectors, shape (n, 2, 4), rebuilt from the 18 momenta."""
    q = four_vectors(momenta)
    w = np.stack([q[:, 1] + q[:, 2], q[:, 4] + q[:, 5]], axis=1)
    t = np.stack([w[:, 0] + q[:, 0], w[:, 1] + q[:, 3]], axis=1)
    return {"w": w, "t": t}


def kinematics(p: np.ndarray) -> dict[str, np.ndarray]:
    """pT, pseudorapidity eta and azimuth phi of four-vectors ``(..., 4)``."""
    pt = np.hypot(p[..., 1], p[..., 2])
    eta = np.arcsinh(p[..., 3] / np.maximum(pt, 1e-9))
    return {"pt": pt, "eta": eta, "phi": np.arctan2(p[..., 2], p[..., 1])}
