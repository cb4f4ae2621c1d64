"""Pythia 8 dijet events, clustered into the LHCO layout (GeV) with ``label`` 0 (QCD) or 1 (W').

One call makes one seeded chunk, so a workflow can run many chunks in parallel and merge them.

QCD (``label`` 0)
    13 TeV pp, ``HardQCD:all`` with ``PhaseSpace:pTHatMin`` (default 1000 GeV, which the
    leading-jet pT > 1.2 TeV cut makes safe: a harder jet needs a harder parton).

Signal (``label`` 1), the LHCO R&D benchmark W' -> X Y, X -> q q, Y -> q q
    ``NewGaugeBoson:ffbar2Wprime`` (PDG 34), mass ``mjj_signal`` TeV. Pythia has no spare
    generic states for X and Y, so two unused Higgs-sector resonances stand in, chosen so that
    electric charge is conserved (W'+ -> X+ Y0) and no SM particle changes:

    * X = H+ (PDG 37), mass ``mx`` TeV, decaying only to u dbar,
    * Y = H0 (PDG 35), mass ``my`` TeV, decaying only to d dbar.

    All three use a single channel with ``meMode = 100`` (partial width = stored BR x total
    width), so Pythia's Higgs/W' coupling models play no role; X and Y get 1 GeV widths and
    mass windows of +-10%. The W' window is +-20% of its mass: without ``34:mMin``/``34:mMax``
    the parton luminosity pulls most W' far off shell, below the X + Y threshold, and those
    decays fail.

Every call seeds Pythia (``Random:setSeed = on``, ``Random:seed``) and silences it. The
visible final state (status > 0, neutrinos dropped) goes to :func:`anomalyhunt.data.jets.cluster_events`,
which keeps the events with a leading jet above ``leading_pt_min``. ``nextBatch`` may return
fewer events than asked (failed events are skipped), so batches are requested until
``n_events`` have been *generated*; the table has the events that pass the cut, and
``df.attrs`` records ``n_generated``, ``n_passed`` and the cross section.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from anomalyhunt.data import jets
from anomalyhunt.errors import AnomalyHuntError

SQRT_S_GEV = 13000.0
#: Seeds Pythia accepts (Random:seed is a 9-digit positive integer; 0 would mean "use the clock").
_SEED_MAX = 900_000_000
_NEUTRINOS = (12, 14, 16)
_BATCH = 100  # events per nextBatch call: small enough to keep memory flat
_X_ID, _Y_ID = 37, 35


def n_chunks(pythia_config: dict, process: str) -> int:
    """Jobs one process needs: every chunk is full but the last, so counts are met exactly."""
    return -(-pythia_config[f"n_{process}"] // pythia_config["chunk_size"])


def _settings(
    process: str, seed: int, mjj_signal: float, mx: float, my: float, pthat_min: float
) -> list[str]:
    common = [
        f"Beams:eCM = {SQRT_S_GEV}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]
    if process == "qcd":
        return [*common, "HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}"]
    m_w, m_x, m_y = 1000.0 * mjj_signal, 1000.0 * mx, 1000.0 * my
    out = [
        *common,
        "NewGaugeBoson:ffbar2Wprime = on",
        f"34:m0 = {m_w}",
        f"34:mMin = {0.8 * m_w}",
        f"34:mMax = {1.2 * m_w}",
        "34:onMode = off",
        f"34:oneChannel = 1 1.0 100 {_X_ID} {_Y_ID}",
    ]
    for pid, mass, quarks in ((_X_ID, m_x, "2 -1"), (_Y_ID, m_y, "1 -1")):
        out += [
            f"{pid}:m0 = {mass}",
            f"{pid}:mWidth = 1.0",
            f"{pid}:mMin = {0.9 * mass}",
            f"{pid}:mMax = {1.1 * mass}",
            f"{pid}:onMode = off",
            f"{pid}:oneChannel = 1 1.0 100 {quarks}",
        ]
    return out


def _visible(batch: object) -> list[np.ndarray]:
    """Per-event (n, 4) arrays of visible final-state (px, py, pz, E) from a nextBatch result."""
    import awkward as ak

    prt = batch["prt"]  # type: ignore[index]
    aid = abs(prt["id"])
    keep = prt["status"] > 0
    for nu in _NEUTRINOS:
        keep = keep & (aid != nu)
    mom = prt["p"][keep]
    flat = np.stack([ak.to_numpy(ak.flatten(mom[f])) for f in ("px", "py", "pz", "e")], axis=1)
    return jets.split_flat(flat, ak.to_numpy(ak.num(mom["px"])))


def generate_chunk(
    process: Literal["qcd", "signal"],
    n_events: int,
    seed: int,
    mjj_signal: float = 3.5,
    mx: float = 0.5,
    my: float = 0.1,
    pthat_min: float = 1000.0,
    leading_pt_min: float = jets.LEADING_PT_MIN,
) -> pd.DataFrame:
    """LHCO-layout events (GeV) + ``label`` from ``n_events`` generated Pythia events.

    Masses ``mjj_signal``, ``mx``, ``my`` in TeV (as in the toy generator); ``pthat_min`` and
    ``leading_pt_min`` in GeV. Same arguments, same table.
    """
    if process not in ("qcd", "signal"):
        raise AnomalyHuntError(f"pythia: process must be 'qcd' or 'signal', got {process!r}")
    if n_events < 0:
        raise AnomalyHuntError(f"pythia: negative event count {n_events}")
    if not 0 < seed < _SEED_MAX:
        raise AnomalyHuntError(f"pythia: seed must be in 1..{_SEED_MAX - 1}, got {seed}")
    if process == "signal" and (min(mx, my) <= 0 or mx + my >= 0.8 * mjj_signal):
        raise AnomalyHuntError(
            f"pythia: signal masses mx={mx}, my={my} TeV must be positive with mx + my below "
            f"the W' mass window (0.8 x {mjj_signal} TeV)"
        )
    try:
        import pythia8mc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise AnomalyHuntError(
            "pythia: needs pythia8mc: pip install 'anomalyhunt[pythia]'"
        ) from exc

    pythia = pythia8mc.Pythia("", False)
    for line in _settings(process, seed, mjj_signal, mx, my, pthat_min):
        if not pythia.readString(line):
            raise AnomalyHuntError(f"pythia: setting rejected: {line}")
    if not pythia.init():
        raise AnomalyHuntError(f"pythia: initialization failed for process {process!r}")

    parts: list[pd.DataFrame] = []
    generated, empty_batches = 0, 0
    while generated < n_events:
        batch = pythia.nextBatch(min(_BATCH, n_events - generated))
        got = len(batch)  # may be fewer than asked: failed events are skipped
        if got == 0:
            empty_batches += 1
            if empty_batches >= 5:
                raise AnomalyHuntError(f"pythia: no events come back for process {process!r}")
            continue
        generated += got
        parts.append(jets.cluster_events(_visible(batch), leading_pt_min=leading_pt_min))
    df = (
        pd.concat(parts, ignore_index=True)
        if parts
        else jets.cluster_events([], leading_pt_min=leading_pt_min)
    )
    df.attrs = {}
    df["label"] = np.full(len(df), 1 if process == "signal" else 0, dtype=np.int8)
    df.attrs.update(
        n_generated=generated, n_passed=len(df), sigma_gen_mb=float(pythia.infoPython().sigmaGen())
    )
    return df
