"""compute_features / mjj against hand calculations and the error paths users hit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from anomalyhunt import FEATURE_COLUMNS
from anomalyhunt.data.features import LHCO_COLUMNS, TAU21_UNDEFINED, compute_features, mjj
from anomalyhunt.errors import AnomalyHuntError


def _event(**overrides: float) -> dict[str, float]:
    # jet 1: p = (1000, 0, 500) GeV, m = 100 GeV; jet 2: p = (-1000, 0, -300) GeV, m = 400 GeV
    ev = dict(
        pxj1=1000.0,
        pyj1=0.0,
        pzj1=500.0,
        mj1=100.0,
        tau1j1=0.5,
        tau2j1=0.3,
        tau3j1=0.2,
        pxj2=-1000.0,
        pyj2=0.0,
        pzj2=-300.0,
        mj2=400.0,
        tau1j2=0.4,
        tau2j2=0.1,
        tau3j2=0.05,
    )
    ev.update(overrides)
    return ev


def test_mjj_by_hand() -> None:
    # E1 = sqrt(1000^2 + 500^2 + 100^2) = sqrt(1260000); E2 = sqrt(1000^2 + 300^2 + 400^2)
    e1, e2 = math.sqrt(1_260_000.0), math.sqrt(1_250_000.0)
    # summed momentum (0, 0, 200): m^2 = (E1 + E2)^2 - 200^2
    expected = math.sqrt((e1 + e2) ** 2 - 200.0**2)
    # E1 = 1122.4972, E2 = 1118.0340: m = sqrt(2240.5312^2 - 200^2) = 2231.5869
    assert expected == pytest.approx(2231.5869, abs=1e-4)
    got = mjj(1000.0, 0.0, 500.0, 100.0, -1000.0, 0.0, -300.0, 400.0)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_mjj_massless_back_to_back_is_twice_the_energy() -> None:
    got = mjj(np.array([1500.0]), [0.0], [0.0], [0.0], [-1500.0], [0.0], [0.0], [0.0])
    assert got[0] == pytest.approx(3000.0, rel=1e-12)


def test_features_order_jets_by_mass_and_use_tev() -> None:
    ev = _event()
    swapped = {
        k.replace("j1", "jX").replace("j2", "j1").replace("jX", "j2"): v for k, v in ev.items()
    }
    f = compute_features(pd.DataFrame([ev, swapped]))
    assert list(f.columns) == list(FEATURE_COLUMNS)
    for _, row in f.iterrows():
        assert row["mjj"] == pytest.approx(2.2315869, abs=1e-7)
        assert row["mj_light"] == pytest.approx(0.1)
        assert row["delta_mj"] == pytest.approx(0.3)
        assert row["tau21_light"] == pytest.approx(0.6)  # 0.3 / 0.5, from the 100 GeV jet
        assert row["tau21_heavy"] == pytest.approx(0.25)  # 0.1 / 0.4
    assert f["label"].dtype == np.int8 and (f["label"] == -1).all()
    assert all(f[c].dtype == np.float64 for c in FEATURE_COLUMNS if c != "label")


def test_label_is_kept_as_int8() -> None:
    df = pd.DataFrame([_event() | {"label": 1.0}, _event() | {"label": 0.0}])
    f = compute_features(df)
    assert f["label"].dtype == np.int8 and f["label"].tolist() == [1, 0]


def test_tau21_guard_for_zero_tau1() -> None:
    df = pd.DataFrame([_event(tau1j1=0.0, tau2j1=0.0), _event(tau1j2=0.0, tau2j2=0.0)])
    f = compute_features(df)
    values = f[["tau21_light", "tau21_heavy"]].to_numpy()
    assert np.isfinite(values).all()
    assert f.loc[0, "tau21_light"] == TAU21_UNDEFINED and f.loc[0, "tau21_heavy"] == 0.25
    assert f.loc[1, "tau21_heavy"] == TAU21_UNDEFINED and f.loc[1, "tau21_light"] == 0.6


def test_missing_columns_are_named() -> None:
    df = pd.DataFrame([_event()]).drop(columns=["mj2", "tau3j1"])
    with pytest.raises(AnomalyHuntError, match=r"missing columns \['tau3j1', 'mj2'\]"):
        compute_features(df, source="my.h5")


def test_nan_and_inf_are_counted() -> None:
    df = pd.DataFrame([_event(), _event(pzj1=np.nan), _event(tau2j2=np.inf, pzj1=np.nan)])
    with pytest.raises(AnomalyHuntError, match=r"2 events .*\['pzj1', 'tau2j2'\]"):
        compute_features(df)


def test_lhco_columns_layout() -> None:
    assert len(LHCO_COLUMNS) == 14 and LHCO_COLUMNS[3] == "mj1" and LHCO_COLUMNS[10] == "mj2"
