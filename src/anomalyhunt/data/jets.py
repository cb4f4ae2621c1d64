"""From per-event final-state particles to the two-jet LHCO layout (GeV), with FastJet.

Jets are anti-kT with R = 1.0 (as in the LHCO R&D sample); the two leading-pT jets of an event
become j1 (leading) and j2. The scikit-hep ``fastjet`` wheel does not ship FastJet contrib's
``Nsubjettiness``, so tau_N is computed here, following its definition with

* beta = 1 and the normalized measure: tau_N = sum_k pT_k min_a dR(k, a) / (sum_k pT_k R),
* exclusive-kT axes: the jet's constituents reclustered with kT (E scheme, R = FastJet's
  maximum, i.e. one jet in the end) and stopped at exactly N subjets,

where dR is the (rapidity, phi) distance. When a jet has no more than N constituents every
constituent is its own axis, so tau_N = 0. Exclusive-kT axes are not the tau-minimizing
ones, so tau_(N+1) > tau_N occurs in a small fraction of (mostly very narrow) jets. Only ratios such as tau21 enter the search, and they
do not depend on the normalization.

The classic per-event ``ClusterSequence`` API is used (deterministic, no awkward layout to keep
in step with the wheel's version); at ~1 ms per event it is far cheaper than the generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError

JET_R = 1.0
#: Leading-jet pT cut (GeV) of the LHCO R&D sample's trigger.
LEADING_PT_MIN = 1200.0
#: Jets softer than this (GeV) are not kept by the clustering; only the two leading ones matter.
_JET_PT_FLOOR = 20.0
N_TAUS = 3


def _fastjet():  # noqa: ANN202 -- a module; imported lazily, it is an optional dependency
    try:
        import fastjet
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise AnomalyHuntError(
            "jet clustering needs fastjet: pip install 'anomalyhunt[pythia]'"
        ) from exc
    return fastjet


def four_vectors_from_pt_eta_phi(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray | float = 0.0
) -> np.ndarray:
    """(n, 4) array of (px, py, pz, E), for particles given as (pT, eta, phi, m)."""
    pt, eta, phi = (np.asarray(v, dtype=np.float64) for v in (pt, eta, phi))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + np.asarray(mass, dtype=np.float64) ** 2)
    return np.stack([px, py, pz, e], axis=1)


def _rap_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rapidity and phi of (n, 4) four-vectors; E <= |pz| (massless along the beam) is clamped."""
    px, py, pz, e = p.T
    e = np.maximum(e, np.abs(pz) + 1e-12)
    return 0.5 * np.log((e + pz) / (e - pz)), np.arctan2(py, px)


def nsubjettiness(constituents: np.ndarray, n_max: int = N_TAUS, r0: float = JET_R) -> np.ndarray:
    """(tau_1, ..., tau_n_max) of one jet from its (n, 4) constituents (px, py, pz, E).

    Beta = 1, normalized by sum pT * r0, exclusive-kT axes (see the module docstring).
    """
    fj = _fastjet()
    c = np.asarray(constituents, dtype=np.float64).reshape(-1, 4)
    pt = np.hypot(c[:, 0], c[:, 1])
    norm = pt.sum() * r0
    taus = np.zeros(n_max)
    if len(c) == 0 or norm <= 0:
        return taus
    rap, phi = _rap_phi(c)
    kt_def = fj.JetDefinition(fj.kt_algorithm, fj.JetDefinition.max_allowable_R)
    cs = fj.ClusterSequence([fj.PseudoJet(*map(float, row)) for row in c], kt_def)
    for n in range(1, n_max + 1):
        if len(c) <= n:
            break  # every constituent is an axis: tau_n = 0
        axes = cs.exclusive_jets(n)
        a_rap = np.array([a.rap() for a in axes])
        a_phi = np.array([a.phi() for a in axes])
        dphi = np.abs(phi[:, None] - a_phi[None, :])
        dphi = np.minimum(dphi, 2.0 * np.pi - dphi)
        dr = np.sqrt((rap[:, None] - a_rap[None, :]) ** 2 + dphi**2)
        taus[n - 1] = float(np.sum(pt * dr.min(axis=1)) / norm)
    return taus


def _jet_row(jet: object) -> list[float]:
    """px, py, pz, m, tau1..3 of one FastJet jet (GeV)."""
    cons = np.array([[p.px(), p.py(), p.pz(), p.E()] for p in jet.constituents()])  # type: ignore[attr-defined]
    px, py, pz, e = jet.px(), jet.py(), jet.pz(), jet.E()  # type: ignore[attr-defined]
    m = float(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)))
    return [px, py, pz, m, *nsubjettiness(cons)]


def cluster_events(
    events: Iterable[np.ndarray], leading_pt_min: float = LEADING_PT_MIN, r: float = JET_R
) -> pd.DataFrame:
    """LHCO-layout table (GeV) of the events whose leading anti-kT jet has pT > leading_pt_min.

    ``events`` yields one (n, 4) array of visible final-state (px, py, pz, E) per event, in GeV.
    Events with fewer than two jets are dropped too. The kept events' positions in ``events``
    are in the column ``event`` of ``df.attrs`` (not a column, so the layout stays LHCO's).
    """
    fj = _fastjet()
    jet_def = fj.JetDefinition(fj.antikt_algorithm, float(r))
    rows: list[list[float]] = []
    kept: list[int] = []
    n_in = 0
    for i, particles in enumerate(events):
        n_in += 1
        p = np.asarray(particles, dtype=np.float64).reshape(-1, 4)
        if len(p) < 2:
            continue
        cs = fj.ClusterSequence([fj.PseudoJet(*map(float, row)) for row in p], jet_def)
        jets = fj.sorted_by_pt(cs.inclusive_jets(_JET_PT_FLOOR))
        if len(jets) < 2 or jets[0].pt() <= leading_pt_min:
            continue
        rows.append(_jet_row(jets[0]) + _jet_row(jets[1]))
        kept.append(i)
    df = pd.DataFrame(np.array(rows, dtype=np.float64).reshape(-1, len(LHCO_COLUMNS)),
                      columns=LHCO_COLUMNS)  # fmt: skip
    df.attrs["event"] = kept
    df.attrs["n_events_in"] = n_in
    return df


def split_flat(flat: np.ndarray, counts: Sequence[int] | np.ndarray) -> list[np.ndarray]:
    """Per-event views of a flat (N, 4) particle array, given the particles per event."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != len(flat):
        raise AnomalyHuntError(f"{counts.sum()} particles in the counts, {len(flat)} in the array")
    return np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []
