"""Pythia 8 + FastJet chunks: layout, trigger cut, substructure and signal masses, seeding.

Skipped where the optional ``pythia`` extra (pythia8mc, fastjet) is not installed. Event counts
are tiny (a few seconds in all), so the checks are loose statistical ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from anomalyhunt.data import jets, pythia  # noqa: E402
from anomalyhunt.data.features import LHCO_COLUMNS  # noqa: E402
from anomalyhunt.errors import AnomalyHuntError  # noqa: E402


def _leading_pt(df: pd.DataFrame) -> np.ndarray:
    return np.maximum(np.hypot(df.pxj1, df.pyj1), np.hypot(df.pxj2, df.pyj2))


@pytest.fixture(scope="module")
def qcd() -> pd.DataFrame:
    return pythia.generate_chunk("qcd", 150, seed=101)


@pytest.fixture(scope="module")
def signal() -> pd.DataFrame:
    return pythia.generate_chunk("signal", 80, seed=202)


def test_layout_and_trigger(qcd: pd.DataFrame, signal: pd.DataFrame) -> None:
    for df, label in ((qcd, 0), (signal, 1)):
        assert list(df.columns) == [*LHCO_COLUMNS, "label"]
        assert (df["label"] == label).all()
        assert df.attrs["n_passed"] == len(df) > 10
        assert df.attrs["n_generated"] == (150 if label == 0 else 80)
        assert np.all(np.isfinite(df[LHCO_COLUMNS].to_numpy()))
        # j1 is the leading jet and passes the 1.2 TeV cut
        assert np.all(np.hypot(df.pxj1, df.pyj1) > 1200.0)
        assert np.all(_leading_pt(df) == np.hypot(df.pxj1, df.pyj1))
        assert np.all((df[["tau1j1", "tau2j1", "tau1j2", "tau2j2"]] >= 0).to_numpy())
        # refined axes: tau2 <= tau1 and tau3 <= tau2 always (kT axes alone broke it in ~10%)
        for j in ("j1", "j2"):
            assert np.all(df[f"tau2{j}"] <= df[f"tau1{j}"] * (1 + 1e-12))
            assert np.all(df[f"tau3{j}"] <= df[f"tau2{j}"] * (1 + 1e-12))


def test_qcd_substructure(qcd: pd.DataFrame) -> None:
    tau21 = np.concatenate([qcd.tau2j1 / qcd.tau1j1, qcd.tau2j2 / qcd.tau1j2])
    assert 0.5 < np.median(tau21) < 0.7
    assert np.all(tau21 <= 1.0 + 1e-12)
    # the cap tau2 <= tau1 is a safety net, not what shapes the distribution
    assert np.mean(np.isclose(tau21, 1.0)) < 0.02


def test_signal_masses(signal: pd.DataFrame) -> None:
    heavy = np.maximum(signal.mj1, signal.mj2)
    light = np.minimum(signal.mj1, signal.mj2)
    assert abs(np.median(heavy) / 500.0 - 1.0) < 0.15
    # ungroomed R = 1.0 jets collect underlying event and ISR: a 100 GeV Y comes out ~+30%
    assert 100.0 <= np.median(light) < 150.0
    tau21 = np.concatenate([signal.tau2j1 / signal.tau1j1, signal.tau2j2 / signal.tau1j2])
    assert np.median(tau21) < 0.45  # two-prong jets


def test_same_seed_same_table() -> None:
    a = pythia.generate_chunk("signal", 25, seed=7)
    b = pythia.generate_chunk("signal", 25, seed=7)
    c = pythia.generate_chunk("signal", 25, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a[LHCO_COLUMNS].equals(c[LHCO_COLUMNS])


def test_bad_arguments() -> None:
    with pytest.raises(AnomalyHuntError, match="process"):
        pythia.generate_chunk("ttbar", 10, seed=1)  # type: ignore[arg-type]
    with pytest.raises(AnomalyHuntError, match="seed"):
        pythia.generate_chunk("qcd", 10, seed=0)
    with pytest.raises(AnomalyHuntError, match="signal masses"):
        pythia.generate_chunk("signal", 10, seed=1, mx=2.0, my=1.0)


def test_nsubjettiness_simple_cases() -> None:
    # two equal hard prongs: tau1 > 0, tau2 = 0 (each prong one particle, one axis each)
    two = jets.four_vectors_from_pt_eta_phi(
        np.array([500.0, 500.0]), np.array([0.0, 0.0]), np.array([-0.2, 0.2])
    )
    taus = jets.nsubjettiness(two)
    assert taus[0] == pytest.approx(0.2, rel=1e-6)  # each is 0.2 from the mid axis; / (sum pT R)
    assert taus[1] == 0.0 and taus[2] == 0.0
    # clustering keeps the leading-pT cut configurable
    ev = jets.four_vectors_from_pt_eta_phi(
        np.array([900.0, 850.0]), np.array([0.1, -0.3]), np.array([0.0, np.pi])
    )
    assert len(jets.cluster_events([ev])) == 0
    df = jets.cluster_events([ev], leading_pt_min=800.0)
    assert len(df) == 1 and df.mj1.iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_refined_axes_lower_tau_and_find_the_median() -> None:
    rng = np.random.default_rng(3)
    # two prongs of unequal pT with soft spray: refinement from poor axes never raises the sum
    rap = np.concatenate(
        [rng.normal(0.0, 0.05, 30), rng.normal(0.4, 0.05, 20), rng.normal(0.2, 0.3, 20)]
    )
    phi = np.concatenate(
        [rng.normal(0.0, 0.05, 30), rng.normal(0.3, 0.05, 20), rng.normal(0.1, 0.3, 20)]
    )
    pt = rng.exponential(10.0, len(rap))
    start = (np.array([0.2, 0.25]), np.array([0.1, 0.2]))
    _, _, dr0 = jets._distances(rap, phi, *start)
    total, a_rap, a_phi = jets.refine_axes(rap, phi, pt, *start)
    assert total < np.sum(pt * dr0.min(axis=1))
    assert sorted(np.round(a_rap, 1)) == [0.0, 0.4]
    # three equal particles on a line: the beta = 1 one-axis optimum is the middle one
    total, a_rap, a_phi = jets.refine_axes(
        np.array([-0.3, 0.0, 0.3]), np.zeros(3), np.ones(3), np.array([0.05]), np.array([0.02])
    )
    assert total == pytest.approx(0.6, rel=1e-3) and abs(a_rap[0]) < 1e-2
    # phi wraps around: particles either side of +-pi pull the axis across, not through 0
    total, _, a_phi = jets.refine_axes(
        np.zeros(2),
        np.array([np.pi - 0.1, -np.pi + 0.1]),
        np.ones(2),
        np.array([0.0]),
        np.array([3.0]),
    )
    assert total == pytest.approx(0.2, rel=1e-6) and abs(abs(a_phi[0]) - np.pi) < 0.1
