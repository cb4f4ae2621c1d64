"""Photon showers in a high-granularity silicon-tungsten sampling calorimeter, parametrised.

A stand-in for the Geant4 showers of the ILD electromagnetic calorimeter that arXiv:2005.05334
learns, built from the classic parametrisation of electromagnetic showers (longitudinal Gamma
profile, radial core plus tail, in the spirit of Grindhammer and Peters, hep-ex/0001020), with
the features a generative model finds hard: sparse cells, a MIP peak and a readout threshold.

Each shower of incident energy ``E`` (a photon entering perpendicularly at the centre of the
front face):

1. **Longitudinal** (depth ``t`` in radiation lengths X0): ``dE/dt ~ Gamma(alpha, beta)``, with
   the mean shower maximum ``T = ln(E / E_c) + 0.5`` (photons, tungsten ``E_c`` = 7.97 MeV) and
   ``alpha = 1 + 0.5 T`` (PDG's b = 0.5). ``ln T`` and ``ln alpha`` fluctuate shower by shower as
   correlated Gaussians (widths ``1 / (1.26 ln y - 1.4)``, ``1 / (0.86 ln y - 0.58)``, correlation
   ``0.705 - 0.023 ln y``, ``y = E / E_c``; Grindhammer-Peters). What lies beyond the last layer
   leaks out.
2. **Radial** (``r`` in Moliere radii R_M): per layer, a core plus a tail,
   ``p f(r; R_C) + (1 - p) f(r; R_T)`` with ``f(r; R) = 2 r R^2 / (r^2 + R^2)^2``; both widen and
   the tail takes over with the relative depth ``tau = t / T``: ``R_C = 0.12 + 0.10 tau``,
   ``R_T = (0.4 + 0.4 tau) * s`` (``s`` a per-shower log-normal factor of width 0.1),
   ``p = clip(0.9 - 0.2 tau, 0.3, 0.9)``. Cell fractions are the exact integrals over each
   square cell.
3. **Sampling**: a cell's mean visible energy (``E`` times the sampling fraction, 1.5 %, times
   its share of the profile) is carried by ``n ~ Poisson(mean / MIP)`` charged tracks, each
   depositing a Landau-like ``MIP * Gamma(4) / 4`` (most probable 0.75 MIP, long right tail), with
   MIP = 0.15 MeV (500 um of silicon). This gives the MIP peak of the cell-energy spectrum and a
   stochastic resolution of about ``sqrt(1.25 MIP / E_vis)``.
4. **Readout**: cells below ``threshold_mip`` MIP are set to zero.

Geometry: ``cells_xy x cells_xy`` cells of 0.5 R_M (5 mm cells, the ILD ECAL's) and ``layers``
layers of 1.2 X0 each (20 layers: the ILD ECAL's 24 X0, which holds about 97 % of a 100 GeV
shower; 90 % of a shower's energy lies within 1 R_M of its axis, 95 % within 2 R_M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

from anomalyhunt.errors import AnomalyHuntError

#: Critical energy of tungsten (MeV): sets the depth of the shower maximum.
CRITICAL_ENERGY_MEV = 7.97
#: Shower-maximum offset of a photon, in X0 (electrons: -0.5).
C_PHOTON = 0.5
#: Depth of one layer in X0 (20 layers: the ILD ECAL's 24 X0).
X0_PER_LAYER = 1.2
#: Width of one cell in Moliere radii (5 mm cells).
CELL_RM = 0.5
#: Visible energy of one minimum-ionising particle in a silicon cell (MeV).
MIP_MEV = 0.15
#: Fraction of the shower energy seen by the silicon.
SAMPLING_FRACTION = 0.015
#: Gamma shape of one track's deposit (a crude Landau: relative spread 1 / sqrt(4)).
LANDAU_SHAPE = 4.0
#: Smallest grid across, in cells, that holds a shower's core and part of its tail.
MIN_CELLS_XY = 5
#: Depth beyond the deepest mean shower maximum that the calorimeter must have (X0).
DEPTH_MARGIN_X0 = 3.0


@dataclass(frozen=True)
class Calorimeter:
    """The calorimeter's grid and readout.

    Parameters
    ----------
    cells_xy : int
        Cells across the front face, in x and in y.
    layers : int
        Sampling layers in depth.
    threshold_mip : float
        Readout threshold in MIP: cells below it read zero.
    """

    cells_xy: int
    layers: int
    threshold_mip: float

    @property
    def n_cells(self) -> int:
        """Cells in all (``layers * cells_xy**2``)."""
        return self.layers * self.cells_xy**2

    @property
    def shape(self) -> tuple[int, int, int]:
        """A shower's array shape: (layers, x, y)."""
        return (self.layers, self.cells_xy, self.cells_xy)

    @property
    def depth_x0(self) -> float:
        """Total depth in radiation lengths."""
        return self.layers * X0_PER_LAYER

    @property
    def threshold_mev(self) -> float:
        """The readout threshold in MeV."""
        return self.threshold_mip * MIP_MEV

    def cell_edges(self) -> np.ndarray:
        """Cell boundaries across the face, in Moliere radii, centred on the shower axis."""
        half = 0.5 * self.cells_xy * CELL_RM
        return np.linspace(-half, half, self.cells_xy + 1)

    def layer_centres(self) -> np.ndarray:
        """Depth of each layer's centre in X0."""
        return (np.arange(self.layers) + 0.5) * X0_PER_LAYER

    def cell_radius(self) -> np.ndarray:
        """Distance of each cell's centre from the shower axis (R_M), shape (x, y)."""
        edges = self.cell_edges()
        c = 0.5 * (edges[1:] + edges[:-1])
        return np.hypot(c[:, None], c[None, :])


def shower_max_x0(energy_gev: np.ndarray | float) -> np.ndarray:
    """Mean depth of a photon shower's maximum in X0: ``ln(E / E_c) + 0.5``."""
    return np.log(np.asarray(energy_gev) * 1e3 / CRITICAL_ENERGY_MEV) + C_PHOTON


def check_geometry(calo: Calorimeter, energy_min: float, energy_max: float) -> None:
    """Refuse a grid the showers do not fit in, naming the setting to change.

    Raises
    ------
    AnomalyHuntError
        Fewer than 5 cells across, or a calorimeter that ends less than 3 X0 behind the mean
        shower maximum at the highest energy, or an empty energy range.
    """
    if not 0 < energy_min < energy_max:
        raise AnomalyHuntError(
            f"showers.energy_min: the incident energies {energy_min}-{energy_max} GeV are no range;"
            " energy_min must be positive and below energy_max"
        )
    if calo.cells_xy < MIN_CELLS_XY:
        half = 0.5 * calo.cells_xy * CELL_RM
        raise AnomalyHuntError(
            f"showers.cells_xy: {calo.cells_xy} cells across reach only +-{half:.2f} Moliere radii"
            f" from the shower axis, too small for a shower's core and tail; use at least"
            f" {MIN_CELLS_XY} (12 is the CPU default, 30 the paper's)"
        )
    t_max = float(shower_max_x0(energy_max))
    need = math.ceil((t_max + DEPTH_MARGIN_X0) / X0_PER_LAYER)
    if calo.layers < need:
        raise AnomalyHuntError(
            f"showers.layers: {calo.layers} layers ({calo.depth_x0:.1f} X0) end before the"
            f" {energy_max:g} GeV showers do (maximum at {t_max:.1f} X0, plus"
            f" {DEPTH_MARGIN_X0:g} X0 to see it fall); use at least {need} layers"
        )


def _square_integral(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Share of ``f(r; R)`` in the rectangle [0, a] x [0, b] (odd in a and in b)."""
    ca, cb = np.sqrt(a * a + r * r), np.sqrt(b * b + r * r)
    return (a / ca * np.arctan(b / ca) + b / cb * np.arctan(a / cb)) / (2 * np.pi)


def _cell_fractions(calo: Calorimeter, radius: np.ndarray) -> np.ndarray:
    """Share of a radial component of width ``radius`` (any shape S) in each cell: S + (x, y)."""
    e = calo.cell_edges()
    r = radius[..., None, None]
    corner = _square_integral(e[:, None], e[None, :], r)  # S + (x+1, y+1)
    return corner[..., 1:, 1:] - corner[..., :-1, 1:] - corner[..., 1:, :-1] + corner[..., :-1, :-1]


def _profile_parameters(
    energy_gev: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per shower: the Gamma profile's shape ``alpha`` and rate ``beta`` (per X0)."""
    ln_y = np.log(energy_gev * 1e3 / CRITICAL_ENERGY_MEV)
    t_mean = ln_y + C_PHOTON
    a_mean = 1.0 + 0.5 * t_mean
    s_t = 1.0 / (1.26 * ln_y - 1.4)
    s_a = 1.0 / (0.86 * ln_y - 0.58)
    rho = 0.705 - 0.023 * ln_y
    g1, g2 = rng.standard_normal((2, len(energy_gev)))
    ln_t = np.log(t_mean) + s_t * g1
    ln_a = np.log(a_mean) + s_a * (rho * g1 + np.sqrt(1 - rho**2) * g2)
    t_max, alpha = np.exp(ln_t), np.maximum(np.exp(ln_a), 1.05)
    return alpha, (alpha - 1.0) / t_max


def mean_deposits(
    calo: Calorimeter, energy_gev: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Mean visible energy (MeV) of every cell of each shower, its profile fluctuations drawn.

    Shape (n, layers, x, y); what the sampling then scatters around.
    """
    energy_gev = np.asarray(energy_gev, dtype=np.float64)
    alpha, beta = _profile_parameters(energy_gev, rng)
    edges = np.arange(calo.layers + 1) * X0_PER_LAYER
    cdf = gammainc(alpha[:, None], beta[:, None] * edges[None, :])
    longitudinal = np.diff(cdf, axis=1)  # (n, layers)
    tau = calo.layer_centres()[None, :] * beta[:, None] / (alpha[:, None] - 1.0)
    spread = np.exp(0.1 * rng.standard_normal(len(energy_gev)))[:, None]
    r_core = 0.12 + 0.10 * tau
    r_tail = (0.4 + 0.4 * tau) * spread
    p = np.clip(0.9 - 0.2 * tau, 0.3, 0.9)[..., None, None]
    lateral = p * _cell_fractions(calo, r_core) + (1 - p) * _cell_fractions(calo, r_tail)
    visible = energy_gev * 1e3 * SAMPLING_FRACTION
    return visible[:, None, None, None] * longitudinal[..., None, None] * lateral


def simulate(
    calo: Calorimeter, energy_gev: np.ndarray, rng: np.random.Generator, chunk: int = 1000
) -> np.ndarray:
    """Simulate showers: visible energy per cell in MeV, shape (n, layers, x, y), float32.

    Parameters
    ----------
    calo : Calorimeter
        The grid and readout threshold.
    energy_gev : array
        Incident photon energies (GeV), one per shower.
    rng : numpy Generator
        The only source of randomness (seed it from the run's seed).
    chunk : int, default 1000
        Showers per vectorised step (bounds the memory of the intermediate arrays).
    """
    energy_gev = np.asarray(energy_gev, dtype=np.float64)
    out = np.empty((len(energy_gev), *calo.shape), dtype=np.float32)
    for s in range(0, len(energy_gev), chunk):
        out[s : s + chunk] = sample_cells(
            calo, mean_deposits(calo, energy_gev[s : s + chunk], rng), rng
        )
    return out


def sample_cells(calo: Calorimeter, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Read out cells of mean visible energy ``mean`` (MeV): tracks, their deposits, threshold."""
    tracks = rng.poisson(mean / MIP_MEV)
    cell = MIP_MEV * rng.gamma(LANDAU_SHAPE * tracks, 1.0 / LANDAU_SHAPE)
    cell[cell < calo.threshold_mev] = 0.0
    return cell


def incident_energies(n: int, energy_min: float, energy_max: float, rng: np.random.Generator):
    """Incident energies uniform in [energy_min, energy_max] GeV (the paper's 10-100 GeV)."""
    return rng.uniform(energy_min, energy_max, size=int(n))
