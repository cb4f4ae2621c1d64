"""The transverse mass and M_T2, the known variables of the invisible-particle toys.

``M_T2`` (Lester & Summers, hep-ph/9906349) of two visible particles and the missing transverse
momentum is the smallest, over all splittings ``q1 + q2 = pT_miss`` of the missing momentum into
two invisible particles of trial mass chi, of the larger of the two transverse masses:

    M_T2 = min_{q1 + q2 = pT_miss} max(m_T(p1, q1), m_T(p2, q2)).

``m_T^2(p, q) = m_p^2 + chi^2 + 2 (E_T(p) E_T(q) - pT(p) . q)`` is convex in q (``E_T(q) =
sqrt(chi^2 + q^2)`` is), so ``F(q1) = max(m_T^2(p1, q1), m_T^2(p2, pT_miss - q1))`` is convex on
the plane, and so is its minimum over one coordinate as a function of the other. M_T2 is found
by two nested golden-section searches (each exact for a convex function of one variable), for
all events at once in numpy. For the true invisible mass its endpoint is the parent's mass.
"""

from __future__ import annotations

import numpy as np

GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def _transverse_energy(m2: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(m2, 0.0) + px**2 + py**2)


def _mass2(p: np.ndarray) -> np.ndarray:
    return np.maximum(p[:, 0] ** 2 - np.sum(p[:, 1:] ** 2, axis=1), 0.0)


def transverse_mass(p: np.ndarray, q: np.ndarray, invisible_mass: float = 0.0) -> np.ndarray:
    """m_T of visible four-vectors ``p`` (n, 4) with invisible transverse momenta ``q`` (n, 2)."""
    m2, chi2 = _mass2(p), float(invisible_mass) ** 2
    et_p = _transverse_energy(m2, p[:, 1], p[:, 2])
    et_q = _transverse_energy(np.full(len(q), chi2), q[:, 0], q[:, 1])
    mt2 = m2 + chi2 + 2.0 * (et_p * et_q - p[:, 1] * q[:, 0] - p[:, 2] * q[:, 1])
    return np.sqrt(np.maximum(mt2, 0.0))


def _golden_min(f, lo: np.ndarray, hi: np.ndarray, iterations: int) -> np.ndarray:
    """Minimum value of a unimodal f over [lo, hi], per event (vectorised golden section)."""
    c = hi - GOLDEN * (hi - lo)
    d = lo + GOLDEN * (hi - lo)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        left = fc < fd  # the minimum lies in [lo, d]
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        new_c = hi - GOLDEN * (hi - lo)
        new_d = lo + GOLDEN * (hi - lo)
        # one of the two interior points carries over; the other is evaluated afresh
        x_new = np.where(left, new_c, new_d)
        f_new = f(x_new)
        fc, fd, c, d = (
            np.where(left, f_new, fd),
            np.where(left, fc, f_new),
            np.where(left, x_new, d),
            np.where(left, c, x_new),
        )
    return np.minimum(fc, fd)


def mt2(
    p1: np.ndarray,
    p2: np.ndarray,
    met: np.ndarray,
    invisible_mass: float = 0.0,
    iterations: int = 40,
) -> np.ndarray:
    """M_T2 per event, by nested golden-section minimisation (module docstring).

    Parameters
    ----------
    p1, p2 : array (n, 4)
        The visible particles' four-vectors (E, px, py, pz).
    met : array (n, 2)
        Missing transverse momentum.
    invisible_mass : float, default 0
        The trial mass chi of each invisible particle.
    iterations : int, default 40
        Golden-section steps per search: the bracket (a few times the event's momenta) shrinks
        by 0.618 per step, to 1e-8 of itself after 40.

    Returns
    -------
    array (n,)
        M_T2 in the units of the inputs.
    """
    m1, m2 = _mass2(p1), _mass2(p2)
    chi2 = float(invisible_mass) ** 2
    et1 = _transverse_energy(m1, p1[:, 1], p1[:, 2])
    et2 = _transverse_energy(m2, p2[:, 1], p2[:, 2])
    scale = (
        np.hypot(met[:, 0], met[:, 1]) + np.hypot(p1[:, 1], p1[:, 2]) + np.hypot(p2[:, 1], p2[:, 2])
    )
    reach = 4.0 * scale + 1.0  # the bracket of each component of q1

    def objective(qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        rx, ry = met[:, 0] - qx, met[:, 1] - qy
        a = m1 + chi2 + 2.0 * (et1 * np.sqrt(chi2 + qx**2 + qy**2) - p1[:, 1] * qx - p1[:, 2] * qy)
        b = m2 + chi2 + 2.0 * (et2 * np.sqrt(chi2 + rx**2 + ry**2) - p2[:, 1] * rx - p2[:, 2] * ry)
        return np.maximum(a, b)

    def best_over_y(qx: np.ndarray) -> np.ndarray:
        return _golden_min(lambda qy: objective(qx, qy), -reach, reach.copy(), iterations)

    value = _golden_min(best_over_y, -reach, reach.copy(), iterations)
    return np.sqrt(np.maximum(value, 0.0))
