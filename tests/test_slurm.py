"""The SLURM profile: what it asks for (dry run), and the tiny configuration run through a real
single-node Slurm cluster, whose results must equal those of a local run.

The cluster tests need root (they apt-get install Slurm when missing and run its daemons); where
that is impossible they skip with the reason. Run only these with `pytest -m slurm -s`
(-s shows the measured times).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, snakemake_cmd
from tests.slurm_cluster import ClusterUnavailable, SlurmCluster
from tests.test_workflow import TINY

#: threads of a training job in the tiny config (the schema default unless TINY sets it)
THREADS = TINY.get("threads", 1)

pytestmark = pytest.mark.slurm

PROFILE = REPO / "workflow" / "profiles" / "slurm"
WINDOWS = ("w00", "w01", "w02")
# Wall-clock limits (s): Snakemake ignores SIGTERM while jobs run, hence timeout -k.
SLURM_RUN_LIMIT = 600


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def tiny_workdir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    return workdir


def require_plugin() -> None:
    """The profile names the slurm executor: without its plugin nothing here can run."""
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None, (
        "snakemake-executor-plugin-slurm is not installed: pip install -e '.[test]' (or '.[slurm]')"
    )


def job_blocks(text: str) -> dict[str, list[dict[str, str]]]:
    """Rule name -> the `resources:` of each of its jobs, from `snakemake -n` output."""
    blocks: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in text.splitlines():
        match = re.match(r"\s*(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
            continue
        match = re.match(r"\s*resources: (.*)", line)
        if match and rule:
            items = (item.split("=", 1) for item in match.group(1).split(", "))
            blocks.setdefault(rule, []).append({k: v for k, v in items})
            rule = None
    return blocks


# -- no cluster needed ---------------------------------------------------------------------------


def test_profile_resources_grow_with_attempt():
    """A retried job (attempt 2) must get more memory and time, or it fails the same way again."""
    for rule, resources in profile()["set-resources"].items():
        for key in ("mem_mb", "runtime"):
            expr = str(resources[key])
            first, second = (eval(expr, {"attempt": a, "threads": 2}) for a in (1, 2))
            assert second > first, f"{rule}.{key} = {expr} does not grow with attempt"
    assert profile()["retries"] >= 1


def test_dry_run_with_the_slurm_profile_lists_jobs_and_resources(tmp_path_factory):
    """The profile parses, groups the fits, and gives each rule the resources a user expects."""
    require_plugin()
    workdir = tiny_workdir(tmp_path_factory, "slurm-dry")
    # --cores 2: a dry run otherwise caps threads at 1, which would hide cpus_per_gpu = threads
    proc = subprocess.run(
        snakemake_cmd(workdir, "--workflow-profile", str(PROFILE), "-n", "--cores", "2"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.M))
    assert {
        k: counts.get(k)
        for k in ("toy_events", "features", "regions", "scores", "bumphunt", "summary")
    } == {
        "toy_events": "1",
        "features": "1",
        "regions": "1",
        "scores": "3",
        "bumphunt": "3",
        "summary": "1",
    }, text[-3000:]
    assert counts.get("evaluate") == "3", text[-3000:]
    # the three per-window fits and three evaluations (six jobs) form two group jobs
    # (group-components bumphunt: 5)
    assert text.count("Group job bumphunt") == 2, text[-3000:]

    partition = str(profile()["default-resources"]["slurm_partition"])
    blocks = job_blocks(text)
    assert len(blocks["scores"]) == 3 and len(blocks["bumphunt"]) == 3
    for res in blocks["scores"]:
        assert res["gpu"] == "1" and res["cpus_per_gpu"] == str(THREADS), res
        assert res["mem_mb"] == "8000" and res["runtime"] == "60", res
        assert res["slurm_partition"] == partition
    for res in blocks["bumphunt"] + blocks["evaluate"]:
        assert res["fit_slots"] == "1" and res["mem_mb"] == "2000" and res["runtime"] == "10", res
    (summary,) = blocks["summary"]
    assert summary["mem_mb"] == "4000" and summary["runtime"] == "60", summary
    # a rule's own mem_mb stays where the profile does not override it
    (toy,) = blocks["toy_events"]
    assert toy["mem_mb"] == "4000" and toy["runtime"] == "30", toy


# -- a real cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node cluster for this module, or a skip that says why there cannot be one."""
    require_plugin()
    partition = str(profile()["default-resources"]["slurm_partition"])
    slurm = SlurmCluster(tmp_path_factory.mktemp("slurm-state"), partition=partition)
    try:
        slurm.start()
    except ClusterUnavailable as exc:
        print(f"\nSKIPPING the SLURM cluster tests: {exc}", file=sys.stderr)
        pytest.skip(f"no Slurm cluster on this machine: {exc}")
    print(f"\nSlurm cluster: node {slurm.node} idle {slurm.start_seconds:.1f} s after start")
    try:
        yield slurm
    finally:
        slurm.stop()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict:
    """The tiny configuration through Slurm; it starts at once (the local run it is compared with,
    `tiny_master`, is asked for only by that comparison, so it never delays the Slurm run)."""
    slurm_dir = tiny_workdir(tmp_path_factory, "tiny-slurm")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    # --max-threads 2: the summary rule asks for 4 threads, more than this node's CPUs
    # (the local run caps it the same way, through --cores 2).
    slurm = subprocess.run(
        [
            "timeout",
            "-k",
            "30",
            str(SLURM_RUN_LIMIT),
            *snakemake_cmd(
                slurm_dir,
                "--workflow-profile",
                str(PROFILE),
                "--max-threads",
                "2",
                "--slurm-keep-successful-logs",
            ),
        ],
        capture_output=True,
        text=True,
        cwd=slurm_dir,
        env=env,
        timeout=SLURM_RUN_LIMIT + 60,
    )
    print(f"\ntiny config through Slurm: {time.monotonic() - t0:.0f} s (rc {slurm.returncode})")
    return {"cluster": cluster, "slurm_dir": slurm_dir, "slurm": slurm}


def test_the_workflow_runs_through_slurm(runs):
    proc = runs["slurm"]
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"rc {proc.returncode}\n{text[-6000:]}\n{runs['cluster'].logs()}"
    run_id = re.search(r"SLURM run ID: (\S+)", text).group(1)
    jobs = [j for j in runs["cluster"].jobs() if j.get("JobName") == run_id]
    rules = sorted(re.sub(r"_wildcards_.*", "", j["Comment"]) for j in jobs)
    # every stage was an sbatch job; the three fits and three evaluations shared two (the
    # bumphunt group, group-components 5), whatever way Snakemake splits them
    groups = [r for r in rules if r.startswith("rule_bumphunt_")]
    assert len(groups) == 2 and any("evaluate" in g for g in groups), rules
    assert sorted(r for r in rules if r not in groups) == sorted(
        [
            "rule_toy_events",
            "rule_features",
            "rule_regions",
            "rule_scores",
            "rule_scores",
            "rule_scores",
            "rule_summary",
        ]
    ), rules
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}, jobs
    for job in jobs:
        gpu = "gpu:1" in job.get("TresPerJob", "")
        assert gpu == job["Comment"].startswith("rule_scores"), job
    logs = list((runs["slurm_dir"] / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= {j["JobId"] for j in jobs}, logs


def test_slurm_and_local_results_are_identical(runs, tiny_master):
    assert runs["slurm"].returncode == 0, "the Slurm run failed (see the test above)"
    slurm_out = runs["slurm_dir"] / "results" / TINY["run"]
    local_out = tiny_master / "results" / TINY["run"]
    slurm_summary = json.loads((slurm_out / "summary.json").read_text())
    local_summary = json.loads((local_out / "summary.json").read_text())
    assert slurm_summary["local"] == local_summary["local"]
    assert slurm_summary["global"] == local_summary["global"]
    assert slurm_summary["best"] == local_summary["best"]
    for window in WINDOWS:
        for_window = Path("windows") / window / "cwola" / "fit.json"
        assert json.loads((slurm_out / for_window).read_text()) == json.loads(
            (local_out / for_window).read_text()
        ), window
