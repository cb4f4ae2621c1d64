"""The paper's three decay toys, with the unknown mass m_A drawn uniformly over a range.

Every toy starts from a parent A of mass ``m_A ~ U(mass_range)``, decays it isotropically in its
rest frame into massless daughters and boosts them to the lab. Four-vectors are (E, px, py, pz)
in GeV; what a network sees (``features``) is what a detector would measure.

visible (A -> b c, both seen): A with transverse momentum ``|pT| ~ Exp(pt_mean)`` (recoiling
    against unmeasured radiation), uniform azimuth and rapidity ``y ~ N(0, 1)``. Features: the
    four-momenta of b and c (8 numbers). Known variable: the invariant mass m_bc, equal to m_A.
visible + invisible (A -> b C, C unseen and massless): the same A. Features: b's four-momentum and
    the missing transverse momentum (C's pT; 6 numbers). Known variable: the transverse mass
    m_T(b, pT_miss), whose endpoint is m_A.
pair (A A -> b C b C, both C unseen and massless): the AA system gets ``|pT| ~ Exp(pt_mean)``,
    uniform azimuth and ``y ~ N(0, 1)``; in its rest frame each A has speed ``beta ~ U(0, 0.9)``
    back to back in an isotropic direction. Features: the two b four-momenta and the missing pT
    (10 numbers). Known variable: M_T2 (Lester & Summers) with a massless trial invisible
    particle, whose endpoint is m_A (:mod:`anomalyhunt.event_variables.mt2`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomalyhunt.event_variables.mt2 import mt2, transverse_mass

TOYS = ("visible", "invisible", "pair")
#: Names of each toy's known variable, for metrics and figures.
KNOWN = {"visible": "m_bc", "invisible": "m_T", "pair": "M_T2"}


@dataclass
class Events:
    """One toy's events: features the network sees, the true mass, the known variable.

    Parameters
    ----------
    features : array (n, d)
        Measured momenta (GeV).
    mass : array (n,)
        m_A of each event (the parameter theta).
    known : array (n,) or None
        The known variable (m_bc, m_T or M_T2); None when not asked for (M_T2 is slow).
    """

    features: np.ndarray
    mass: np.ndarray
    known: np.ndarray | None


def _isotropic(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors uniform on the sphere, (n, 3)."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)


def boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Four-vectors ``p`` (n, 4) boosted by velocities ``beta`` (n, 3) (rest frame -> lab)."""
    b2 = np.sum(beta**2, axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[:, 1:], axis=1)
    coef = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    e = gamma * (p[:, 0] + bp)
    vec = p[:, 1:] + (coef * bp + gamma * p[:, 0])[:, None] * beta
    return np.concatenate([e[:, None], vec], axis=1)


def two_body(mass: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Massless daughters of an isotropic decay at rest, (n, 4) each."""
    n = len(mass)
    u = _isotropic(n, rng) * (mass / 2.0)[:, None]
    e = (mass / 2.0)[:, None]
    return np.concatenate([e, u], axis=1), np.concatenate([e, -u], axis=1)


def lab_velocity(mass: np.ndarray, pt_mean: float, rng: np.random.Generator) -> np.ndarray:
    """Velocity (n, 3) of a system of mass ``mass`` with |pT| ~ Exp(pt_mean), y ~ N(0, 1)."""
    n = len(mass)
    pt = rng.exponential(pt_mean, n) if pt_mean > 0 else np.zeros(n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    y = rng.normal(0.0, 1.0, n)
    mt = np.sqrt(mass**2 + pt**2)
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=1)
    return p / (mt * np.cosh(y))[:, None]


def invariant_mass(p: np.ndarray) -> np.ndarray:
    """sqrt(E^2 - |p|^2) of four-vectors (n, 4), clipped at 0."""
    m2 = p[:, 0] ** 2 - np.sum(p[:, 1:] ** 2, axis=1)
    return np.sqrt(np.maximum(m2, 0.0))


def generate(
    toy: str,
    n: int,
    *,
    mass_range: tuple[float, float],
    pt_mean: float,
    rng: np.random.Generator,
    with_known: bool = True,
) -> Events:
    """``n`` events of ``toy`` ("visible", "invisible" or "pair"); see the module docstring.

    Parameters
    ----------
    toy : str
        Which decay.
    n : int
        Number of events.
    mass_range : (float, float)
        m_A is drawn uniformly between these (GeV).
    pt_mean : float
        Mean transverse momentum of A (or of the AA system), GeV.
    rng : numpy Generator
        The only source of randomness.
    with_known : bool, default True
        Compute the known variable (M_T2 takes about a second per 10^4 events).
    """
    if toy not in TOYS:
        raise ValueError(f"unknown toy '{toy}'; use one of {TOYS}")
    mass = rng.uniform(mass_range[0], mass_range[1], int(n))
    if toy in ("visible", "invisible"):
        b, c = two_body(mass, rng)
        beta = lab_velocity(mass, pt_mean, rng)
        b, c = boost(b, beta), boost(c, beta)
        if toy == "visible":
            known = invariant_mass(b + c) if with_known else None
            return Events(np.concatenate([b, c], axis=1), mass, known)
        met = c[:, 1:3]
        known = transverse_mass(b, met) if with_known else None
        return Events(np.concatenate([b, met], axis=1), mass, known)
    speed = rng.uniform(0.0, 0.9, int(n))
    gamma = 1.0 / np.sqrt(1.0 - speed**2)
    direction = _isotropic(int(n), rng)
    system = lab_velocity(2.0 * gamma * mass, pt_mean, rng)
    visible, invisible = [], []
    for sign in (1.0, -1.0):
        b, c = two_body(mass, rng)
        beta_a = sign * speed[:, None] * direction
        b, c = boost(boost(b, beta_a), system), boost(boost(c, beta_a), system)
        visible.append(b)
        invisible.append(c)
    met = invisible[0][:, 1:3] + invisible[1][:, 1:3]
    known = mt2(visible[0], visible[1], met) if with_known else None
    return Events(np.concatenate([visible[0], visible[1], met], axis=1), mass, known)
