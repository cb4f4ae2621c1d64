"""The weighted toy: a Drell-Yan-like dimuon spectrum sampled flat, so every event carries a weight.

A matrix-element generator that samples phase space from a simple proposal returns *weighted*
events, w = f(x) / g(x) with f the true density and g the proposal; a narrow resonance on a
steeply falling spectrum makes the weights spread over orders of magnitude. Here:

* **mass** m (1-D): a Z Breit-Wigner (Cauchy in m, M_Z = 91.1876 GeV, Gamma_Z = 2.4952 GeV)
  on a continuum falling like m^-p (p = ``continuum_power``), both truncated to [mass_min,
  mass_max] and mixed with the Z fraction ``z_fraction``;
* **mass and cos(theta*)** (2-D): the same mass with the lepton angle in the Collins-Soper frame,
  3/8 (1 + c^2) + A_FB(m) c, whose forward-backward asymmetry A_FB(m) = 0.05 + 0.55 tanh((m -
  M_Z) / 20 GeV) changes sign across the Z as the gamma/Z interference does: a correlated density.

The proposal g is flat in m (and in c), so the weights have mean 1 (the densities are normalised),
the weighted histogram reproduces f exactly on average, and the unweighting efficiency mean(w) /
max(w) is the flat density over the peak's height: below 1 % for mass_max = 700 GeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Z boson mass and width (GeV), PDG.
M_Z, GAMMA_Z = 91.1876, 2.4952
#: A_FB(m) = AFB_OFFSET + AFB_SWING * tanh((m - M_Z) / AFB_SCALE): the toy's gamma/Z interference.
AFB_OFFSET, AFB_SWING, AFB_SCALE = 0.05, 0.55, 20.0


@dataclass(frozen=True)
class WeightedSample:
    """Weighted events: ``x`` (n, dim) with columns mass [GeV] (and cos theta*), weights ``w``."""

    x: np.ndarray
    w: np.ndarray

    def __len__(self) -> int:
        return len(self.w)


@dataclass(frozen=True)
class DrellYanToy:
    """The truth densities, the flat proposal and exact bin probabilities of the weighted toy.

    Parameters
    ----------
    mass_min, mass_max : float
        The generated mass window (GeV); the densities vanish outside it.
    z_fraction : float
        Share of the Z Breit-Wigner in the window (the rest is the continuum).
    continuum_power : float
        Fall-off of the continuum, density proportional to m^-continuum_power (above 1).
    """

    mass_min: float
    mass_max: float
    z_fraction: float
    continuum_power: float

    # -- the mass spectrum ------------------------------------------------------------------
    def _bw_cdf(self, m: np.ndarray) -> np.ndarray:
        return np.arctan((np.asarray(m, dtype=np.float64) - M_Z) / (GAMMA_Z / 2)) / np.pi

    def _cont_cdf(self, m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, dtype=np.float64)
        if self.continuum_power == 1:
            return np.log(m)
        return m ** (1 - self.continuum_power) / (1 - self.continuum_power)

    def _norms(self) -> tuple[float, float]:
        lo, hi = self.mass_min, self.mass_max
        return (
            float(self._bw_cdf(hi) - self._bw_cdf(lo)),
            float(self._cont_cdf(hi) - self._cont_cdf(lo)),
        )

    def mass_density(self, m: np.ndarray) -> np.ndarray:
        """Normalised density of the mass (1/GeV), zero outside the window."""
        m = np.asarray(m, dtype=np.float64)
        n_bw, n_cont = self._norms()
        bw = (GAMMA_Z / 2) / np.pi / ((m - M_Z) ** 2 + (GAMMA_Z / 2) ** 2) / n_bw
        cont = m**-self.continuum_power / n_cont
        inside = (m >= self.mass_min) & (m <= self.mass_max)
        return np.where(inside, self.z_fraction * bw + (1 - self.z_fraction) * cont, 0.0)

    def mass_cdf(self, m: np.ndarray) -> np.ndarray:
        """Probability of a mass below ``m`` (the exact bin contents of the truth)."""
        m = np.clip(np.asarray(m, dtype=np.float64), self.mass_min, self.mass_max)
        n_bw, n_cont = self._norms()
        bw = (self._bw_cdf(m) - self._bw_cdf(self.mass_min)) / n_bw
        cont = (self._cont_cdf(m) - self._cont_cdf(self.mass_min)) / n_cont
        return self.z_fraction * bw + (1 - self.z_fraction) * cont

    def mass_quantiles(self, q: np.ndarray) -> np.ndarray:
        """Masses below which the truth has probability ``q``: edges of equal-content bins."""
        q = np.asarray(q, dtype=np.float64)
        lo = np.full(q.shape, self.mass_min)
        hi = np.full(q.shape, self.mass_max)
        for _ in range(60):  # bisection to 1e-18 of the window
            mid = 0.5 * (lo + hi)
            below = self.mass_cdf(mid) < q
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    # -- the angle --------------------------------------------------------------------------
    @staticmethod
    def afb(m: np.ndarray) -> np.ndarray:
        """Forward-backward asymmetry at mass ``m``: the mean of cos theta* is 2/3 of it."""
        return AFB_OFFSET + AFB_SWING * np.tanh((np.asarray(m, dtype=np.float64) - M_Z) / AFB_SCALE)

    def density(self, x: np.ndarray) -> np.ndarray:
        """Normalised truth density of events ``x`` (n, 1) or (n, 2) (mass, cos theta*)."""
        x = np.asarray(x, dtype=np.float64)
        f = self.mass_density(x[:, 0])
        if x.shape[1] == 1:
            return f
        c = x[:, 1]
        angular = 3 / 8 * (1 + c**2) + self.afb(x[:, 0]) * c
        return np.where(np.abs(c) <= 1, f * angular, 0.0)

    def inside(self, x: np.ndarray) -> np.ndarray:
        """Which events lie in the phase space: mass in the window (and |cos theta*| <= 1)."""
        ok = (x[:, 0] >= self.mass_min) & (x[:, 0] <= self.mass_max)
        return ok & (np.abs(x[:, 1]) <= 1) if x.shape[1] == 2 else ok

    # -- weighted events ----------------------------------------------------------------------
    def sample(self, n: int, dim: int, rng: np.random.Generator) -> WeightedSample:
        """``n`` events flat in the mass window (and in cos theta*), weighted by truth / proposal.

        The proposal density is 1 / (mass_max - mass_min) (times 1/2 for the angle), so the
        weights average to 1 and a weighted histogram is an unbiased estimate of the truth.
        """
        if dim not in (1, 2):
            raise ValueError(f"the toy has 1 or 2 dimensions, not {dim}")
        width = self.mass_max - self.mass_min
        cols = [rng.uniform(self.mass_min, self.mass_max, n)]
        volume = width
        if dim == 2:
            cols.append(rng.uniform(-1.0, 1.0, n))
            volume *= 2.0
        x = np.stack(cols, axis=1)
        return WeightedSample(x=x, w=self.density(x) * volume)

    # -- exact bin contents of the truth --------------------------------------------------------
    def bin_probabilities(
        self, m_edges: np.ndarray, c_edges: np.ndarray | None = None
    ) -> np.ndarray:
        """Truth probability of each mass bin, or of each (mass, cos theta*) bin (shape (nm, nc)).

        The mass part is exact (closed-form CDFs); the angle's A_FB(m) term is integrated over
        each mass bin with 64-point Gauss-Legendre on sub-intervals, good to 1e-8.
        """
        m_edges = np.asarray(m_edges, dtype=np.float64)
        p_m = np.diff(self.mass_cdf(m_edges))
        if c_edges is None:
            return p_m
        c = np.clip(np.asarray(c_edges, dtype=np.float64), -1, 1)
        sym = 3 / 8 * (np.diff(c) + np.diff(c**3) / 3)  # (nc,)
        odd = np.diff(c**2) / 2  # (nc,)
        fa = np.array(
            [self._integrate_f_afb(a, b) for a, b in zip(m_edges[:-1], m_edges[1:], strict=True)]
        )
        return p_m[:, None] * sym[None, :] + fa[:, None] * odd[None, :]

    def _integrate_f_afb(self, a: float, b: float, pieces: int = 16) -> float:
        nodes, weights = np.polynomial.legendre.leggauss(64)
        total = 0.0
        cuts = np.linspace(a, b, pieces + 1)
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            m = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
            total += 0.5 * (hi - lo) * float(np.sum(weights * self.mass_density(m) * self.afb(m)))
        return total


def unweighting_efficiency(w: np.ndarray) -> float:
    """mean(w) / max(w): the fraction of events hit-or-miss unweighting keeps."""
    w = np.asarray(w, dtype=np.float64)
    return float(w.mean() / w.max())


def kish_ess(w: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: unweighted events worth as much."""
    w = np.asarray(w, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w**2))


def hit_or_miss(sample: WeightedSample, rng: np.random.Generator) -> np.ndarray:
    """Standard unweighting: keep each event with probability w / max(w); the kept events.

    The expected number kept is sum(w) / max(w); they are unweighted (weight sum(w) / kept each).
    """
    keep = rng.uniform(0.0, 1.0, len(sample)) * sample.w.max() < sample.w
    return sample.x[keep]
