"""The sensitivity target: the search rerun per injected count and seed, and its curve."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from anomalyhunt import config as ah_config
from anomalyhunt import sensitivity
from tests.test_workflow import TINY, snakemake


def test_oracle_z_is_the_poisson_discovery_formula():
    # n = 150 over an exactly known b = 100: Z = sqrt(2 (n ln(n/b) - (n - b)))
    assert sensitivity.oracle_z(150, 100) == pytest.approx(
        math.sqrt(2 * (150 * math.log(1.5) - 50))
    )
    assert sensitivity.oracle_z(90, 100) == 0.0


def test_point_config_changes_only_seed_injection_toys_and_limits():
    base = ah_config.validate({**TINY, "sensitivity": {"toys": 123}})
    point = sensitivity.point_config(base, seed=7, n_inject=250)
    assert point["run"] == "tiny-sens-s7-i250"
    assert (point["seed"], point["regions"]["n_inject"], point["summary"]["toys"]) == (7, 250, 123)
    assert point["scores"] == base["scores"]
    # the points skip the CLs limits (the curve reads discovery Z only), nothing else of the search
    assert base["bumphunt"]["limits"] and not point["bumphunt"]["limits"]
    assert point["bumphunt"] == {**base["bumphunt"], "limits": False}
    # ... and what the curve never reads: BumpHunter's check, the per-window figures, ROOT copies
    assert base["summary"]["bumphunter_pe"] > 0 == point["summary"]["bumphunter_pe"]
    assert base["output"]["window_plots"] and not point["output"]["window_plots"]
    assert not point["output"]["root"]
    ah_config.validate(point)


def test_reach_is_the_lowest_count_whose_median_crosses_three():
    med = pd.DataFrame(
        {
            "method": ["cwola"] * 4 + ["idealized"] * 4,
            "n_inject": [0, 250, 500, 1000] * 2,
            "z_global_median": [0.1, 2.9, 3.1, 4.0, 0.2, 1.0, 1.5, 2.0],
        }
    )
    assert sensitivity.reach(med) == {"cwola": 500, "idealized": None}


@pytest.mark.workflow
def test_sensitivity_target_finds_the_injected_signal(tmp_path):
    # three points after the first, two at a time (as on a cluster)
    config = {
        **TINY,
        "sensitivity": {"injections": [0, 600], "seeds": [3, 4], "toys": 200, "points_at_once": 2},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "--cores", "2", "sensitivity")
    assert proc.returncode == 0, proc.stderr[-5000:]
    out = tmp_path / "results" / "tiny" / "sensitivity"
    for name in ("sensitivity.json", "sensitivity.md", "sensitivity.png", "points.csv"):
        assert (out / name).stat().st_size > 0
    result = json.loads((out / "sensitivity.json").read_text())
    assert sorted((p["seed"], p["n_inject"]) for p in result["points"]) == [
        (3, 0),
        (3, 600),
        (4, 0),
        (4, 600),
    ]
    points = {p["n_inject"]: p for p in result["points"] if p["seed"] == 3}
    # the window that holds the injected signal, its S/B from the point's own summary
    summary = json.loads((tmp_path / "results" / "tiny-sens-s3-i600" / "summary.json").read_text())
    uncut = next(
        r
        for r in summary["local"]
        if r["window"] == result["signal_window"] and r["efficiency"] == 1.0
    )
    s = uncut["n_signal_sr"]
    assert s > 300
    assert points[600]["s_over_b"] == pytest.approx(s / (uncut["n_obs"] - s))
    # physics: the injected signal is seen, the background-only point is not, the oracle bounds it
    assert points[600]["z_local"] > 3 > points[0]["z_local"]
    assert points[600]["z_oracle"] >= 0.8 * points[600]["z_local"]
    assert points[0]["s_over_b"] == 0
    # the points skip the CLs limits
    window = result["signal_window"]
    fit = tmp_path / "results" / "tiny-sens-s3-i600" / "windows" / window / "cwola" / "fit.json"
    assert all(c["limit"] is None for c in json.loads(fit.read_text())["cuts"])
    # nor draw the per-window figures, which the curve does not read
    assert not (fit.parent / "fits.png").exists()
    assert "Lowest injected count" in (out / "sensitivity.md").read_text()
