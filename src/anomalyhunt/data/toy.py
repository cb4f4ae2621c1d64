"""An embedded, seeded LHCO-like dijet generator, so the whole search runs without a download.

The model (energies in TeV inside this module, GeV in the returned LHCO-layout table):

Background (QCD dijets, ``label`` 0)
    * mjj is drawn from the standard 4-parameter dijet function
      f(x) = (1 - x)^p1 / x^(p2 + p3 ln x), x = mjj / 13 TeV, with :data:`DIJET_PARAMS`
      (p1, p2, p3) = (13.9, 9.0, 3.2), chosen like the LHCO R&D QCD sample: the spectrum falls by
      2.8 orders of magnitude from 2.8 to 6 TeV, ~12% of the events lie in 3.3-3.7 TeV and ~60%
      above 2.7 TeV (the rest is the trigger turn-on region). It is multiplied by the turn-on of a leading-jet
      pT > 1.2 TeV trigger, a Gaussian CDF in mjj (50% at 2.25 TeV, width 0.07 TeV), which is
      > 99.97% efficient from 2.5 TeV on, where the default scan's lowest sideband starts. Above
      2.5 TeV the spectrum is therefore *exactly* the dijet function, which is what the bump hunt
      fits to its sidebands.
    * |Delta y| between the jets follows the t-channel-like QCD law, flat in chi = exp(|Delta y|),
      up to the largest |Delta y| at which a massless jet pair of this mjj still has pT > 1.25 TeV
      (and at most 2.6); the dijet boost keeps both jets within |y| < 2.5; phi is uniform and the
      jets are back to back. The jets' pT then follows exactly from mjj, masses and Delta y, so the
      mjj recomputed from (px, py, pz, m) equals the drawn one to float64 rounding.
    * Jet mass over pT, r0 = 0.52 exp(-L) with L Rayleigh-distributed (sigma 1.3): a Sudakov-like
      peak near m/pT ~ 0.1 (median 0.1), a long tail to low masses and a tail up to ~0.5.
      The mass is m = r0 pT_ref (pT / pT_ref)^c with pT_ref = 1.4 TeV and c = ``mjj_correlation``:
      c = 0 makes masses independent of pT (and so of mjj), c = 1 is the QCD-like m ~ pT,
      larger c sculpts more.
    * tau21 ~ Beta with mean 0.58 - 0.10 ln(r0 / 0.07) - 0.05 c ln(pT / pT_ref) (concentration 8,
      sd ~ 0.16; heavier QCD jets are more two-prong-like, as in LHCO), tau32 ~ Beta(mean 0.72, concentration 20), tau1 = 2 (m/pT) x lognormal(0.25),
      so tau1 > tau2 > tau3 > 0.

Signal (W' -> X Y, X, Y -> qq, ``label`` 1)
    * mjj = M (1 + 0.040 N(0,1)), and for a fifth of the events an extra low-side loss
      (1 - Exp(mean 0.07)) from final-state radiation out of the jets; the same trigger turn-on.
      77-78% of the signal lands in 3.3-3.7 TeV, as for the LHCO R&D W' (772 of 1000).
    * |Delta y| half-normal (sigma 0.9, s-channel: more central than QCD) with the same cap.
    * Jet masses mx, my with 8% Gaussian smearing; in 10% of the events the X jet misses part of
      its decay (mass x U(0.15, 0.8), QCD-like tau21 mean 0.5); in 15% the Y jet catches extra radiation
      (mass x (1 + Exp(mean 0.6))). tau21 ~ Beta(mean 0.22,
      concentration 6) for X and Beta(mean 0.38, concentration 8) for Y: two-prong but
      overlapping QCD, tuned (as are the QCD shapes) to the LHCO R&D features in 3.3-3.7 TeV;
      tau32 ~ Beta(mean 0.70, concentration 20).

Which jet is "j1" is a coin flip. Background rows come first, then signal (the regions stage
shuffles). Everything is vectorized numpy on one ``numpy.random.Generator`` seeded by ``seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError

SQRT_S = 13.0  # TeV
#: (p1, p2, p3) of the background dijet function; p0 is the normalisation.
DIJET_PARAMS: tuple[float, float, float] = (13.9, 9.0, 3.2)
#: Trigger turn-on in mjj: 50% point and Gaussian width, TeV.
TRIGGER_MJJ50, TRIGGER_WIDTH = 2.25, 0.07
#: Range in which background mjj is generated, TeV (the turn-on makes the lower edge irrelevant).
MJJ_RANGE: tuple[float, float] = (1.85, 9.0)
PT_TRIGGER = 1.2  # TeV, leading-jet pT threshold the turn-on models
PT_REF = 1.4  # TeV, pT at which the mjj_correlation scaling leaves the masses unchanged
MAX_ABS_DY, MAX_ABS_Y = 2.6, 2.5

_MASS_R, _MASS_SIGMA = 0.52, 1.3
# Tuned so that 77-78% of the signal falls in 3.3-3.7 TeV, as for the real LHCO R&D W' (772 of
# 1000 injected events in the CATHODE signal region): the rest lands in the sidebands, where it
# biases a sideband fit upwards, so this fraction matters for the bump hunt's sensitivity.
_SIG_RESOLUTION, _SIG_TAIL_FRACTION, _SIG_TAIL_MEAN = 0.040, 0.20, 0.07
_SIG_MASS_SMEAR = 0.08
_SIG_X_LOST = 0.1  # fraction of events whose X jet does not contain both quarks


def dijet_function(mjj: np.ndarray, p0: float, p1: float, p2: float, p3: float) -> np.ndarray:
    """The standard dijet shape p0 (1-x)^p1 / x^(p2 + p3 ln x), x = mjj / 13 TeV (mjj in TeV)."""
    x = np.asarray(mjj, dtype=np.float64) / SQRT_S
    return p0 * (1.0 - x) ** p1 / x ** (p2 + p3 * np.log(x))


def trigger_efficiency(mjj: np.ndarray) -> np.ndarray:
    """Probability that an event of this mjj (TeV) passes the leading-jet pT > 1.2 TeV trigger."""
    return special.ndtr((np.asarray(mjj, dtype=np.float64) - TRIGGER_MJJ50) / TRIGGER_WIDTH)


def _background_mjj(n: int, rng: np.random.Generator) -> np.ndarray:
    # Inverse CDF on a fine grid: the density is smooth on the 36 MeV grid scale, so the
    # piecewise-uniform interpolation is exact to ~1e-4 relative, far below any statistical error.
    grid = np.linspace(*MJJ_RANGE, 200_001)
    pdf = dijet_function(grid, 1.0, *DIJET_PARAMS) * trigger_efficiency(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def _max_abs_dy(mjj: np.ndarray) -> np.ndarray:
    """Largest |Delta y| for which a massless pair of this mjj has pT > 1.25 TeV (a margin on 1.2)."""
    ratio = np.maximum(mjj / (2.0 * (PT_TRIGGER + 0.05)), 1.0)
    return np.clip(2.0 * np.arccosh(ratio), 0.25, MAX_ABS_DY)


def dijet_kinematics(
    mjj: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    dy: np.ndarray,
    yb: np.ndarray,
    phi: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """(px1, py1, pz1, px2, py2, pz2) of back-to-back jets with exactly this mjj, masses and
    rapidities yb +- dy/2.

    The common pT solves m^2 = m1^2 + m2^2 + 2 (mT1 mT2 cosh dy + pT^2), a quadratic in pT^2
    whose positive root is taken in the cancellation-free form.
    """
    mjj, m1, m2, dy, yb, phi = (np.asarray(v, dtype=np.float64) for v in (mjj, m1, m2, dy, yb, phi))
    if np.any(mjj <= m1 + m2):
        raise AnomalyHuntError("toy generator: a dijet mass below the sum of the jet masses")
    ch = np.cosh(dy)
    a_half = 0.5 * (mjj * mjj - m1 * m1 - m2 * m2)
    a = ch * ch - 1.0
    b = ch * ch * (m1 * m1 + m2 * m2) + 2.0 * a_half
    c = ch * ch * m1 * m1 * m2 * m2 - a_half * a_half
    pt2 = -2.0 * c / (b + np.sqrt(b * b - 4.0 * a * c))
    pt = np.sqrt(pt2)
    y1, y2 = yb + 0.5 * dy, yb - 0.5 * dy
    mt1, mt2 = np.sqrt(pt2 + m1 * m1), np.sqrt(pt2 + m2 * m2)
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    return px, py, mt1 * np.sinh(y1), -px, -py, mt2 * np.sinh(y2)


def _beta(
    rng: np.random.Generator, mean: np.ndarray | float, concentration: float, n: int
) -> np.ndarray:
    mean = np.clip(np.broadcast_to(np.asarray(mean, dtype=np.float64), (n,)), 0.05, 0.95)
    return np.clip(rng.beta(mean * concentration, (1.0 - mean) * concentration), 0.005, 0.995)


def _boost(rng: np.random.Generator, dy: np.ndarray) -> np.ndarray:
    """Rapidity of the dijet system, squeezed so that both jets stay within |y| < 2.5."""
    room = np.maximum(MAX_ABS_Y - 0.5 * np.abs(dy), 1e-3)
    return room * np.tanh(0.5 * rng.standard_normal(len(dy)) / room)


def _jets_table(
    rng: np.random.Generator,
    mjj: np.ndarray,
    mass: tuple[np.ndarray, np.ndarray],
    t21: tuple[np.ndarray, np.ndarray],
    t32: tuple[np.ndarray, np.ndarray],
    dy: np.ndarray,
    label: int,
) -> pd.DataFrame:
    n = len(mjj)
    dy = np.where(rng.random(n) < 0.5, dy, -dy)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    px1, py1, pz1, px2, py2, pz2 = dijet_kinematics(mjj, mass[0], mass[1], dy, _boost(rng, dy), phi)
    pt = np.hypot(px1, py1)
    cols: dict[str, np.ndarray] = {}
    for j, (px, py, pz) in enumerate(((px1, py1, pz1), (px2, py2, pz2))):
        tau1 = np.clip(2.0 * mass[j] / pt * np.exp(0.25 * rng.standard_normal(n)), 1e-3, 0.95)
        tau2 = tau1 * t21[j]
        tag = f"j{j + 1}"
        cols |= {
            f"px{tag}": px,
            f"py{tag}": py,
            f"pz{tag}": pz,
            f"m{tag}": mass[j],
            f"tau1{tag}": tau1,
            f"tau2{tag}": tau2,
            f"tau3{tag}": tau2 * t32[j],
        }
    # which jet is called j1 carries no information
    swap = rng.random(n) < 0.5
    for q in ("px", "py", "pz", "m", "tau1", "tau2", "tau3"):
        a, b = cols[f"{q}j1"], cols[f"{q}j2"]
        cols[f"{q}j1"], cols[f"{q}j2"] = np.where(swap, b, a), np.where(swap, a, b)
    df = pd.DataFrame(
        {
            c: cols[c] * (1000.0 if c[:2] in ("px", "py", "pz") or c[0] == "m" else 1.0)
            for c in LHCO_COLUMNS
        }
    )
    df["label"] = np.full(n, label, dtype=np.int8)
    return df


def _background(n: int, rng: np.random.Generator, corr: float) -> pd.DataFrame:
    mjj = _background_mjj(n, rng)
    # QCD t-channel: flat in chi = exp(|dy|) up to the kinematic cap
    dy = np.log1p(rng.random(n) * np.expm1(_max_abs_dy(mjj)))
    pt0 = mjj / (2.0 * np.cosh(0.5 * dy))  # massless estimate, enough to scale the masses
    masses, t21s, t32s = [], [], []
    for _ in range(2):
        r0 = _MASS_R * np.exp(-np.minimum(rng.rayleigh(_MASS_SIGMA, n), 5.0))
        m = r0 * PT_REF * (pt0 / PT_REF) ** corr
        masses.append(np.minimum(m, 0.6 * pt0))
        mean21 = 0.58 - 0.10 * np.log(r0 / 0.07) - 0.05 * corr * np.log(pt0 / PT_REF)
        t21s.append(_beta(rng, mean21, 8.0, n))
        t32s.append(_beta(rng, 0.72, 20.0, n))
    return _jets_table(rng, mjj, tuple(masses), tuple(t21s), tuple(t32s), dy, 0)


def _signal_mjj(n: int, rng: np.random.Generator, mass: float) -> np.ndarray:
    out: list[np.ndarray] = []
    have = 0
    while have < n:  # accept-reject the trigger turn-on, in chunks (vectorized)
        k = max(2 * (n - have), 1000)
        m = mass * (1.0 + _SIG_RESOLUTION * rng.standard_normal(k))
        tail = rng.random(k) < _SIG_TAIL_FRACTION
        m = np.where(tail, m * np.maximum(1.0 - rng.exponential(_SIG_TAIL_MEAN, k), 0.5), m)
        m = m[rng.random(k) < trigger_efficiency(m)]
        out.append(m)
        have += len(m)
    return np.concatenate(out)[:n]


def _signal(n: int, rng: np.random.Generator, mass: float, mx: float, my: float) -> pd.DataFrame:
    mjj = _signal_mjj(n, rng, mass)
    cap = _max_abs_dy(mjj)
    u = rng.random(n)
    dy = 0.9 * special.ndtri(0.5 + u * (special.ndtr(cap / 0.9) - 0.5))
    m_x, m_y = (
        np.maximum(mj * (1.0 + _SIG_MASS_SMEAR * rng.standard_normal(n)), 0.005) for mj in (mx, my)
    )
    lost = rng.random(n) < _SIG_X_LOST
    m_x = np.where(lost, m_x * rng.uniform(0.15, 0.8, n), m_x)
    # extra radiation caught in the Y jet (the high-mass tail of the LHCO signal's lighter jet)
    m_y = np.where(rng.random(n) < 0.15, m_y * (1.0 + rng.exponential(0.6, n)), m_y)
    masses = (m_x, m_y)
    t21s = (_beta(rng, np.where(lost, 0.5, 0.22), 6.0, n), _beta(rng, 0.38, 8.0, n))
    t32s = (_beta(rng, 0.70, 20.0, n), _beta(rng, 0.70, 20.0, n))
    return _jets_table(rng, mjj, masses, t21s, t32s, dy, 1)


def generate(
    n_background: int,
    n_signal: int,
    seed: int,
    mjj_correlation: float = 1.0,
    mjj_signal: float = 3.5,
    mx: float = 0.5,
    my: float = 0.1,
) -> pd.DataFrame:
    """LHCO-layout events (GeV) plus ``label``: QCD rows first, then W' -> X Y signal rows.

    Same arguments, same table, bit for bit. See the module docstring for the model.
    """
    if n_background < 0 or n_signal < 0:
        raise AnomalyHuntError(f"toy generator: negative event counts ({n_background}, {n_signal})")
    if mjj_correlation < 0:
        raise AnomalyHuntError(
            f"toy generator: mjj_correlation must be >= 0, got {mjj_correlation}"
        )
    if n_signal and (min(mx, my) <= 0 or mx + my >= 0.25 * mjj_signal):
        raise AnomalyHuntError(
            f"toy generator: signal masses mx={mx}, my={my} TeV must be positive with mx + my < 0.25 x "
            f"the W' mass {mjj_signal} TeV; change data.toy.signal in the config"
        )
    rng = np.random.default_rng(seed)
    parts = [_background(n_background, rng, float(mjj_correlation))]
    if n_signal:
        parts.append(_signal(n_signal, rng, float(mjj_signal), float(mx), float(my)))
    return pd.concat(parts, ignore_index=True)
