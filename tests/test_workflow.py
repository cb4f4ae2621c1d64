"""The whole DAG on a tiny configuration, run by Snakemake in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import (  # noqa: F401 (TINY re-exported)
    REPO,
    TINY,
    copy_run,
    snakemake,
    snakemake_env,
)


@pytest.fixture(scope="module")
def tiny_run(tiny_master, tmp_path_factory) -> Path:
    """This module's own copy of the session's finished tiny search."""
    return copy_run(tiny_master, tmp_path_factory.mktemp("tiny"))


@pytest.mark.workflow
def test_tiny_dag_produces_a_summary(tiny_run):
    out = tiny_run / "results" / "tiny"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("run", "n_events", "n_injected", "methods", "best", "global", "local"):
        assert key in summary
    assert summary["n_injected"] == 600
    assert summary["methods"] == ["cwola"]
    assert summary["n_windows"] == 3
    assert len(summary["local"]) == 3 * 2
    best = summary["best"]
    assert best is not None and best["z"] > 0
    toys = summary["global"]["toys"]
    assert toys["n_toys"] == 200 and 0 <= toys["p_global"] <= 1
    assert "z_global" in summary["global"]["gross_vitells"]
    for w in ("w00", "w01", "w02"):
        fit = json.loads((out / "windows" / w / "cwola" / "fit.json").read_text())
        assert [c["efficiency"] for c in fit["cuts"]] == [1.0, 0.1]
        assert (out / "windows" / w / "cwola" / "fits.png").stat().st_size > 1000
    assert (out / "plots" / "local_z.png").stat().st_size > 1000
    metrics = json.loads((out / "windows" / "w01" / "evaluation" / "metrics.json").read_text())
    assert "cwola" in json.dumps(metrics)
    assert (out / "windows" / "w01" / "evaluation" / "roc_sic.png").stat().st_size > 1000
    assert "Z_local" in (out / "summary.md").read_text()
    for log in ("toy_events", "features", "regions", "summary"):
        assert (out / "logs" / f"{log}.log").exists()


@pytest.mark.workflow
def test_the_injected_signal_window_is_the_most_significant(tiny_run):
    summary = json.loads((tiny_run / "results" / "tiny" / "summary.json").read_text())
    # 600 signal events at 3.5 TeV: the window centred there (w01, SR 3.3-3.7 TeV) must lead
    assert summary["best"]["window"] == "w01"
    assert summary["best"]["z"] > 3


@pytest.mark.workflow
def test_finished_run_has_nothing_to_do(tiny_run):
    proc = snakemake(tiny_run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_changing_summary_config_reruns_only_the_summary(tiny_run):
    (tiny_run / "changed.yaml").write_text(yaml.safe_dump({"summary": {"toys": 300}}))
    proc = snakemake(
        tiny_run, str(tiny_run / "changed.yaml"), "-n", "--quiet", "rules", timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert "summary" in text
    for rule in ("toy_events", "features", "regions", "scores", "bumphunt"):
        assert f"\n{rule} " not in text and not text.startswith(f"{rule} "), text


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=snakemake_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


def test_invalid_config_stops_the_workflow_with_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text("regions: {step: -1}\n")
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "invalid value at 'regions.step'" in text


@pytest.mark.workflow
def test_report_collects_the_plots(tiny_run):
    proc = snakemake(tiny_run, "--report", str(tiny_run / "report.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tiny_run / "report.html").read_text(errors="replace")
    assert "1. Summary" in html and "2. Bump hunt per window" in html  # Summary first
    assert "SR " in html and "TeV (w" in html  # windows labelled by mass
    assert "local_z.csv" in html  # the table of every test
    # the front page is the result: the run, the largest excess and its global significance
    summary = json.loads((tiny_run / "results" / "tiny" / "summary.json").read_text())
    best, toys = summary["best"], summary["global"]["toys"]
    assert "anomalyhunt search" in html and ">tiny</tt>" in html
    assert f"SR {best['sr_lo']:.2f}-{best['sr_hi']:.2f} TeV" in html
    assert f"Z_local = {best['z']:.2f}" in html
    assert f"Z_global {'&gt;' if toys['is_upper_bound'] else '='} {toys['z_global']:.2f}" in html
