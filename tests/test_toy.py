"""The embedded generator: reproducible, dijet-function background, signal where it belongs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from anomalyhunt.data import toy
from anomalyhunt.data.features import LHCO_COLUMNS, compute_features, mjj
from anomalyhunt.errors import AnomalyHuntError


@pytest.fixture(scope="module")
def big() -> tuple:
    events = toy.generate(1_000_000, 20_000, seed=7)
    return events, compute_features(events)


def test_same_seed_same_table_other_seed_other_table() -> None:
    a = toy.generate(5000, 500, seed=3)
    b = toy.generate(5000, 500, seed=3)
    c = toy.generate(5000, 500, seed=4)
    assert list(a.columns) == [*LHCO_COLUMNS, "label"]
    assert a.equals(b)
    assert not np.allclose(a["pxj1"], c["pxj1"])
    assert (a["label"].to_numpy() == np.repeat([0, 1], [5000, 500])).all()


def test_kinematics_reproduce_mjj_exactly() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    m = rng.uniform(2.5, 7.0, n)
    m1, m2 = rng.uniform(0.005, 0.6, n), rng.uniform(0.005, 0.6, n)
    dy = rng.uniform(-2.6, 2.6, n)
    dy[:10] = 0.0  # the pT solution must stay exact without any rapidity gap
    px1, py1, pz1, px2, py2, pz2 = toy.dijet_kinematics(
        m, m1, m2, dy, rng.normal(0, 0.5, n), rng.uniform(0, 6.3, n)
    )
    back = mjj(px1, py1, pz1, m1, px2, py2, pz2, m2)
    assert np.max(np.abs(back / m - 1)) < 1e-9
    assert np.allclose(px1, -px2) and np.allclose(py1, -py2)


def test_background_mjj_is_a_dijet_function(big: tuple) -> None:
    f = big[1]
    edges = np.arange(2.7, 6.0 + 1e-9, 0.05)
    counts, _ = np.histogram(f.loc[f.label == 0, "mjj"], bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert counts.sum() > 500_000
    # ~2.5-3 orders of magnitude from 2.8 to 6 TeV, like the LHCO R&D QCD spectrum
    assert 2.3 < np.log10(counts[2] / counts[-1]) < 3.3

    def model(x: np.ndarray, lp0: float, p1: float, p2: float, p3: float) -> np.ndarray:
        return np.exp(lp0) * toy.dijet_function(x, 1.0, p1, p2, p3)

    start = (0.0, 10.0, 5.0, 0.0)
    start = (np.log(counts[0] / model(centres[:1], *start)[0]), *start[1:])
    popt, _ = optimize.curve_fit(
        model, centres, counts, p0=start, sigma=np.sqrt(np.maximum(counts, 1)), maxfev=20_000
    )
    expected = model(centres, *popt)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    ndf = len(counts) - 4
    assert chi2 / ndf < 1.5, f"chi2/ndf = {chi2:.1f}/{ndf}"


def test_trigger_turn_on(big: tuple) -> None:
    eff = toy.trigger_efficiency(np.array([2.0, toy.TRIGGER_MJJ50, 2.5, 2.7]))
    # fully efficient where the default scan's lowest sideband starts (2.5 TeV)
    assert eff[0] < 0.01 and eff[1] == pytest.approx(0.5) and eff[2] > 0.9995 and eff[3] > 0.99999
    events, f = big
    bkg = f.label == 0
    counts, edges = np.histogram(f.loc[bkg, "mjj"], bins=np.arange(1.8, 3.5, 0.05))
    # the spectrum rises through the turn-on, peaks below 2.7 TeV and falls after
    assert 2.3 < edges[np.argmax(counts)] < 2.7
    assert counts[0] < 0.01 * counts.max()
    # above 2.7 TeV the leading jet has passed the 1.2 TeV pT threshold
    pt = np.hypot(events["pxj1"], events["pyj1"]).to_numpy() / 1000
    high = (f["mjj"] > 2.7).to_numpy()
    assert np.mean(pt[high] > 1.2) > 0.99


def test_qcd_jet_substructure(big: tuple) -> None:
    events, f = big
    bkg = (events["label"] == 0).to_numpy()
    for j in ("j1", "j2"):
        t1, t2, t3 = (events[f"tau{k}{j}"].to_numpy()[bkg] for k in (1, 2, 3))
        assert np.all(t1 > t2) and np.all(t2 > t3) and np.all(t3 > 0)
        pt = np.hypot(events[f"px{j}"], events[f"py{j}"]).to_numpy()[bkg]
        rho = events[f"m{j}"].to_numpy()[bkg] / pt
        assert 0.04 < np.median(rho) < 0.15 and np.quantile(rho, 0.99) > 2.5 * np.median(rho)
        tau21 = t2 / t1
        assert 0.5 < np.median(tau21) < 0.7 and np.std(tau21) > 0.1
        assert 0.6 < np.median(t3 / t2) < 0.8
        # higher-mass QCD jets are a little more two-prong-like
        assert -0.5 < np.corrcoef(np.log(rho), tau21)[0, 1] < -0.05


def test_signal_sits_where_the_model_says(big: tuple) -> None:
    f = big[1]
    sig, bkg = f[f.label == 1], f[f.label == 0]
    assert sig["mjj"].median() == pytest.approx(3.5, rel=0.02)
    core = sig["mjj"].quantile([0.5, 0.8413]).to_numpy()
    assert 0.035 < (core[1] - core[0]) / 3.5 < 0.06  # ~4% resolution
    assert sig["mjj"].quantile(0.05) < 3.5 * (1 - 1.645 * 0.040) - 0.03  # low-side tail
    assert sig["mj_light"].median() == pytest.approx(0.1, rel=0.03)
    assert sig["delta_mj"].median() == pytest.approx(0.4, rel=0.03)
    for c in ("tau21_light", "tau21_heavy"):
        assert 0.2 < sig[c].median() < 0.4 < bkg[c].median()
        # distinct from QCD but overlapping, as in LHCO (~0.3 of QCD below the signal's 75%)
        assert 0.1 < np.mean(bkg[c] < sig[c].quantile(0.75)) < 0.45


@pytest.mark.parametrize("knob", [0.0, 1.0, 3.0])
def test_mjj_correlation_scales_mass_sculpting(knob: float) -> None:
    f = compute_features(toy.generate(300_000, 0, seed=11, mjj_correlation=knob))
    low = f.loc[(f.mjj > 2.8) & (f.mjj < 3.2), "mj_light"].median()
    high = f.loc[(f.mjj > 4.0) & (f.mjj < 5.0), "mj_light"].median()
    ratio = high / low
    if knob == 0.0:
        assert ratio == pytest.approx(1.0, abs=0.03)
    elif knob == 1.0:
        assert 1.06 < ratio < 1.3
    else:
        assert ratio > 1.35


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(AnomalyHuntError, match="mx"):
        toy.generate(100, 10, seed=1, mjj_signal=1.0, mx=0.5, my=0.1)
    with pytest.raises(AnomalyHuntError, match="mjj_correlation"):
        toy.generate(100, 10, seed=1, mjj_correlation=-1)
