"""From two-jet events in the LHCO layout (GeV) to the per-event features the search uses (TeV).

The anomaly scores must see only quantities that are (nearly) independent of which jet is which:
the jets are therefore ordered by mass, not by pT, before the features are built.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomalyhunt import FEATURE_COLUMNS
from anomalyhunt.errors import AnomalyHuntError

#: Per-jet columns of the LHCO R&D features file (momenta and masses in GeV); "label" is optional.
LHCO_COLUMNS: list[str] = [
    "pxj1",
    "pyj1",
    "pzj1",
    "mj1",
    "tau1j1",
    "tau2j1",
    "tau3j1",
    "pxj2",
    "pyj2",
    "pzj2",
    "mj2",
    "tau1j2",
    "tau2j2",
    "tau3j2",
]

#: tau21 of a jet with tau1 <= 0. Such a jet has all its pT on one axis (tau2 = tau1 = 0), so it
#: is as one-prong as a jet can be: 1 places it at the background-like end. 0 would make it look
#: maximally two-pronged and hand the anomaly score a fake signal-like population.
TAU21_UNDEFINED: float = 1.0

_GEV_PER_TEV = 1000.0

#: The only label values: 1 signal, 0 background, -1 unknown (data, black boxes).
LABELS = (-1, 0, 1)


def mjj(
    px1: np.ndarray,
    py1: np.ndarray,
    pz1: np.ndarray,
    m1: np.ndarray,
    px2: np.ndarray,
    py2: np.ndarray,
    pz2: np.ndarray,
    m2: np.ndarray,
) -> np.ndarray:
    """Dijet invariant mass, in the units of the inputs.

    Written as m1^2 + m2^2 + 2 (E1 E2 - p1.p2) rather than E^2 - p^2 of the sum, which loses fewer
    digits for boosted systems (float64 throughout).
    """
    px1, py1, pz1, m1, px2, py2, pz2, m2 = (
        np.asarray(v, dtype=np.float64) for v in (px1, py1, pz1, m1, px2, py2, pz2, m2)
    )
    e1 = np.sqrt(px1 * px1 + py1 * py1 + pz1 * pz1 + m1 * m1)
    e2 = np.sqrt(px2 * px2 + py2 * py2 + pz2 * pz2 + m2 * m2)
    m2sum = m1 * m1 + m2 * m2 + 2.0 * (e1 * e2 - (px1 * px2 + py1 * py2 + pz1 * pz2))
    return np.sqrt(np.maximum(m2sum, 0.0))


def tau21(tau1: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """tau2/tau1 with :data:`TAU21_UNDEFINED` where tau1 <= 0, so no NaN/inf reaches a classifier."""
    tau1 = np.asarray(tau1, dtype=np.float64)
    tau2 = np.asarray(tau2, dtype=np.float64)
    ok = tau1 > 0
    return np.where(ok, tau2 / np.where(ok, tau1, 1.0), TAU21_UNDEFINED)


def check_columns(events: pd.DataFrame, source: str = "events") -> None:
    """Fail with one clear line if LHCO columns are missing or hold NaN/inf."""
    missing = [c for c in LHCO_COLUMNS if c not in events.columns]
    if missing:
        raise AnomalyHuntError(
            f"{source}: missing columns {missing}; the LHCO layout needs {LHCO_COLUMNS}"
        )
    for c in [*LHCO_COLUMNS, *(["label"] if "label" in events.columns else [])]:
        column = events[c]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
            example = column[bad].iloc[0] if bad.any() else column.iloc[0] if len(column) else None
            raise AnomalyHuntError(
                f"{source}: column '{c}' holds {column.dtype} values, not numbers "
                f"(e.g. {example!r}); the LHCO columns and the label must be numeric"
            )
    values = events[LHCO_COLUMNS].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        n_rows = int(bad.any(axis=1).sum())
        cols = [c for c, b in zip(LHCO_COLUMNS, bad.any(axis=0), strict=True) if b]
        raise AnomalyHuntError(
            f"{source}: {n_rows} events have NaN or infinite values (columns {cols}); "
            "remove or fix them before running the search"
        )


def compute_features(events: pd.DataFrame, source: str = "events") -> pd.DataFrame:
    """The features table (``anomalyhunt.FEATURE_COLUMNS``) of LHCO-layout events in GeV."""
    check_columns(events, source)
    col = {c: events[c].to_numpy(dtype=np.float64) for c in LHCO_COLUMNS}
    m_jj = mjj(
        col["pxj1"],
        col["pyj1"],
        col["pzj1"],
        col["mj1"],
        col["pxj2"],
        col["pyj2"],
        col["pzj2"],
        col["mj2"],
    )
    t21_1 = tau21(col["tau1j1"], col["tau2j1"])
    t21_2 = tau21(col["tau1j2"], col["tau2j2"])
    first_light = col["mj1"] <= col["mj2"]
    m_light = np.where(first_light, col["mj1"], col["mj2"])
    m_heavy = np.where(first_light, col["mj2"], col["mj1"])
    if "label" in events.columns:
        raw = events["label"].to_numpy().astype(np.float64)
        if not np.all(np.isfinite(raw)):
            raise AnomalyHuntError(f"{source}: the 'label' column has NaN values")
        bad = ~np.isin(raw, LABELS)
        if bad.any():
            values = np.unique(raw[bad])
            raise AnomalyHuntError(
                f"{source}: the 'label' column holds {values[0]:g}"
                + (f" (and {len(values) - 1} other values)" if len(values) > 1 else "")
                + f" in {int(bad.sum())} events; labels are 1 (signal), 0 (background) or "
                "-1 (unknown)"
            )
        label = raw.astype(np.int8)
    else:
        label = np.full(len(events), -1, dtype=np.int8)
    out = pd.DataFrame(
        {
            "mjj": m_jj / _GEV_PER_TEV,
            "mj_light": m_light / _GEV_PER_TEV,
            "delta_mj": (m_heavy - m_light) / _GEV_PER_TEV,
            "tau21_light": np.where(first_light, t21_1, t21_2),
            "tau21_heavy": np.where(first_light, t21_2, t21_1),
            "label": label,
        }
    )
    return out[list(FEATURE_COLUMNS)]
