"""The black-box simulator: e+e- -> mu+ mu- at Born level, observable cos(A) of the mu- direction.

Near the Z pole the angular distribution of the mu- with respect to the e- beam is

    dsigma / dcos(A)  ~  A0 (1 + cos^2 A) + A1 cos A,

the photon, the photon-Z interference and the Z^2 terms of the textbook Born cross-section
(Halzen & Martin, eq. 13.61), with the Z propagator relative to the photon's

    chi(s) = sqrt(2) G_f G_F M_Z^2 / (4 pi alpha) * s / (s - M_Z^2 + i M_Z Gamma_Z),
    s = (2 E_beam)^2,
    A0 = 1 + 2 g_V^2 Re chi + (g_V^2 + g_A^2)^2 |chi|^2,
    A1 = 4 g_A^2 Re chi + 8 g_V^2 g_A^2 |chi|^2,

where ``G_f`` is the Fermi constant in units of its measured value ``G_F`` (the simulator's second
parameter; the paper's "G_f"), g_A = -1/2 and g_V = -1/2 + 2 sin^2 theta_W. Normalised,

    p(cos A | E_beam, G_f) = 3/8 (1 + cos^2 A) + A_FB cos A,   A_FB = 3 A1 / (8 A0),

so the whole shape depends on the one combination A_FB(E_beam, G_f), the forward-backward
asymmetry: below the pole the interference term Re chi < 0 makes it negative, it changes sign at
sqrt(s) = M_Z, and every (E_beam, G_f) on a curve of equal A_FB gives the same events (the
likelihood's ridge). The paper's observed data come from its true point E_beam = 42 GeV,
G_f = 0.9 (arXiv:1707.07113, Fig. 3), where A_FB = -0.624.

The sampler uses the helicity decomposition of the same density,
``p = (1 + k)/2 * 3/8 (1 + c)^2 + (1 - k)/2 * 3/8 (1 - c)^2`` with ``k = 4/3 A_FB``: pick the
forward or backward helicity term, then invert its CDF ``(1 +- c)^3 / 8``. Two uniforms per event,
so a run reproduces from its generator. The optimiser only ever sees its samples (no gradient
flows through it: it is the paper's non-differentiable black box).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Z mass and width [GeV], sin^2 theta_W, the Fermi constant [GeV^-2], alpha at the Z.
M_Z, GAMMA_Z, SIN2_THETA_W, G_FERMI, ALPHA = 91.1876, 2.4952, 0.2312, 1.1663787e-5, 1.0 / 128.0
G_A = -0.5
G_V = -0.5 + 2.0 * SIN2_THETA_W
#: The paper's parameter box (its prior): E_beam in [40, 50] GeV, G_f in [0.5, 1.5].
BOX = ((40.0, 50.0), (0.5, 1.5))
#: The paper's true point (arXiv:1707.07113, Fig. 3): E_beam = 42 GeV, G_f = 0.9.
PAPER_TRUTH = (42.0, 0.9)
#: Largest |A_FB| a density 3/8 (1 + c^2) + A_FB c can have and stay non-negative.
MAX_AFB = 0.75


def forward_backward_asymmetry(beam_energy: Any, fermi_scale: Any) -> Any:
    """A_FB of e+e- -> mu+ mu- at Born level for beam energies [GeV] and G_f / G_F (module doc).

    Works on numpy arrays and floats alike (broadcasting); the result lies in [-3/4, 3/4].
    """
    e = np.asarray(beam_energy, dtype=np.float64)
    g = np.asarray(fermi_scale, dtype=np.float64)
    s = (2.0 * e) ** 2
    chi = (
        math.sqrt(2.0)
        * g
        * G_FERMI
        * M_Z**2
        / (4.0 * math.pi * ALPHA)
        * s
        / (s - M_Z**2 + 1j * M_Z * GAMMA_Z)
    )
    a0 = 1.0 + 2.0 * G_V**2 * chi.real + (G_V**2 + G_A**2) ** 2 * np.abs(chi) ** 2
    a1 = 4.0 * G_A**2 * chi.real + 8.0 * G_V**2 * G_A**2 * np.abs(chi) ** 2
    return np.clip(3.0 * a1 / (8.0 * a0), -MAX_AFB, MAX_AFB)


def density(cos_a: np.ndarray, afb: Any) -> np.ndarray:
    """The normalised density of cos(A) on [-1, 1] for an asymmetry ``afb``."""
    c = np.asarray(cos_a, dtype=np.float64)
    return 0.375 * (1.0 + c**2) + np.asarray(afb, dtype=np.float64) * c


def log_likelihood_of_afb(cos_a: np.ndarray, afb: np.ndarray) -> np.ndarray:
    """Exact log-likelihood of the events ``cos_a`` for each asymmetry in ``afb`` (1-D grid).

    The observed events enter only through it, so a likelihood over the (E_beam, G_f) plane is
    this function interpolated at ``forward_backward_asymmetry(E_beam, G_f)``.
    """
    c = np.asarray(cos_a, dtype=np.float64)[None, :]
    a = np.atleast_1d(np.asarray(afb, dtype=np.float64))
    out = np.empty(len(a))
    for s in range(0, len(a), 64):  # chunks keep the (grid x events) table small
        chunk = a[s : s + 64, None]
        out[s : s + 64] = np.log(np.maximum(density(c, chunk), 1e-300)).sum(axis=1)
    return out


def fit_afb(cos_a: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood A_FB of the events and its error from the curvature.

    The best any fit of this observable can do: the yardstick for the proposal's A_FB. The
    log-likelihood is concave in A_FB, so Newton's method from 0 converges in a few steps.
    """
    c = np.asarray(cos_a, dtype=np.float64)
    a = 0.0
    for _ in range(50):
        p = density(c, a)
        score, info = np.sum(c / p), np.sum((c / p) ** 2)
        step = score / info
        a = float(np.clip(a + step, -MAX_AFB + 1e-6, MAX_AFB - 1e-6))
        if abs(step) < 1e-10:
            break
    info = np.sum((c / density(c, a)) ** 2)  # minus the second derivative of the log-likelihood
    return a, float(1.0 / math.sqrt(info))


def simulate_numpy(
    beam_energy: np.ndarray, fermi_scale: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One cos(A) per parameter point (arrays of equal length), drawn with a numpy generator."""
    k = 4.0 / 3.0 * forward_backward_asymmetry(beam_energy, fermi_scale)
    u = rng.random((2, len(k)))
    c = 2.0 * np.cbrt(u[1]) - 1.0
    return np.where(u[0] < (1.0 + k) / 2.0, c, -c)


def simulate(theta: Any, generator: Any) -> Any:
    """The black box: one cos(A) per row of ``theta`` = (E_beam, G_f), a torch tensor (n, 2).

    Draws from ``generator`` (the training loop's), runs without gradients and returns a
    float32 tensor (n,) on ``theta``'s device.
    """
    import torch

    with torch.no_grad():
        t = theta.detach().double().cpu().numpy()
        k = torch.as_tensor(4.0 / 3.0 * forward_backward_asymmetry(t[:, 0], t[:, 1]))
        k = k.to(device=theta.device, dtype=torch.float32)
        u = torch.rand((2, len(k)), generator=generator, device=generator.device)
        u = u.to(theta.device)
        c = 2.0 * torch.pow(u[1], 1.0 / 3.0) - 1.0
        return torch.where(u[0] < (1.0 + k) / 2.0, c, -c)
