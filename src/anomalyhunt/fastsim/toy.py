"""The Z -> mu mu toy: generator-level muons theta and a detector that turns them into x.

Generator level (:func:`z_decays`): the Z mass from a Breit-Wigner (mass 91.1876 GeV, width
2.4952 GeV, cut to 60-120 GeV), its pT from a Gamma distribution (shape 1.5, scale 6 GeV) or, for
15% (recoil against a hard jet), an exponential of mean 25 GeV, its rapidity from a Gaussian (sigma 1.6), the decay 1 + cos^2 in the rest frame (about
the beam axis), boosted to the lab. Each muon's theta is (pT [GeV], eta, phi, charge).

Detector (:class:`Detector`), per muon, vectorised numpy:

* curvature q/pT smeared with a relative resolution hypot(1%, 3e-4 pT/GeV) x (1 + 0.15 eta^2)
  (multiple scattering floor, then the sagitta measurement), shifted by a curvature bias
  ``charge_bias`` x (1 + 0.5 sin phi) (a misalignment: it moves mu+ and mu- pT opposite ways);
* eta, phi with multiple-scattering terms ~ 1/p; d0 [um] correlated with phi (rho = -0.5), dz [um]
  correlated with eta (rho = 0.4), both with resolutions hypot(floor, term / pT);
* three r-phi hit positions [um] at radii 3, 7, 11 cm: the track's sagitta, its d0 and phi
  offset, scattering kicks that accumulate outward and a 10 um intrinsic resolution;
* a non-Gaussian tail: a fraction ``tail_fraction`` of muons ("badly measured" tracks) has every
  smearing but the intrinsic hit noise widened by ``tail_scale``, for all features at once;
* an efficiency: a pT turn-on (50% at 10 GeV, width 2.5 GeV) times a 97% plateau with holes at
  |eta| < 0.2 (85%, the central crack) and 1.0 < |eta| < 1.3 (90%, barrel-endcap overlap).

The networks learn the response r = (curvature residual, d eta, d phi, d0, dz, hit residuals),
x minus what theta predicts (:func:`residuals`, :func:`from_residuals` go between r and x), so
their difficulty is the detector, not the kinematics. Everything takes a numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_MASS, Z_WIDTH, MU_MASS = 91.1876, 2.4952, 0.1056584  # GeV (PDG)

#: Columns of theta (generator level, one row per muon).
THETA = ("pt", "eta", "phi", "charge")
#: Columns of x (reconstructed): pT [GeV], eta, phi, d0 and dz [um], hits [um].
X_FEATURES = ("pt", "eta", "phi", "d0", "dz", "hit1", "hit2", "hit3")
#: Columns of the response r = f(x, theta) the networks learn.
RESPONSE = ("curvature", "deta", "dphi", "d0", "dz", "hit1", "hit2", "hit3")
#: Axis labels of the response.
RESPONSE_LABELS = (
    r"$(q/p_T)_{reco}\,/\,(q/p_T) - 1$",
    r"$\Delta\eta \times 10^3$",
    r"$\Delta\phi \times 10^3$",
    r"$d_0$ [$\mu$m]",
    r"$d_z$ [$\mu$m]",
    r"hit 1 residual [$\mu$m]",
    r"hit 2 residual [$\mu$m]",
    r"hit 3 residual [$\mu$m]",
)

LAYERS_UM = np.array([3.0e4, 7.0e4, 11.0e4])  # hit layer radii
SAGITTA = 0.5 * 0.3 * 3.8 * 1e6 * (LAYERS_UM * 1e-6) ** 2  # um per (q/pT in 1/GeV), B = 3.8 T
CURV_MS, CURV_PT, CURV_ETA = 0.01, 3e-4, 0.15
ETA_FLOOR, ETA_MS = 2e-4, 0.01  # sigma(eta) = hypot(floor, ms / p)
PHI_FLOOR, PHI_MS = 1e-4, 5e-3  # sigma(phi) = hypot(floor, ms / pT)
D0_FLOOR, D0_MS, RHO_D0_PHI = 10.0, 300.0, -0.5  # um
DZ_FLOOR, DZ_MS, RHO_DZ_ETA = 20.0, 500.0, 0.4  # um
HIT_SIGMA, KICK = 10.0, 0.01  # um; scattering angle per layer = KICK / p [rad]
TURN_ON, TURN_ON_WIDTH, PLATEAU = 10.0, 2.5, 0.97
HARD_FRACTION, HARD_SCALE = 0.15, 25.0  # Z recoiling against a hard jet: exponential pT


@dataclass
class ZDecays:
    """Generated Z bosons and their muons (4-vectors as (E, px, py, pz) in GeV)."""

    mass: np.ndarray
    z: np.ndarray
    mu_minus: np.ndarray
    mu_plus: np.ndarray

    def theta(self) -> np.ndarray:
        """Per-muon theta (pT, eta, phi, charge): all mu- first, then all mu+."""
        rows = [kinematics(self.mu_minus, -1.0), kinematics(self.mu_plus, 1.0)]
        return np.concatenate(rows)


def kinematics(p4: np.ndarray, charge: float) -> np.ndarray:
    """(pT, eta, phi, charge) of 4-vectors (E, px, py, pz)."""
    pt = np.hypot(p4[:, 1], p4[:, 2])
    eta = np.arcsinh(p4[:, 3] / pt)
    phi = np.arctan2(p4[:, 2], p4[:, 1])
    return np.column_stack([pt, eta, phi, np.full(len(pt), charge)])


def invariant_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mass of the sum of two 4-vectors (E, px, py, pz)."""
    s = a + b
    return np.sqrt(np.maximum(s[:, 0] ** 2 - (s[:, 1:] ** 2).sum(axis=1), 0.0))


def _boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Lorentz-boost rest-frame 4-vectors by velocity ``beta`` (n, 3)."""
    b2 = (beta**2).sum(axis=1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (beta * p4[:, 1:]).sum(axis=1)
    coef = np.where(b2 > 0, (gamma - 1.0) * bp / np.where(b2 > 0, b2, 1.0), 0.0)
    p = p4[:, 1:] + (coef + gamma * p4[:, 0])[:, None] * beta
    return np.column_stack([gamma * (p4[:, 0] + bp), p])


def z_decays(n: int, rng: np.random.Generator) -> ZDecays:
    """``n`` Z -> mu mu decays (module docstring for the distributions)."""
    lo, hi = (np.arctan((m - Z_MASS) / (Z_WIDTH / 2)) for m in (60.0, 120.0))
    mass = Z_MASS + Z_WIDTH / 2 * np.tan(rng.uniform(lo, hi, n))
    hard = rng.random(n) < HARD_FRACTION
    pt = np.where(hard, rng.exponential(HARD_SCALE, n), rng.gamma(1.5, 6.0, n))
    y = rng.normal(0.0, 1.6, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.hypot(mass, pt)
    z = np.column_stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)])
    # 1 + cos^2: invert the CDF (c^3 + 3c + 4) / 8 = u with Cardano's formula
    q = 4.0 - 8.0 * rng.random(n)
    root = np.sqrt(q**2 / 4 + 1.0)
    cos = np.cbrt(-q / 2 + root) + np.cbrt(-q / 2 - root)
    sin = np.sqrt(np.clip(1 - cos**2, 0.0, 1.0))
    phi_star = rng.uniform(-np.pi, np.pi, n)
    p_star = np.sqrt(mass**2 / 4 - MU_MASS**2)
    direction = np.column_stack([sin * np.cos(phi_star), sin * np.sin(phi_star), cos])
    e_star = mass / 2
    beta = z[:, 1:] / z[:, :1]
    mu_minus = _boost(np.column_stack([e_star, p_star[:, None] * direction]), beta)
    mu_plus = _boost(np.column_stack([e_star, -p_star[:, None] * direction]), beta)
    return ZDecays(mass=mass, z=z, mu_minus=mu_minus, mu_plus=mu_plus)


def in_range(theta: np.ndarray, pt_min: float, pt_max: float, eta_max: float) -> np.ndarray:
    """Mask of the muons inside the generator-level range pt_min <= pT <= pt_max, |eta| <= max."""
    pt, eta = theta[:, 0], theta[:, 1]
    return (pt >= pt_min) & (pt <= pt_max) & (np.abs(eta) <= eta_max)


def muons(
    n_events: int, rng: np.random.Generator, *, pt_min: float, pt_max: float, eta_max: float
) -> np.ndarray:
    """theta of the muons of ``n_events`` Z decays that fall inside the range, shuffled."""
    theta = z_decays(n_events, rng).theta()
    theta = theta[in_range(theta, pt_min, pt_max, eta_max)]
    return theta[rng.permutation(len(theta))]


def curvature_resolution(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Relative core resolution of q/pT (and so of pT) of the toy detector."""
    return np.hypot(CURV_MS, CURV_PT * pt) * (1.0 + CURV_ETA * eta**2)


def efficiency(theta: np.ndarray) -> np.ndarray:
    """Probability that the toy detector reconstructs each muon."""
    pt, aeta = theta[:, 0], np.abs(theta[:, 1])
    plateau = np.where(aeta < 0.2, 0.85, np.where((aeta > 1.0) & (aeta < 1.3), 0.90, PLATEAU))
    return plateau / (1.0 + np.exp(-(pt - TURN_ON) / TURN_ON_WIDTH))


def _wrap(phi: np.ndarray) -> np.ndarray:
    return (phi + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class Detector:
    """The toy detector: p(x | theta) with tails, a charge-dependent bias and an efficiency.

    Parameters
    ----------
    tail_fraction : float
        Fraction of muons measured with every smearing widened by ``tail_scale``.
    tail_scale : float
        Width of the tail component in units of the core resolution.
    charge_bias : float
        Curvature bias in 1/GeV (times 1 + 0.5 sin phi): pT of mu+ moves down, of mu- up.
    """

    tail_fraction: float
    tail_scale: float
    charge_bias: float

    def response(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The response r (columns :data:`RESPONSE`) of every muon, as if reconstructed."""
        pt, eta, phi, q = (theta[:, i] for i in range(4))
        n = len(pt)
        p = pt * np.cosh(eta)
        s = np.where(rng.random(n) < self.tail_fraction, self.tail_scale, 1.0)
        g = rng.standard_normal((n, 9))
        k = q / pt
        bias = self.charge_bias * (1.0 + 0.5 * np.sin(phi))
        dk = bias + s * curvature_resolution(pt, eta) * np.abs(k) * g[:, 0]
        dphi = s * np.hypot(PHI_FLOOR, PHI_MS / pt) * g[:, 1]
        d0 = (
            s
            * np.hypot(D0_FLOOR, D0_MS / pt)
            * (RHO_D0_PHI * g[:, 1] + np.sqrt(1 - RHO_D0_PHI**2) * g[:, 2])
        )
        deta = s * np.hypot(ETA_FLOOR, ETA_MS / p) * g[:, 3]
        dz = (
            s
            * np.hypot(DZ_FLOOR, DZ_MS / pt)
            * np.sqrt(np.cosh(eta))
            * (RHO_DZ_ETA * g[:, 3] + np.sqrt(1 - RHO_DZ_ETA**2) * g[:, 4])
        )
        kicks = s[:, None] * (KICK / p)[:, None] * g[:, 5:7]  # after layers 1 and 2
        ms = np.column_stack(
            [
                np.zeros(n),
                kicks[:, 0] * (LAYERS_UM[1] - LAYERS_UM[0]),
                kicks[:, 0] * (LAYERS_UM[2] - LAYERS_UM[0])
                + kicks[:, 1] * (LAYERS_UM[2] - LAYERS_UM[1]),
            ]
        )
        noise = HIT_SIGMA * np.column_stack([g[:, 7], g[:, 8], rng.standard_normal(n)])
        hits = d0[:, None] + LAYERS_UM * dphi[:, None] + SAGITTA * dk[:, None] + ms + noise
        return np.column_stack([dk / np.abs(k), 1e3 * deta, 1e3 * dphi, d0, dz, hits])

    def simulate(
        self, theta: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(x, reconstructed): x of every muon (columns :data:`X_FEATURES`) and which are seen."""
        r = self.response(theta, rng)
        seen = rng.random(len(theta)) < efficiency(theta)
        return from_residuals(theta, r), seen


def from_residuals(theta: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x from theta and the response r (the inverse of :func:`residuals`)."""
    pt, eta, phi, q = (theta[:, i] for i in range(4))
    k = q / pt
    k_reco = k + r[:, 0] * np.abs(k)
    pt_reco = 1.0 / np.maximum(np.abs(k_reco), 1e-6)
    hits = r[:, 5:8] + SAGITTA * k[:, None]
    return np.column_stack(
        [pt_reco, eta + r[:, 1] / 1e3, _wrap(phi + r[:, 2] / 1e3), r[:, 3], r[:, 4], hits]
    )


def residuals(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The response r of reconstructed muons (assumes the charge was measured right)."""
    pt, eta, phi, q = (theta[:, i] for i in range(4))
    k = q / pt
    k_reco = q / x[:, 0]
    hits = x[:, 5:8] - SAGITTA * k[:, None]
    return np.column_stack(
        [
            (k_reco - k) / np.abs(k),
            1e3 * (x[:, 1] - eta),
            1e3 * _wrap(x[:, 2] - phi),
            x[:, 3],
            x[:, 4],
            hits,
        ]
    )
