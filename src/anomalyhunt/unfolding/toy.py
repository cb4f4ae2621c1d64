"""Parton-level pp -> Z W -> (l+ l-)(j j) events and their detector events, in numpy, in seconds.

The process of arXiv:1912.00477 and arXiv:2006.06685 (there from MadGraph and Delphes), written
out by hand so that every fact a test checks is known exactly.

Parton level (:func:`partons`):

* The Z and W masses are drawn from relativistic Breit-Wigner shapes in m^2, with
  m_Z = 91.19 GeV, Gamma_Z = 2.50 GeV and m_W = 80.4 GeV, Gamma_W = 2.1 GeV, truncated at
  ``BW_CUTOFF`` widths from the pole.
* 2 -> 2 kinematics with a recoil spectrum: the Z and the W are back to back in the transverse
  plane with |pT| from a Gamma(2) distribution of mean ``zpt_mean`` (a falling spectrum that
  vanishes at pT = 0), at a uniform azimuth; the Z rapidity is N(0, 1), the W's differs from it
  by N(0, 1). With ``isr_jet`` an initial-state parton of pT 20 GeV + Exp(20 GeV) and
  eta ~ N(0, 1.5) recoils against the Z W system (each boson takes half of the recoil).
* Z -> l+ l- and W -> q q' are isotropic two-body decays into massless partons in the parent's
  rest frame; the two quarks are ordered by pT (j1 the harder).

Detector level (:func:`detect`), a parametric detector in the spirit of Delphes:

* energies smeared by a Gaussian of relative width ``lepton_resolution`` (leptons) or
  sqrt(jet_stochastic^2 / E + jet_constant^2) (jets, E in GeV), jets scaled by
  ``jet_energy_scale``; eta and phi smeared by ``*_angle_resolution``;
* each object found with probability ``lepton_efficiency`` / ``jet_efficiency``, and kept if
  pT > ``lepton_pt_min`` / ``jet_pt_min`` and |eta| < ``eta_max``; an event is kept when every
  object is (its parton event is then the truth an unfolding must return: unfolding to the
  fiducial region, as in the papers). Detector jets are ordered by their measured pT.

Objects are stored as arrays (n, k, 3) of (pT [GeV], eta, phi).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

M_Z, GAMMA_Z = 91.19, 2.50
M_W, GAMMA_W = 80.4, 2.1
#: Breit-Wigner truncation, in widths from the pole (MadGraph's default bwcutoff).
BW_CUTOFF = 15.0
Z_RAPIDITY_SD = 1.0
DELTA_RAPIDITY_SD = 1.0
ISR_PT_MIN, ISR_PT_MEAN, ISR_ETA_SD = 20.0, 20.0, 1.5
#: Names of the hard objects, the unfolding's output (and the first four detector objects).
OBJECTS = ("l+", "l-", "j1", "j2")


@dataclass
class Events:
    """Paired parton and detector events (only those the detector kept).

    Attributes
    ----------
    parton : ndarray, shape (n, 4, 3)
        (pT, eta, phi) of l+, l-, j1, j2 at parton level (j1 the harder quark).
    detector : ndarray, shape (n, 4 or 5, 3)
        The same measured, jets ordered by measured pT (five objects with ``isr_jet``).
    efficiency : float
        Fraction of generated events the detector kept.
    """

    parton: np.ndarray
    detector: np.ndarray
    efficiency: float

    def __len__(self) -> int:
        return len(self.parton)

    def subset(self, index: Any) -> Events:
        """The events selected by a mask or index array."""
        return Events(self.parton[index], self.detector[index], self.efficiency)


def breit_wigner(
    rng: np.random.Generator, n: int, mass: float, width: float, cutoff: float = BW_CUTOFF
) -> np.ndarray:
    """``n`` masses from a relativistic Breit-Wigner in m^2, within ``cutoff`` widths of the pole.

    Inverse-CDF sampling of 1 / ((m^2 - M^2)^2 + M^2 Gamma^2): m^2 = M^2 + M Gamma tan(u).
    """
    mg = mass * width
    lo = np.arctan(((mass - cutoff * width) ** 2 - mass**2) / mg)
    hi = np.arctan(((mass + cutoff * width) ** 2 - mass**2) / mg)
    return np.sqrt(mass**2 + mg * np.tan(rng.uniform(lo, hi, n)))


def four_vectors(pt: np.ndarray, y: np.ndarray, phi: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(E, px, py, pz) of particles of mass ``m`` from pT, rapidity and azimuth, shape (n, 4)."""
    mt = np.sqrt(m**2 + pt**2)
    return np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=-1)


def decay(rng: np.random.Generator, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic decay of ``parent`` four-vectors (n, 4) into two massless daughters (lab frame)."""
    n = len(parent)
    m = np.sqrt(np.clip(parent[:, 0] ** 2 - (parent[:, 1:] ** 2).sum(1), 0.0, None))
    cos = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin = np.sqrt(1.0 - cos**2)
    k = (0.5 * m)[:, None] * np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
    beta = parent[:, 1:] / parent[:, :1]
    gamma = parent[:, 0] / m
    b2 = (beta**2).sum(1)
    g2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    out = []
    for p in (k, -k):
        e = 0.5 * m
        bp = (beta * p).sum(1)
        mom = p + ((g2 * bp + gamma * e)[:, None]) * beta
        out.append(np.concatenate([(gamma * (e + bp))[:, None], mom], axis=1))
    return out[0], out[1]


def to_pt_eta_phi(p: np.ndarray) -> np.ndarray:
    """(pT, eta, phi) of four-vectors (..., 4) (massless objects: eta is their rapidity)."""
    pt = np.hypot(p[..., 1], p[..., 2])
    eta = np.arcsinh(p[..., 3] / np.maximum(pt, 1e-9))
    return np.stack([pt, eta, np.arctan2(p[..., 2], p[..., 1])], axis=-1)


def partons(
    rng: np.random.Generator, n: int, *, zpt_mean: float, isr_jet: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` parton events: objects (n, 4, 3), Z and W four-vectors (n, 2, 4), ISR (n, 0|1, 3).

    Parameters
    ----------
    rng : numpy Generator
        Source of every random number.
    n : int
        Events.
    zpt_mean : float
        Mean of the Gamma(2) transverse-momentum spectrum of the Z (and W), GeV.
    isr_jet : bool
        Add an initial-state parton that the Z W system recoils against.
    """
    m_z = breit_wigner(rng, n, M_Z, GAMMA_Z)
    m_w = breit_wigner(rng, n, M_W, GAMMA_W)
    q = rng.gamma(2.0, 0.5 * zpt_mean, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    qx, qy = q * np.cos(phi), q * np.sin(phi)
    isr = np.zeros((n, 0, 3))
    if isr_jet:
        k = ISR_PT_MIN + rng.exponential(ISR_PT_MEAN, n)
        k_phi = rng.uniform(-np.pi, np.pi, n)
        k_eta = rng.normal(0.0, ISR_ETA_SD, n)
        isr = np.stack([k, k_eta, k_phi], axis=1)[:, None, :]
        kx, ky = k * np.cos(k_phi), k * np.sin(k_phi)
    else:
        kx = ky = np.zeros(n)
    zx, zy = qx - 0.5 * kx, qy - 0.5 * ky
    wx, wy = -qx - 0.5 * kx, -qy - 0.5 * ky
    y_z = rng.normal(0.0, Z_RAPIDITY_SD, n)
    y_w = y_z + rng.normal(0.0, DELTA_RAPIDITY_SD, n)
    z = four_vectors(np.hypot(zx, zy), y_z, np.arctan2(zy, zx), m_z)
    w = four_vectors(np.hypot(wx, wy), y_w, np.arctan2(wy, wx), m_w)
    lp, lm = decay(rng, z)
    q1, q2 = decay(rng, w)
    objects = to_pt_eta_phi(np.stack([lp, lm, q1, q2], axis=1))
    swap = objects[:, 3, 0] > objects[:, 2, 0]
    objects[swap, 2:4] = objects[swap, 3:1:-1]
    return objects, np.stack([z, w], axis=1), isr


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Azimuths folded into [-pi, pi)."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def detect(
    rng: np.random.Generator, objects: np.ndarray, n_leptons: int, det: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Measured objects (n, k, 3), jets ordered by measured pT, and the mask of kept events.

    Parameters
    ----------
    rng : numpy Generator
        Source of every random number.
    objects : ndarray, shape (n, k, 3)
        Parton-level (pT, eta, phi), the first ``n_leptons`` leptons, the rest jets.
    n_leptons : int
        How many of the objects are leptons.
    det : mapping
        The ``unfolding.detector`` config block (module docstring).
    """
    n, k, _ = objects.shape
    is_jet = np.arange(k) >= n_leptons
    pt, eta, phi = objects[..., 0], objects[..., 1], objects[..., 2]
    energy = pt * np.cosh(eta)
    jet_sigma = np.sqrt(
        det["jet_stochastic"] ** 2 / np.maximum(energy, 1e-3) + det["jet_constant"] ** 2
    )
    sigma = np.where(is_jet, jet_sigma, det["lepton_resolution"])
    scale = np.where(is_jet, det["jet_energy_scale"], 1.0)
    e_meas = energy * scale * np.maximum(1.0 + sigma * rng.standard_normal((n, k)), 0.01)
    angle = np.where(is_jet, det["jet_angle_resolution"], det["lepton_angle_resolution"])
    eta_meas = eta + angle * rng.standard_normal((n, k))
    phi_meas = wrap_phi(phi + angle * rng.standard_normal((n, k)))
    pt_meas = e_meas / np.cosh(eta_meas)
    eff = np.where(is_jet, det["jet_efficiency"], det["lepton_efficiency"])
    pt_min = np.where(is_jet, det["jet_pt_min"], det["lepton_pt_min"])
    found = (rng.random((n, k)) < eff) & (pt_meas > pt_min) & (np.abs(eta_meas) < det["eta_max"])
    measured = np.stack([pt_meas, eta_meas, phi_meas], axis=-1)
    order = np.argsort(-np.where(is_jet, pt_meas, np.inf), axis=1, kind="stable")
    measured = np.take_along_axis(measured, order[..., None], axis=1)
    return measured, found.all(axis=1)


def zw_events(
    rng: np.random.Generator,
    n: int,
    *,
    zpt_mean: float,
    isr_jet: bool,
    detector: Mapping[str, Any],
) -> Events:
    """``n`` detector-level Z W events with their parton events (generates until ``n`` kept).

    Parameters
    ----------
    rng : numpy Generator
        Source of every random number.
    n : int
        Kept events wanted.
    zpt_mean : float
        Mean Z pT of the Gamma(2) spectrum, GeV.
    isr_jet : bool
        Add the initial-state jet (it is measured too, but is not part of the truth).
    detector : mapping
        The ``unfolding.detector`` block.
    """
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    kept = tried = 0
    while kept < n:
        batch = max(1000, int(1.3 * (n - kept) / max(kept / tried, 0.05) if tried else 1.5 * n))
        objects, _, isr = partons(rng, batch, zpt_mean=zpt_mean, isr_jet=isr_jet)
        measured, keep = detect(rng, np.concatenate([objects, isr], axis=1), 2, detector)
        parts.append((objects[keep], measured[keep]))
        kept += int(keep.sum())
        tried += batch
    parton = np.concatenate([p for p, _ in parts])[:n]
    measured = np.concatenate([d for _, d in parts])[:n]
    return Events(parton, measured, kept / tried)


def gaussian_pairs(
    rng: np.random.Generator, n: int, *, mean: float, sd: float, smearing: float
) -> tuple[np.ndarray, np.ndarray]:
    """OmniFold's Gaussian example (arXiv:1911.09107): truth N(mean, sd), detector + N(0, smearing).

    Returns (truth, detector), each shape (n, 1).
    """
    truth = rng.normal(mean, sd, n)
    return truth[:, None], (truth + rng.normal(0.0, smearing, n))[:, None]


def pair_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Invariant mass of two massless objects given as (..., 3) arrays of (pT, eta, phi)."""
    m2 = (
        2 * a[..., 0] * b[..., 0] * (np.cosh(a[..., 1] - b[..., 1]) - np.cos(a[..., 2] - b[..., 2]))
    )
    return np.sqrt(np.clip(m2, 0.0, None))


def pair_pt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Transverse momentum of the sum of two objects (pT, eta, phi)."""
    px = a[..., 0] * np.cos(a[..., 2]) + b[..., 0] * np.cos(b[..., 2])
    py = a[..., 0] * np.sin(a[..., 2]) + b[..., 0] * np.sin(b[..., 2])
    return np.hypot(px, py)


#: The observables every unfolding is judged on, in the order of :func:`observables`.
OBSERVABLES = (
    *(f"{v}_{o}" for o in OBJECTS for v in ("pt", "eta", "phi")),
    "m_ll",
    "m_jj",
    "pt_ll",
)


def observables(objects: np.ndarray) -> np.ndarray:
    """The :data:`OBSERVABLES` of events (n, >=4, 3): each object's pT, eta, phi, m_ll, m_jj, pT_ll.

    Works on stacked samples too (``objects`` of shape (..., 4, 3)); returns (..., 15).
    """
    hard = objects[..., :4, :]
    per_object = hard.reshape(*hard.shape[:-2], 12)
    extra = [
        pair_mass(hard[..., 0, :], hard[..., 1, :]),
        pair_mass(hard[..., 2, :], hard[..., 3, :]),
        pair_pt(hard[..., 0, :], hard[..., 1, :]),
    ]
    return np.concatenate([per_object, np.stack(extra, axis=-1)], axis=-1)


#: OmniFold's Gaussian example (arXiv:1911.09107): (mean, sd) of the simulation's and the
#: data's truth, and the detector's Gaussian smearing.
GAUSS_SIM = (0.0, 1.0)
GAUSS_DATA = (0.2, 0.8)
GAUSS_SMEARING = 0.5
