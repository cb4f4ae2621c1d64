"""A trained fast simulation: theta in, x out, with its range guard and efficiency map.

:class:`FastSim` wraps one of the networks of :mod:`anomalyhunt.fastsim.networks` with what it
needs to be used as a simulator: the encoding of theta, the standardisation of the response, the
range of theta it was trained on and a binned efficiency map. :meth:`FastSim.sample` is the one
entry point: a condition outside the trained range is never silently extrapolated. With
``out_of_range="clip"`` its pT and |eta| are clipped onto the range's edge for the network (the
response there is applied to the muon's true kinematics) and counted; with ``"refuse"`` the call
stops with one line saying how many muons lie outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.fastsim.toy import from_residuals

#: The fast simulations, in the order of the figures.
KINDS = ("cgan", "wgan_gp", "flow", "mdn")
#: What to do with a condition outside the trained range.
POLICIES = ("clip", "refuse")


@dataclass(frozen=True)
class ThetaRange:
    """The generator-level range a fast simulation was trained on.

    Parameters
    ----------
    pt_min, pt_max : float
        Muon pT range in GeV.
    eta_max : float
        Largest |eta|.
    """

    pt_min: float
    pt_max: float
    eta_max: float

    def outside(self, theta: np.ndarray) -> np.ndarray:
        """Mask of the muons outside the range."""
        pt, eta = theta[:, 0], theta[:, 1]
        return (pt < self.pt_min) | (pt > self.pt_max) | (np.abs(eta) > self.eta_max)

    def clip(self, theta: np.ndarray) -> np.ndarray:
        """theta with pT and eta clipped onto the range."""
        out = np.array(theta, dtype=np.float64, copy=True)
        out[:, 0] = np.clip(out[:, 0], self.pt_min, self.pt_max)
        out[:, 1] = np.clip(out[:, 1], -self.eta_max, self.eta_max)
        return out


def encode(theta: np.ndarray, theta_range: ThetaRange) -> np.ndarray:
    """The networks' condition: log pT and eta scaled to [-1, 1], sin and cos phi, charge."""
    lo, hi = np.log(theta_range.pt_min), np.log(theta_range.pt_max)
    logpt = (2 * np.log(theta[:, 0]) - lo - hi) / (hi - lo)
    phi = theta[:, 2]
    c = np.column_stack(
        [logpt, theta[:, 1] / theta_range.eta_max, np.sin(phi), np.cos(phi), theta[:, 3]]
    )
    return c.astype(np.float32)


@dataclass
class EfficiencyMap:
    """Reconstruction efficiency binned in generator-level pT and |eta|.

    Parameters
    ----------
    pt_edges, eta_edges : array
        Bin edges (values outside go to the first or last bin).
    table : array
        Efficiency per (pT bin, |eta| bin).
    """

    pt_edges: np.ndarray
    eta_edges: np.ndarray
    table: np.ndarray

    @classmethod
    def fit(
        cls, theta: np.ndarray, seen: np.ndarray, pt_edges: np.ndarray, eta_edges: np.ndarray
    ) -> EfficiencyMap:
        """Measure the efficiency of every bin from muons and whether they were reconstructed."""
        i, j = cls._bins(theta, pt_edges, eta_edges)
        shape = (len(pt_edges) - 1, len(eta_edges) - 1)
        total = np.zeros(shape)
        passed = np.zeros(shape)
        np.add.at(total, (i, j), 1.0)
        np.add.at(passed, (i, j), seen.astype(np.float64))
        table = np.where(total > 0, passed / np.maximum(total, 1.0), 1.0)
        return cls(np.asarray(pt_edges, float), np.asarray(eta_edges, float), table)

    @staticmethod
    def _bins(
        theta: np.ndarray, pt_edges: np.ndarray, eta_edges: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        i = np.clip(np.searchsorted(pt_edges, theta[:, 0], side="right") - 1, 0, len(pt_edges) - 2)
        j = np.searchsorted(eta_edges, np.abs(theta[:, 1]), side="right") - 1
        return i, np.clip(j, 0, len(eta_edges) - 2)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """The map's efficiency for each muon."""
        return self.table[self._bins(theta, self.pt_edges, self.eta_edges)]


@dataclass
class Sample:
    """What :meth:`FastSim.sample` returns.

    Parameters
    ----------
    x : array (n, 8)
        Reconstructed muons (columns ``toy.X_FEATURES``), for every input muon.
    reconstructed : array of bool
        Which muons the efficiency map keeps.
    response : array (n, 8)
        The generated response (columns ``toy.RESPONSE``).
    clipped : int
        Muons whose condition was clipped onto the trained range.
    """

    x: np.ndarray
    reconstructed: np.ndarray
    response: np.ndarray
    clipped: int


class FastSim:
    """A trained q(x | theta): a network plus its encoding, range guard and efficiency map.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    net : torch.nn.Module
        The trained network (offers ``generate(c, generator)``).
    theta_range : ThetaRange
        The range of theta it was trained on.
    mean, scale : array
        Standardisation of the response (the network generates standardised values).
    efficiency : EfficiencyMap
        Which muons are reconstructed.
    device : str
        Where the network runs.
    """

    def __init__(
        self,
        kind: str,
        net: object,
        *,
        theta_range: ThetaRange,
        mean: np.ndarray,
        scale: np.ndarray,
        efficiency: EfficiencyMap,
        device: str,
    ) -> None:
        self.kind, self.net, self.range = kind, net, theta_range
        self.mean, self.scale = np.asarray(mean), np.asarray(scale)
        self.efficiency, self.device = efficiency, device

    def response(self, theta: np.ndarray, seed: int) -> np.ndarray:
        """The generated response for in-range theta (no range check: use :meth:`sample`)."""
        import torch

        from anomalyhunt.scores.training import EVAL_BATCH

        dev = torch.device(self.device)
        c = torch.as_tensor(encode(theta, self.range), device=dev)
        gen = torch.Generator(device=dev).manual_seed(int(seed))
        parts = []
        self.net.eval()
        with torch.no_grad():
            for s in range(0, len(c), EVAL_BATCH):
                parts.append(self.net.generate(c[s : s + EVAL_BATCH], gen).double().cpu().numpy())
        z = np.concatenate(parts) if parts else np.empty((0, len(self.mean)))
        return z * self.scale + self.mean

    def sample(self, theta: np.ndarray, *, seed: int, out_of_range: str) -> Sample:
        """Simulate muons: x for each row of theta (pT, eta, phi, charge).

        Parameters
        ----------
        theta : array (n, 4)
            Generator-level muons.
        seed : int
            Seeds the network's noise and the efficiency draw.
        out_of_range : {"clip", "refuse"}
            What to do with muons outside the trained range (module docstring).

        Raises
        ------
        AnomalyHuntError
            For a charge other than +-1, a non-finite theta, or (``"refuse"``) muons outside
            the trained range.
        """
        if out_of_range not in POLICIES:
            raise AnomalyHuntError(
                f"fastsim.out_of_range: '{out_of_range}' is not one of {', '.join(POLICIES)}"
            )
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim != 2 or theta.shape[1] != 4:
            raise AnomalyHuntError(f"fastsim: theta must have shape (n, 4), got {theta.shape}")
        if not np.isfinite(theta).all() or (theta[:, 0] <= 0).any():
            raise AnomalyHuntError("fastsim: theta has non-finite values or pT <= 0")
        if not np.isin(theta[:, 3], (-1.0, 1.0)).all():
            raise AnomalyHuntError("fastsim: a muon's charge must be -1 or +1")
        outside = self.range.outside(theta)
        n_out = int(outside.sum())
        if n_out and out_of_range == "refuse":
            r = self.range
            raise AnomalyHuntError(
                f"fastsim: {n_out} of {len(theta)} muons lie outside the trained range "
                f"(pT {r.pt_min:g}-{r.pt_max:g} GeV, |eta| <= {r.eta_max:g}) and out_of_range "
                "is 'refuse'; set fastsim.out_of_range=clip to simulate them at the range's edge"
            )
        resp = self.response(self.range.clip(theta), seed)
        draw = np.random.default_rng(seed).random(len(theta))
        seen = draw < self.efficiency(theta)
        return Sample(
            x=from_residuals(theta, resp), reconstructed=seen, response=resp, clipped=n_out
        )
