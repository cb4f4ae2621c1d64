"""The summary's p0-scan and CLs-limit plots, drawn from synthetic fit.json-like results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import image
from scipy import stats

from anomalyhunt import plots, summary
from anomalyhunt.stats.functions import get_function
from anomalyhunt.stats.significance import z_fast

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bin_means(edges: np.ndarray, n_total: float) -> np.ndarray:
    mid = 0.5 * (edges[1:] + edges[:-1])
    return (
        n_total
        * get_function("dijet4").density(mid, np.array([1.0, 10.0, 5.0, 0.0]))
        * np.diff(edges)
    )


def make_fits(
    method: str = "cwola",
    efficiencies: tuple[float, ...] = (1.0, 0.1),
    n_windows: int = 6,
    bump: tuple[float, float] | None = None,
    seed: int = 0,
    bin_width: float = 0.05,
) -> list[dict]:
    """fit.json-like results of overlapping windows (SR 0.4 TeV, sidebands 0.4 TeV, step 0.2).

    The reference is the true mean (a perfect fit), so tests are not at the mercy of the fitter.
    Counts are drawn independently per window, as different per-window classifiers select
    different events. ``bump`` = (mjj centre, events before the cut) adds a narrow Gaussian signal.
    Limits are plausible stand-ins (no pyhf), enough for plotting.
    """
    rng = np.random.default_rng(seed)
    fits = []
    for k in range(n_windows):
        lo = round(3.0 + 0.2 * k, 6)
        edges = np.round(lo + bin_width * np.arange(round(1.2 / bin_width) + 1), 6)
        sr = [round(lo + 0.4, 6), round(lo + 0.8, 6)]
        in_sr = (edges[:-1] >= sr[0] - 1e-9) & (edges[1:] <= sr[1] + 1e-9)
        cuts = []
        for eff in efficiencies:
            mean = eff * _bin_means(edges, 2e3)
            sig = np.zeros_like(mean)
            if bump is not None:
                cdf = stats.norm.cdf(edges, bump[0], 0.04)
                sig = bump[1] * min(1.0, 20 * eff) * np.diff(cdf)
            counts = rng.poisson(mean + sig).astype(float)
            b = float(mean[in_sr].sum())
            sigma_b = 0.03 * b
            n_obs = float(counts[in_sr].sum())
            z = float(z_fast(np.array([n_obs]), np.array([b]), np.array([sigma_b]))[0])
            exp = 2.0 * np.sqrt(b + sigma_b**2)
            band = [exp * f for f in (0.55, 0.72, 1.0, 1.4, 1.9)]
            cuts.append(
                {
                    "efficiency": eff,
                    "n_obs": n_obs,
                    "valid": True,
                    "reason": None,
                    "b": b,
                    "sigma_b": sigma_b,
                    "z": z,
                    "p0": float(stats.norm.sf(z)),
                    "q0": z * z,
                    "n_signal_sr": None,
                    "limit": {
                        "observed": max(n_obs - b, 0.0) + exp,
                        "expected": band[2],
                        "expected_band": band,
                        "cl": 0.95,
                    },
                    "fit": {
                        "edges": edges.tolist(),
                        "counts": counts.tolist(),
                        "expected": mean.tolist(),
                        "sr": sr,
                        "params": [1.0, 10.0, 5.0, 0.0],
                        "valid": True,
                        "chi2": 20.0,
                        "ndf": 20,
                        "chi2_pvalue": 0.46,
                    },
                }
            )
        fits.append(
            {
                "window": f"w{k:02d}",
                "method": method,
                "sr": sr,
                "centre": round(lo + 0.6, 6),
                "skipped": None,
                "cuts": cuts,
            }
        )
    return fits


def _with_failures(fits: list[dict]) -> list[dict]:
    """A skipped window and a failed cut, as real runs have them."""
    fits = [dict(f) for f in fits]
    fits.append(
        {
            "window": "w99",
            "method": fits[0]["method"],
            "sr": [9.0, 9.4],
            "centre": 9.2,
            "skipped": "too few events",
            "cuts": [],
        }
    )
    bad = dict(
        fits[1]["cuts"][0],
        valid=False,
        reason="fit diverged",
        z=None,
        p0=None,
        limit=None,
        b=None,
        sigma_b=None,
    )
    fits[1] = dict(fits[1], cuts=[bad, *fits[1]["cuts"][1:]])
    return fits


def _check_png(path: Path, min_colours: int = 20) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 15_000, f"{path.name}: {len(data)} bytes"
    img = image.imread(path)[..., :3]
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert img.std() > 0.05
    assert len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)) >= min_colours
    return img


def test_p0_scan_and_limit_plots(tmp_path: Path) -> None:
    fits = _with_failures(make_fits(bump=(3.8, 400.0), seed=1) + make_fits(method="other", seed=2))
    table = summary.local_table(fits)
    p0_path = tmp_path / "plots" / "local_p0.png"
    lim_path = tmp_path / "plots" / "limits.png"
    plots.local_p0_scan(table, p0_path)
    plots.limit_scan(fits, lim_path)
    _check_png(p0_path)
    img = _check_png(lim_path)
    # the 1 and 2 sigma expected bands are drawn in green and yellow
    green = (img[..., 1] > 0.7) & (img[..., 0] < 0.2) & (img[..., 2] < 0.2)
    yellow = (img[..., 0] > 0.9) & (img[..., 1] > 0.7) & (img[..., 2] < 0.2)
    assert green.mean() > 0.01 and yellow.mean() > 0.01
    # atomic writes leave nothing else behind
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["limits.png", "local_p0.png"]


def test_plots_survive_empty_input(tmp_path: Path) -> None:
    fits = [
        {
            "window": "w00",
            "method": "cwola",
            "sr": [3.0, 3.4],
            "centre": 3.2,
            "skipped": "no scored events",
            "cuts": [],
        }
    ]
    table = summary.local_table(fits)
    plots.local_p0_scan(table, tmp_path / "p0.png")
    plots.limit_scan(fits, tmp_path / "lim.png")
    assert (tmp_path / "p0.png").stat().st_size > 1000
    assert (tmp_path / "lim.png").stat().st_size > 1000


def test_global_significance_per_method() -> None:
    """With two methods, each gets its own global significance: the bump only in the one that has it."""
    fits = make_fits("cwola", bump=(3.8, 400.0), seed=3) + make_fits("anode", seed=4)
    table = summary.local_table(fits)
    glob = summary.global_significance(fits, table, n_toys=300, seed=1, n_jobs=1, bumphunter_pe=0)
    per = glob["per_method"]
    assert set(per) == {"cwola", "anode"}
    assert per["cwola"]["z_local_max"] == glob["z_local_max"] > 4
    assert per["cwola"]["z_global"] > 2.5
    assert per["anode"]["z_global"] < 2
    # one method alone is less penalised than the combination of both
    assert per["cwola"]["p_global"] <= glob["toys"]["p_global"] + 1e-12


def test_summary_reports_function_choice_spurious_and_xsec_limits(tmp_path: Path) -> None:
    """Real bump-hunt results with every statistics option on reach the table, summary.md and plot."""
    from anomalyhunt import bumphunt
    from tests.test_bumphunt import WINDOW, _scores

    opts = bumphunt.HuntOptions(
        functions=("dijet3", "dijet4", "dijet5"),
        sr_bins=2,
        spurious=True,
        luminosity_fb=140.0,
        background="fit",
    )
    cuts = bumphunt.hunt(_scores(n_bkg=60_000, n_sig=300), WINDOW, [1.0, 0.01], 0.05, opts)
    fits = [
        {
            "method": "cwola",
            "window": "w01",
            "sr": list(WINDOW.sr),
            "centre": 3.5,
            "skipped": None,
            "cuts": cuts,
        }
    ]
    table = summary.local_table(fits)
    assert {"function", "spurious_ratio", "xsec_obs_fb", "signal_eff", "sr_bins"} <= set(
        table.columns
    )
    assert (table["sr_bins"] == 2).all() and table["spurious_ratio"].notna().all()
    np.testing.assert_allclose(table["xsec_obs_fb"], table["limit_obs"] / 140.0)
    out = summary.global_significance(fits, table, n_toys=50, seed=1, n_jobs=1, bumphunter_pe=0)
    record = {
        "run": "t",
        "data_source": "toy",
        "n_events": 1,
        "n_injected": 300,
        "methods": ["cwola"],
        "efficiencies": [1.0, 0.01],
        "n_windows": 1,
        "n_windows_skipped": 0,
        "best": summary.best_row(table),
        "global": out,
        "luminosity_fb": 140.0,
        "statistics": {
            "functions": ["dijet3", "dijet4", "dijet5"],
            "selection": "ftest",
            "selection_threshold": 0.05,
            "sr_bins": 2,
            "luminosity_fb": 140.0,
            "resolution": 0.05,
            "spurious": True,
        },
    }
    summary.write_markdown(record, table, tmp_path / "summary.md")
    text = (tmp_path / "summary.md").read_text()
    assert "chosen per window and cut among dijet3, dijet4, dijet5" in text
    assert "2 mjj bins" in text and "## 95% CLs upper limits" in text and "fb" in text
    assert "## Spurious signal" in text and "sigma x A <" in text
    # the report's front page carries the same tables, as reStructuredText docutils renders
    import docutils.core

    from anomalyhunt.summary_markdown import write_report_front

    write_report_front(record, table, tmp_path / "report.rst")
    html = docutils.core.publish_string(
        (tmp_path / "report.rst").read_text(),
        writer="html",
        settings_overrides={"report_level": 2, "halt_level": 2},  # any warning fails
    ).decode()
    assert "95% CLs upper limits" in html and "Spurious signal" in html
    limit = table.dropna(subset=["limit_obs"]).iloc[0]
    assert f"<td>{limit['limit_obs']:.0f} ({limit['limit_exp']:.0f})" in html  # a table cell
    plots.limit_scan(fits, tmp_path / "lim.png")
    assert (tmp_path / "lim.png").read_bytes()[:8] == PNG_MAGIC


def _refitted(fits: list[dict]) -> list[dict]:
    """``fits`` with the stage's own nominal fit (dijet4, one SR bin) in place of the true mean.

    The toys refit every test with the fitter, so the asymptotic Z they are compared with must
    come from that fitter's b and sigma_b too, not from an invented uncertainty.
    """
    from anomalyhunt import bumphunt

    opts = bumphunt.HuntOptions(sr_bins=1, background="fit", spurious=False)
    for f in fits:
        for c in f["cuts"]:
            edges, counts = np.asarray(c["fit"]["edges"]), np.asarray(c["fit"]["counts"])
            record, fit, _ = bumphunt.fit_background(edges, counts, tuple(f["sr"]), opts)
            b, sigma_b = fit.predict(*f["sr"])
            z = float(z_fast(np.array([c["n_obs"]]), np.array([b]), np.array([sigma_b]))[0])
            c.update(
                b=b,
                sigma_b=sigma_b,
                z=z,
                p0=float(stats.norm.sf(z)),
                q0=z * z,
                fit=record,
                function=record["function"],
            )
    return fits


def test_each_test_gets_a_local_p_from_its_own_toys() -> None:
    """The toy-calibrated local Z of every test sits next to its asymptotic Z (one SR bin with
    25 to 20,000 events, where the asymptotic formula holds well), test by test; a deficit stays
    at 0."""
    fits = _refitted(make_fits(efficiencies=(1.0, 0.01), seed=2))
    table = summary.local_table(fits)
    glob = summary.global_significance(fits, table, n_toys=2000, seed=1, n_jobs=1, bumphunter_pe=0)
    merged = summary.with_toy_z(table, glob["local_toys"])
    assert len(merged) == len(table) and merged["z_toys"].notna().all()
    assert (merged.loc[merged["z"] == 0, "z_toys"] == 0).all()
    moderate = merged[(merged["z"] > 0.2) & (merged["z"] < 2.5)]
    assert len(moderate) >= 5
    np.testing.assert_allclose(moderate["z_toys"], moderate["z"], atol=0.15)
    assert all(
        t["n_toys"] == 2000 and not t["is_lower_bound"] for t in glob["local_toys"] if t["z"] > 0
    )
