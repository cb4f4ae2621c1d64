"""The toys of GANplifying: a 1-D camel, a 2-D ring and a D-dimensional shell, with exact cells.

Every toy knows its true density, draws seeded samples in microseconds and splits its space into
``n_cells`` cells of *exactly* equal true probability (the paper's quantiles), so the truth of
every cell is ``1 / n_cells`` and no Monte Carlo truth is needed.

Camel (1-D): ``0.5 N(-4, 1) + 0.5 N(+4, 1)``; its cells are the intervals between the true
quantiles ``F^-1(k / K)``.

Shell (D >= 2; the ring is D = 2): ``x = r u`` with ``u`` uniform on the unit sphere and the radius
``r ~ N(4, 1)`` truncated to ``r > 0`` (a 3e-5 effect), independent of the direction. Its cells are
the product of ``radial_quantiles`` radial quantiles, ``sectors`` equal sectors of the azimuth
``phi = atan2(x2, x1)`` and the signs of ``x3 ... xD``. For a rotation-invariant direction these
are independent and uniform (a Gaussian vector's azimuth and component signs are independent),
so every cell holds ``1 / (radial_quantiles * sectors * 2^(D-2))`` of the true probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import optimize, stats

#: The camel's humps: centres, common width and weights (1-D toy).
CAMEL_CENTRES = (-4.0, 4.0)
CAMEL_WIDTH = 1.0
CAMEL_WEIGHTS = (0.5, 0.5)
#: The ring's and shell's radius and radial width.
SHELL_RADIUS = 4.0
SHELL_WIDTH = 1.0


def mixture_cdf(
    x: np.ndarray, centres: np.ndarray, widths: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """CDF of a 1-D Gaussian mixture at ``x`` (any shape)."""
    x = np.asarray(x, dtype=np.float64)[..., None]
    return np.sum(np.asarray(weights) * stats.norm.cdf(x, centres, widths), axis=-1)


def radial_distribution(radius: float, width: float) -> stats.rv_continuous:
    """``N(radius, width)`` truncated to positive radii (frozen scipy distribution)."""
    return stats.truncnorm(-radius / width, np.inf, loc=radius, scale=width)


@dataclass(frozen=True)
class Camel:
    """The 1-D camel: two Gaussian humps, cut into equal-probability quantiles.

    Parameters
    ----------
    quantiles : int
        Number of cells (intervals of equal true probability).
    """

    quantiles: int
    name: str = "camel"
    dim: int = 1

    @property
    def n_cells(self) -> int:
        """Number of equal-probability cells."""
        return int(self.quantiles)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` true events, shape (n, 1)."""
        hump = rng.choice(len(CAMEL_CENTRES), size=int(n), p=CAMEL_WEIGHTS)
        x = np.asarray(CAMEL_CENTRES)[hump] + CAMEL_WIDTH * rng.standard_normal(int(n))
        return x[:, None]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """True CDF."""
        widths = np.full(len(CAMEL_CENTRES), CAMEL_WIDTH)
        return mixture_cdf(x, np.asarray(CAMEL_CENTRES), widths, np.asarray(CAMEL_WEIGHTS))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """True density, for figures."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        return np.sum(
            np.asarray(CAMEL_WEIGHTS) * stats.norm.pdf(x, CAMEL_CENTRES, CAMEL_WIDTH), axis=-1
        )

    @cached_property
    def edges(self) -> np.ndarray:
        """The ``quantiles - 1`` inner cell edges, ``F^-1(k / quantiles)``."""
        lo, hi = min(CAMEL_CENTRES) - 20 * CAMEL_WIDTH, max(CAMEL_CENTRES) + 20 * CAMEL_WIDTH
        return np.array(
            [
                optimize.brentq(lambda t, q=k / self.quantiles: float(self.cdf(t)) - q, lo, hi)
                for k in range(1, self.quantiles)
            ]
        )

    def cells(self, x: np.ndarray) -> np.ndarray:
        """The cell index (0 ... n_cells - 1) of each event of ``x`` (shape (n, 1))."""
        return np.searchsorted(self.edges, np.asarray(x)[:, 0])


@dataclass(frozen=True)
class Shell:
    """A Gaussian shell in ``dim`` dimensions (the ring for dim = 2), cut into equal cells.

    Parameters
    ----------
    dim : int
        Dimension of the space (2: the ring).
    radial_quantiles : int
        Equal-probability intervals of the radius.
    sectors : int
        Equal sectors of the azimuth in the (x1, x2) plane.
    """

    dim: int
    radial_quantiles: int
    sectors: int

    @property
    def name(self) -> str:
        """ "ring" in 2-D, else "shell"."""
        return "ring" if self.dim == 2 else "shell"

    @property
    def radial(self) -> stats.rv_continuous:
        """The true radial distribution."""
        return radial_distribution(SHELL_RADIUS, SHELL_WIDTH)

    @property
    def n_directions(self) -> int:
        """Direction cells: azimuth sectors times the sign patterns of x3 ... xD."""
        return int(self.sectors) * 2 ** (self.dim - 2)

    @property
    def n_cells(self) -> int:
        """Number of equal-probability cells."""
        return int(self.radial_quantiles) * self.n_directions

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` true events, shape (n, dim)."""
        g = rng.standard_normal((int(n), self.dim))
        u = g / np.linalg.norm(g, axis=1, keepdims=True)
        r = self.radial.ppf(rng.uniform(size=int(n)))
        return r[:, None] * u

    @cached_property
    def radial_edges(self) -> np.ndarray:
        """The ``radial_quantiles - 1`` inner radial edges."""
        q = np.arange(1, self.radial_quantiles) / self.radial_quantiles
        return self.radial.ppf(q)

    def radius(self, x: np.ndarray) -> np.ndarray:
        """Distance of each event from the origin."""
        return np.linalg.norm(np.asarray(x), axis=1)

    def direction_cells(self, x: np.ndarray) -> np.ndarray:
        """Index (0 ... n_directions - 1) of each event's azimuth sector and sign pattern."""
        x = np.asarray(x)
        phi = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * math.pi)
        sector = np.minimum((phi / (2 * math.pi) * self.sectors).astype(np.int64), self.sectors - 1)
        bits = np.zeros(len(x), dtype=np.int64)
        for j in range(2, self.dim):
            bits = 2 * bits + (x[:, j] >= 0)
        return sector * 2 ** (self.dim - 2) + bits

    def cells(self, x: np.ndarray) -> np.ndarray:
        """The cell index (0 ... n_cells - 1) of each event of ``x`` (shape (n, dim))."""
        ring = np.searchsorted(self.radial_edges, self.radius(x))
        return ring * self.n_directions + self.direction_cells(x)


Toy = Camel | Shell


def make_toy(
    name: str, *, quantiles: int, radial_quantiles: int, sectors: int, shell_dim: int
) -> Toy:
    """The toy called ``name`` ("camel", "ring" or "shell") with its cells.

    Parameters
    ----------
    name : str
        "camel" (1-D), "ring" (2-D) or "shell" (``shell_dim``-D).
    quantiles : int
        The camel's cells.
    radial_quantiles, sectors : int
        The ring's and shell's radial and azimuthal cells.
    shell_dim : int
        Dimension of the shell.
    """
    if name == "camel":
        return Camel(quantiles=quantiles)
    if name in ("ring", "shell"):
        dim = 2 if name == "ring" else shell_dim
        return Shell(dim=dim, radial_quantiles=radial_quantiles, sectors=sectors)
    raise ValueError(f"unknown toy '{name}'; use camel, ring or shell")
