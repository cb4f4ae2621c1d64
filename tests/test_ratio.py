"""The ratio background: the uncut spectrum times a smooth cut efficiency, fitted to the sidebands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomalyhunt import bumphunt as bh
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import Window
from anomalyhunt.stats.batch import fit_batch
from anomalyhunt.stats.fit import fit_function
from anomalyhunt.stats.functions import bin_masks, get_function, ratio_offset

EDGES = np.round(np.arange(2.7, 4.3 + 1e-9, 0.05), 6)
SR = (3.3, 3.7)
WINDOW = Window.from_dict(
    {"id": "w01", "sr": [3.3, 3.7], "sb_low": [2.7, 3.3], "sb_high": [3.7, 4.3], "centre": 3.5}
)


def uncut_spectrum(total: float = 5e5) -> np.ndarray:
    mean = get_function("dijet4").expected(EDGES, [1, 10, 5, 0.3])
    return np.random.default_rng(0).poisson(mean * total / mean.sum()).astype(float)


def test_ratio_needs_the_uncut_spectrum() -> None:
    _, fit_mask = bin_masks(EDGES, *SR)
    with pytest.raises(AnomalyHuntError, match="uncut"):
        fit_function("ratio2", EDGES, uncut_spectrum(), fit_mask)


def test_ratio_recovers_a_log_linear_efficiency() -> None:
    """A cut whose efficiency rises like mjj^1.5: ratio2 predicts the SR within its error."""
    uncut = uncut_spectrum()
    mid = 0.5 * (EDGES[1:] + EDGES[:-1])
    eff = 0.01 * (mid / 3.5) ** 1.5
    sr_mask, fit_mask = bin_masks(EDGES, *SR)
    truth = (uncut * eff)[sr_mask].sum()
    pulls = []
    for seed in range(20):
        cut = np.random.default_rng(seed).binomial(uncut.astype(int), eff).astype(float)
        fit = fit_function("ratio2", EDGES, cut, fit_mask, log_offset=ratio_offset(uncut, EDGES))
        assert fit.valid, fit.message
        b, sigma_b = fit.predict(*SR)
        pulls.append((b - truth) / sigma_b)
        assert fit.params[1] == pytest.approx(1.5, abs=5 * np.sqrt(fit.cov[1, 1]))
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.7 and 0.5 < pulls.std() < 1.6
    # a flat efficiency cannot follow the slope: ratio1 misses the SR by many of its errors
    fit1 = fit_function("ratio1", EDGES, cut, fit_mask, log_offset=ratio_offset(uncut, EDGES))
    b1, s1 = fit1.predict(*SR)
    assert abs(b1 - truth) > abs(b - truth)


def test_ratio_batch_fit_matches_migrad() -> None:
    """The toys' vectorised refit of a ratio member equals Migrad's, toy by toy."""
    uncut = uncut_spectrum()
    offset = ratio_offset(uncut, EDGES)
    mid = 0.5 * (EDGES[1:] + EDGES[:-1])
    mean = uncut * 0.01 * (mid / 3.5) ** -2
    _, fit_mask = bin_masks(EDGES, *SR)
    nominal = fit_function("ratio2", EDGES, mean, fit_mask, log_offset=offset)
    counts = np.random.default_rng(5).poisson(mean, size=(8, mean.size)).astype(float)
    b, sigma, ok = fit_batch("ratio2", EDGES, counts, SR, nominal.params, log_offset=offset)[:3]
    assert ok.all()
    for i in range(8):
        ref = fit_function("ratio2", EDGES, counts[i], fit_mask, log_offset=offset)
        b_ref, s_ref = ref.predict(*SR)
        assert b[i] == pytest.approx(b_ref, rel=2e-4)
        assert sigma[i] == pytest.approx(s_ref, rel=0.02)


def window_scores(seed: int, n_signal: int) -> pd.DataFrame:
    """Falling background whose score is independent of mjj, plus a bump that always passes."""
    rng = np.random.default_rng(seed)
    m_bkg = 2.7 + rng.exponential(0.45, size=600_000)
    m_bkg = m_bkg[m_bkg < 4.3]
    m_sig = rng.normal(3.5, 0.1, size=n_signal)
    mjj = np.concatenate([m_bkg, m_sig])
    score = np.concatenate([rng.uniform(size=m_bkg.size), np.full(n_signal, 2.0)])
    label = np.concatenate([np.zeros(m_bkg.size, int), np.ones(n_signal, int)])
    keep = (mjj > 2.7) & (mjj < 4.3)
    mjj, score, label = mjj[keep], score[keep], label[keep]
    return pd.DataFrame(
        {
            "mjj": mjj,
            "score": score,
            "label": label,
            "fold": rng.integers(0, 5, mjj.size),
            "region": WINDOW.region_of(mjj),
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ratio_finds_a_bump_and_no_bump_without_one(seed: int) -> None:
    opts = bh.HuntOptions(background="ratio", spurious=False)
    fit_opts = bh.HuntOptions(background="fit", spurious=False)
    null = bh.hunt(window_scores(seed, 0), WINDOW, [0.01], 0.05, opts)[0]
    assert null["function"].startswith("ratio")
    assert null["z"] < 3
    with_signal = window_scores(seed, 250)  # Z about 8 expected
    found = bh.hunt(with_signal, WINDOW, [0.01], 0.05, opts)[0]
    fitted = bh.hunt(with_signal, WINDOW, [0.01], 0.05, fit_opts)[0]
    assert found["z"] > 4
    assert found["sigma_b"] < fitted["sigma_b"]  # the uncut shape pins the SR down
    assert bh.hunt(with_signal, WINDOW, [1.0], 0.05, opts)[0]["function"] == "dijet4"  # uncut test


def sloped_window(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Background only: a falling spectrum and a score whose cut efficiency rises with mjj."""
    lo, hi = WINDOW.span
    u = rng.uniform(size=n)
    mjj = (lo**-5 + u * (hi**-5 - lo**-5)) ** (-1 / 5)  # dN/dm ~ m^-6
    score = rng.normal(size=n) + 0.8 * np.log(mjj / 3.5)
    return pd.DataFrame(
        {
            "mjj": mjj,
            "score": score,
            "label": np.zeros(n, dtype=int),
            "fold": rng.integers(0, 5, n),
            "region": WINDOW.region_of(mjj),
        }
    )


def test_choice_uncertainty_is_the_next_function_s_difference() -> None:
    scores = sloped_window(np.random.default_rng(5), 200_000)
    (with_,) = bh.hunt(scores, WINDOW, [0.002], 0.05, bh.HuntOptions(spurious=False, limits=False))
    (without,) = bh.hunt(
        scores,
        WINDOW,
        [0.002],
        0.05,
        bh.HuntOptions(spurious=False, limits=False, choice_uncertainty=False),
    )
    choice = with_["function_choice"]
    assert choice["chosen"] == "ratio2" and choice["alternative"] == "ratio3"
    assert without["fit"]["choice_shift"] is None and without["sr_model"]["choice_shift"] is None
    shift = np.asarray(with_["fit"]["choice_shift"])
    sr_mask, _ = bin_masks(np.asarray(with_["fit"]["edges"]), *SR)
    assert with_["b"] == pytest.approx(without["b"])
    assert with_["sigma_b"] == pytest.approx(np.hypot(without["sigma_b"], shift[sr_mask].sum()))
    assert sum(with_["sr_model"]["choice_shift"]) == pytest.approx(shift[sr_mask].sum())
    assert with_["z"] <= without["z"] + 1e-9


def test_local_p_values_uniform_at_a_sparse_cut() -> None:
    """About 40 events in the window after the cut, where the F-test cannot see the cut
    efficiency's slope: a flat efficiency there, without the function-choice uncertainty, fakes
    excesses (u < 0.1 in 20% of the tests, benchmarks/ratio_validation.py); the defaults do not.
    """
    from scipy import stats

    u = []
    for seed in range(150):
        scores = sloped_window(np.random.default_rng(1000 + seed), 400_000)
        (cut,) = bh.hunt(scores, WINDOW, [1e-4], 0.05, bh.HuntOptions(spurious=False, limits=False))
        if cut["z"] is not None and cut["z"] > 0:
            u.append(2 * cut["p0"])
    u = np.asarray(u)
    assert u.size > 60
    assert np.mean(u < 0.1) < 0.17
    assert stats.kstest(np.clip(u, 0, 1), "uniform").pvalue > 0.01
