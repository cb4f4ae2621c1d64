"""BumpHunter cross-check: finds an injected bump, stays quiet on background, never kills a summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomalyhunt import summary, summary_markdown
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats import bumphunter
from anomalyhunt.stats.bumphunter import assemble_histograms, bump_hunt, global_bumphunter
from tests.test_summary_plots import _bin_means, make_fits

EDGES = np.round(np.arange(3.0, 5.4 + 1e-9, 0.05), 6)  # 48 bins, as the default search
REFERENCE = _bin_means(EDGES, 100.0)  # ~4400 events, 520 to 2 per bin


def test_finds_injected_bump() -> None:
    rng = np.random.default_rng(11)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    signal = 150.0 * np.exp(-0.5 * ((centres - 4.0) / 0.05) ** 2)
    data = rng.poisson(REFERENCE + signal).astype(float)
    r = bump_hunt(EDGES, data, REFERENCE, n_pe=300, seed=4)
    assert r["bump"][0] <= 4.0 <= r["bump"][1] and r["bump"][1] - r["bump"][0] <= 0.4
    assert r["z_local"] > 5 and r["is_upper_bound"] and r["n_exceed"] == 0
    assert r["z_global"] > 2.5  # BumpHunter's lower limit with 300 pseudo-experiments


def test_background_only_is_not_significant() -> None:
    # global p-values of background-only data are uniform: judge several, not one
    results = []
    for k in range(8):
        data = np.random.default_rng(200 + k).poisson(REFERENCE).astype(float)
        results.append(bump_hunt(EDGES, data, REFERENCE, n_pe=100, seed=k))
    p = np.array([r["p_global"] for r in results])
    assert np.median(p) > 0.15 and (p > 0.01).sum() >= 7
    assert np.mean([r["z_global"] for r in results]) < 1.5
    # the look-elsewhere effect: the best local Z over ~600 ranges is well above its global Z
    assert all(r["z_local"] > r["z_global"] for r in results)
    assert results[0]["t_toys"].shape == (100,)


def test_reproducible_and_leaves_global_rng_alone() -> None:
    data = np.random.default_rng(13).poisson(REFERENCE).astype(float)
    np.random.seed(99)  # noqa: NPY002 (what BumpHunter touches)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = bump_hunt(EDGES, data, REFERENCE, n_pe=100, seed=7)
    b = bump_hunt(EDGES, data, REFERENCE, n_pe=100, seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert a["p_global"] == b["p_global"]
    np.testing.assert_array_equal(a["t_toys"], b["t_toys"])
    with pytest.raises(AnomalyHuntError):
        bump_hunt(EDGES, data[:-1], REFERENCE, n_pe=10)
    with pytest.raises(AnomalyHuntError):
        bump_hunt(EDGES, data, np.zeros_like(REFERENCE), n_pe=10)


def test_histograms_take_each_bin_from_one_window() -> None:
    fits = make_fits(efficiencies=(1.0, 0.1), n_windows=4, seed=3)
    hists = assemble_histograms(fits)
    assert [(h.method, h.efficiency) for h in hists] == [("cwola", 0.1), ("cwola", 1.0)]
    h = hists[1]
    # the union of the SRs: 3.4 to 4.4 TeV, 20 bins of 50 GeV
    assert h.edges[0] == pytest.approx(3.4) and h.edges[-1] == pytest.approx(4.4)
    assert h.counts.size == 20
    by_window = {f["window"]: f["cuts"][0]["fit"] for f in fits}
    for i, owner in enumerate(h.owner):
        fit = by_window[owner]
        j = int(np.argmin(np.abs(np.asarray(fit["edges"]) - h.edges[i])))
        # count and reference come from the same window, whose SR holds the bin
        assert h.counts[i] == fit["counts"][j] and h.reference[i] == fit["expected"][j]
        sr = next(f["sr"] for f in fits if f["window"] == owner)
        assert sr[0] - 1e-9 <= h.edges[i] and h.edges[i + 1] <= sr[1] + 1e-9
    # SRs overlap by half: the nearer SR centre wins, so each window owns its SR's middle
    assert h.owner[:6] == ["w00"] * 6 and h.owner[6:10] == ["w01"] * 4


def test_global_bumphunter_on_fits() -> None:
    fits = make_fits(efficiencies=(1.0, 0.01), n_windows=6, bump=(3.9, 300.0), seed=5)
    out = global_bumphunter(fits, n_pe=200, seed=1)
    assert out["status"] == "ok" and len(out["scans"]) == 2
    assert all(s["status"] == "ok" and "t_toys" not in s for s in out["scans"])
    assert out["bump"][0] <= 3.9 <= out["bump"][1]
    assert out["efficiency"] == 0.01 and out["combined"]["n_scans"] == 2
    json.dumps(out)  # goes into summary.json as it is


def _table_and_fits():
    fits = make_fits(efficiencies=(1.0,), n_windows=3, seed=6)
    return fits, summary.local_table(fits)


def test_summary_records_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fits, table = _table_and_fits()

    def broken(*args, **kwargs):
        raise RuntimeError("no luck today")

    monkeypatch.setattr(bumphunter, "global_bumphunter", broken)
    out = summary.global_significance(fits, table, n_toys=0, seed=1, n_jobs=1, bumphunter_pe=50)
    assert out["bumphunter"] == {"status": "failed: RuntimeError: no luck today"}
    assert "failed" in summary_markdown._bumphunter_line(out["bumphunter"])


def test_summary_survives_misaligned_bins(tmp_path) -> None:
    fits, table = _table_and_fits()
    fits[1]["cuts"][0]["fit"]["edges"] = [e + 0.01 for e in fits[1]["cuts"][0]["fit"]["edges"]]
    out = summary.global_significance(fits, table, n_toys=20, seed=1, n_jobs=1, bumphunter_pe=50)
    assert out["bumphunter"]["status"].startswith("failed: AnomalyHuntError")
    assert "toys" in out and "gross_vitells" in out
    record = {
        "run": "t",
        "data_source": "toy",
        "n_events": 1,
        "n_injected": 0,
        "methods": ["cwola"],
        "efficiencies": [1.0],
        "n_windows": 3,
        "n_windows_skipped": 0,
        "best": summary.best_row(table),
        "global": out,
    }
    summary.write_markdown(record, table, tmp_path / "summary.md")
    assert "BumpHunter cross-check: failed" in (tmp_path / "summary.md").read_text()


def test_summary_line_when_it_works(tmp_path) -> None:
    fits, table = _table_and_fits()
    out = summary.global_significance(fits, table, n_toys=0, seed=1, n_jobs=1, bumphunter_pe=50)
    bh = out["bumphunter"]
    assert bh["status"] == "ok" and bh["n_pe"] == 50
    line = summary_markdown._bumphunter_line(bh)
    assert line.startswith("- BumpHunter cross-check (50 pseudo-experiments") and "Z_local" in line
    assert summary.global_significance(fits, table, n_toys=0, seed=1, n_jobs=1, bumphunter_pe=0)[
        "bumphunter"
    ]["status"].startswith("skipped")
