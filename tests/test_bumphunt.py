"""The bump-hunt stage: per-fold cuts, binning, and a window hunt on a known spectrum."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anomalyhunt import bumphunt
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import Window
from tests.conftest import run_command

WINDOW = Window("w01", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))


def _scores(n_bkg: int = 60_000, n_sig: int = 0, seed: int = 0) -> pd.DataFrame:
    """Falling mjj spectrum, background scores U(0,1) with a per-fold offset, signal scores near 1."""
    rng = np.random.default_rng(seed)
    mjj = 2.9 + rng.exponential(0.45, 4 * n_bkg)
    mjj = mjj[mjj < 4.1][:n_bkg]
    sig_mjj = rng.normal(3.5, 0.08, n_sig)
    fold = rng.integers(0, 5, len(mjj) + n_sig)
    score = (
        np.concatenate([rng.random(len(mjj)), 1.0 + 0.01 * rng.random(n_sig)]) + fold
    )  # scale differs per fold
    m = np.concatenate([mjj, sig_mjj])
    return pd.DataFrame(
        {
            "event_id": np.arange(len(m)),
            "mjj": m,
            "region": WINDOW.region_of(m),
            "fold": fold,
            "label": np.r_[np.zeros(len(mjj)), np.ones(n_sig)].astype(np.int8),
            "score": score,
        }
    )


def test_cut_keeps_the_fraction_in_every_fold():
    scores = _scores()
    keep, thresholds = bumphunt.cut_mask(scores, 0.1)
    assert set(thresholds) == set(range(5))
    for f in range(5):
        sel = scores["fold"].to_numpy() == f
        assert keep[sel].mean() == pytest.approx(0.1, abs=0.002)
    all_kept, none = bumphunt.cut_mask(scores, 1.0)
    assert all_kept.all() and none == {}


def test_bin_width_must_divide_the_window():
    assert len(bumphunt.bin_edges(WINDOW, 0.05)) == 25
    with pytest.raises(AnomalyHuntError, match="bin_width"):
        bumphunt.bin_edges(WINDOW, 0.07)


def test_hunt_finds_a_signal_that_the_cut_enhances():
    scores = _scores(n_bkg=60_000, n_sig=300)
    no_cut, tight = bumphunt.hunt(scores, WINDOW, [1.0, 0.01], 0.05)
    assert tight["valid"] and no_cut["valid"]
    assert tight["z"] > 5 > no_cut["z"]
    assert tight["n_signal_sr"] > 250
    assert tight["limit"]["observed"] > tight["limit"]["expected"]


def test_background_only_hunt_is_quiet():
    results = bumphunt.hunt(_scores(seed=5), WINDOW, [1.0, 0.1, 0.01], 0.05)
    assert all(r["valid"] and r["z"] < 3 for r in results)


def test_cli_skipped_window_writes_a_skip_record(tmp_path):
    windows = {
        "windows": [
            {
                "id": "w01",
                "sr": [3.3, 3.7],
                "sb_low": [2.9, 3.3],
                "sb_high": [3.7, 4.1],
                "skipped": "12 events in the signal region",
            }
        ]
    }
    (tmp_path / "windows.json").write_text(json.dumps(windows))
    _scores().iloc[:0].to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "c.yaml").write_text("run: t\n")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.bumphunt",
            "--config",
            str(tmp_path / "c.yaml"),
            "--windows",
            str(tmp_path / "windows.json"),
            "--window",
            "w01",
            "--method",
            "cwola",
            "--scores",
            str(tmp_path / "scores.parquet"),
            "--out",
            str(tmp_path / "fit.json"),
            "--plot",
            str(tmp_path / "fits.png"),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["skipped"] == "12 events in the signal region" and fit["cuts"] == []
    assert not list(_fit_json_validator().iter_errors(fit))
    assert (tmp_path / "fits.png").exists()


def test_cli_unknown_window_is_one_line(tmp_path):
    (tmp_path / "windows.json").write_text(json.dumps({"windows": []}))
    (tmp_path / "c.yaml").write_text("run: t\n")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.bumphunt",
            "--config",
            str(tmp_path / "c.yaml"),
            "--windows",
            str(tmp_path / "windows.json"),
            "--window",
            "w07",
            "--method",
            "cwola",
            "--scores",
            "x.parquet",
            "--out",
            str(tmp_path / "fit.json"),
        ]
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("anomalyhunt: error: ") and "no window 'w07' (known: none)" in last


def test_default_options_are_the_schema_defaults():
    from anomalyhunt import config as cfgmod

    bh = cfgmod.validate({"run": "t"})["bumphunt"]
    assert bumphunt.HuntOptions.from_config(bh) == bumphunt.HuntOptions()


def test_function_choice_is_recorded_and_toys_use_it():
    from anomalyhunt import summary

    scores = _scores(seed=5)
    opts = bumphunt.HuntOptions(
        functions=("dijet5", "dijet3", "dijet4"), selection="wilks", background="fit"
    )
    results = bumphunt.hunt(scores, WINDOW, [1.0, 0.01], 0.05, opts)
    for r in results:
        assert r["valid"] and r["function"] in ("dijet3", "dijet4", "dijet5")
        choice = r["function_choice"]
        assert choice["selection"] == "wilks" and choice["chosen"] == r["function"]
        assert set(choice["fits"]) == {"dijet3", "dijet4", "dijet5"}
        assert len(r["fit"]["params"]) == {"dijet3": 3, "dijet4": 4, "dijet5": 5}[r["function"]]
    json.dumps(results, allow_nan=False)
    fits = [
        {
            "skipped": None,
            "cuts": results,
            "method": "m",
            "window": "w01",
            "sr": list(WINDOW.sr),
            "centre": 3.5,
        }
    ]
    tests, _ = summary.toy_tests(fits)
    assert [t["function"] for t in tests] == [r["function"] for r in results]
    # the default: the single dijet4 fit uncut (the same selection with one candidate, so no
    # test), the ratio family after a cut (its toys carry the uncut spectrum they multiply)
    uncut, cut = bumphunt.hunt(scores, WINDOW, [1.0, 0.01], 0.05)
    assert uncut["function"] == "dijet4" and uncut["function_choice"]["chosen"] == "dijet4"
    assert uncut["function_choice"]["tests"] == [] and set(uncut["function_choice"]["fits"]) == {
        "dijet4"
    }
    assert (
        cut["function"].startswith("ratio") and cut["function_choice"]["chosen"] == cut["function"]
    )
    fits[0]["cuts"] = [uncut, cut]
    tests, _ = summary.toy_tests(fits)
    assert (
        tests[0]["log_offset"] is None
        and len(tests[1]["log_offset"]) == len(cut["fit"]["edges"]) - 1
    )


def test_multibin_sr_and_xsec_limits():
    scores = _scores(n_bkg=60_000, n_sig=300)
    (one,) = bumphunt.hunt(scores, WINDOW, [0.01], 0.05)
    (four,) = bumphunt.hunt(
        scores, WINDOW, [0.01], 0.05, bumphunt.HuntOptions(sr_bins=4, luminosity_fb=50.0)
    )
    model = four["sr_model"]
    assert model["bins"] == 4 and len(model["b"]) == 4 and sum(model["n_obs"]) == four["n_obs"]
    assert sum(model["b"]) == pytest.approx(one["b"], rel=1e-9)
    assert sum(model["signal_shape"]) == pytest.approx(1.0)
    assert four["z"] > 5 and abs(four["z"] - one["z"]) < 0.3 * one["z"]
    xs = four["xsec_limit"]
    assert xs["luminosity_fb"] == 50.0
    assert xs["sigma_eff_acc_fb"]["observed"] == pytest.approx(four["limit"]["observed"] / 50.0)
    eff = four["signal_efficiency"]
    assert 0.8 < eff <= 1.0  # the test's signal scores sit above every background score
    assert xs["sigma_acc_fb"]["observed"] == pytest.approx(xs["sigma_eff_acc_fb"]["observed"] / eff)
    (three,) = bumphunt.hunt(scores, WINDOW, [0.01], 0.05, bumphunt.HuntOptions(sr_bins=3))
    assert three["sr_model"]["bins"] == 3 and three["z"] > 5  # uneven split: 3 + 3 + 2 fit bins
    with pytest.raises(AnomalyHuntError, match="sr_bins"):
        bumphunt.hunt(scores, WINDOW, [0.01], 0.05, bumphunt.HuntOptions(sr_bins=99))


def test_spurious_signal_flags_a_mismatched_function():
    """Curved background: dijet3 (no curvature term) fakes a signal, dijet5 does not."""
    from anomalyhunt.stats.spurious import truth_counts

    edges = bumphunt.bin_edges(WINDOW, 0.05)
    truth = truth_counts("dijet5", [1.0, 10.0, 5.0, 4.0, 2.0], edges, 2e6)
    rng = np.random.default_rng(3)
    mjj = np.concatenate(
        [
            rng.uniform(lo, hi, n)
            for lo, hi, n in zip(edges[:-1], edges[1:], rng.poisson(truth), strict=True)
        ]
    )
    scores = pd.DataFrame(
        {
            "mjj": mjj,
            "region": WINDOW.region_of(mjj),
            "fold": rng.integers(0, 5, mjj.size),
            "label": np.full(mjj.size, -1, dtype=np.int8),
            "score": rng.random(mjj.size),
        }
    )
    (bad,) = bumphunt.hunt(
        scores, WINDOW, [1.0], 0.05, bumphunt.HuntOptions(functions=("dijet3",), spurious=True)
    )
    (good,) = bumphunt.hunt(
        scores, WINDOW, [1.0], 0.05, bumphunt.HuntOptions(functions=("dijet5",), spurious=True)
    )
    assert bad["spurious"]["flag"] is True and abs(bad["spurious"]["ratio"]) > 0.5
    assert good["spurious"]["flag"] is False and abs(good["spurious"]["ratio"]) < 0.5
    assert bad["signal_efficiency"] is None and bad["xsec_limit"]["sigma_acc_fb"] is None


def _fit_json_validator():
    """The written-down fit.json schema (package data), itself checked against JSON Schema."""
    from importlib import resources

    import jsonschema

    schema = json.loads(
        resources.files("anomalyhunt").joinpath("schemas/fit.schema.json").read_text()
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("bumphunt_config", "labelled"),
    [
        ("{efficiencies: [1.0, 0.01, 0.001, 0.0002]}", True),
        (
            "{efficiencies: [1.0, 0.001, 0.0002], background: fit, functions: [dijet3, dijet4], sr_bins: 1}",
            False,
        ),
    ],
)
def test_cli_fit_json_follows_its_schema(tmp_path, bumphunt_config, labelled):
    """A real bump hunt's fit.json (rich, sparse and empty-sideband cuts) matches the schema; the
    sparse cut says so, in fit.json and in summary.md."""
    from anomalyhunt import summary

    scores = _scores(n_bkg=60_000, n_sig=30, seed=2)
    if not labelled:
        scores["label"] = np.int8(-1)
    scores.to_parquet(tmp_path / "scores.parquet")
    window = {
        "id": "w01",
        "sr": list(WINDOW.sr),
        "sb_low": list(WINDOW.sb_low),
        "sb_high": list(WINDOW.sb_high),
        "centre": 3.5,
        "skipped": None,
    }
    (tmp_path / "windows.json").write_text(json.dumps({"windows": [window]}))
    (tmp_path / "c.yaml").write_text(f"run: t\nbumphunt: {bumphunt_config}\n")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.bumphunt",
            "--config",
            str(tmp_path / "c.yaml"),
            "--windows",
            str(tmp_path / "windows.json"),
            "--window",
            "w01",
            "--method",
            "cwola",
            "--scores",
            str(tmp_path / "scores.parquet"),
            "--out",
            str(tmp_path / "fit.json"),
        ]
    )
    assert proc.returncode == 0, proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    validator = _fit_json_validator()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(fit)]
    assert not errors, errors
    uncut, *_, sparse, empty = fit["cuts"]
    assert uncut["valid"] and not uncut["fit"]["sparse"] and uncut["fit"]["sparse_action"] is None
    assert (
        sparse["valid"]
        and sparse["fit"]["sparse"]
        and "constrain at most" in sparse["fit"]["sparse_action"]
    )
    assert sparse["fit"]["n_free"] <= max(sparse["fit"]["max_free"], 2) < 4
    assert not empty["valid"] and "no events" in empty["reason"]
    # the schema is strict: an undocumented key or a wrong type is an error
    uncut["fit"]["undocumented"] = 1
    sparse["z"] = "large"
    assert len(list(validator.iter_errors(fit))) == 2
    del uncut["fit"]["undocumented"]
    sparse["z"] = None
    table = summary.local_table([fit])
    record = {
        "run": "t",
        "data_source": "toy",
        "n_events": len(scores),
        "n_injected": 30,
        "methods": ["cwola"],
        "efficiencies": [c["efficiency"] for c in fit["cuts"]],
        "n_windows": 1,
        "n_windows_skipped": 0,
        "best": summary.best_row(table),
        "global": {"toys": {"status": "not computed"}},
        "luminosity_fb": 100.0,
        "statistics": {},
    }
    summary.write_markdown(record, table, tmp_path / "summary.md")
    text = (tmp_path / "summary.md").read_text()
    assert "## Sparse spectra" in text and f"cwola w01 keep {100 * sparse['efficiency']:g}%" in text
