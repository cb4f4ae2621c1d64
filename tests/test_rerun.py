"""The README's "Rerun one stage" commands plan (and run) exactly the jobs they promise.

They run on this module's own copy of the session's finished tiny search (the ``tiny_run`` fixture
of test_workflow), so the real reruns here never disturb another module's run. Dry runs are
checked through Snakemake's job-stats table, which lists every planned rule with its job count.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests import test_workflow
from tests.conftest import TINY, snakemake, snakemake_env

#: The fixture, bound here so pytest finds it; module-scoped, so this module gets its own copy.
tiny_run = test_workflow.tiny_run

pytestmark = pytest.mark.workflow

RUN = Path("results") / TINY["run"]
WINDOW_IDS = ("w00", "w01", "w02")


def planned(text: str) -> dict[str, int]:
    """Rule -> number of jobs from the first 'Job stats:' table of a (dry-run) log."""
    lines = text.splitlines()
    if "Job stats:" not in lines:
        assert "Nothing to be done" in text, text[-3000:]
        return {}
    start = lines.index("Job stats:") + 3  # the header and the dashes follow
    jobs: dict[str, int] = {}
    for line in lines[start:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m is None or m[1] == "total":
            break
        jobs[m[1]] = int(m[2])
    assert jobs, text[-3000:]
    return jobs


def dry_run(workdir: Path, *args: str) -> tuple[dict[str, int], str]:
    proc = snakemake(workdir, "-n", *args, timeout=300)  # -n first: it ends --configfile's list
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    return planned(text), text


def test_forcerun_scores_of_one_target_plans_only_that_window(tiny_run):
    target = str(RUN / "windows" / "w01" / "cwola" / "scores.parquet")
    jobs, text = dry_run(tiny_run, target, "--forcerun", "scores")
    assert jobs == {"scores": 1}
    assert re.findall(r"wildcards: (.*)", text) == ["window=w01, method=cwola"]


def test_forcerun_regions_plans_regions_and_everything_downstream(tiny_run):
    jobs, _ = dry_run(tiny_run, "-R", "regions", "--quiet", "rules")
    n = len(WINDOW_IDS)
    assert jobs == {
        "regions": 1,
        "scores": n,
        "bumphunt": n,
        "evaluate": n,
        "summary": 1,
        "all": 1,
    }


def test_until_regions_stops_after_the_regions(tiny_run, tmp_path):
    # a newer features file makes the regions (and all below) outdated; --until plans regions only
    features = tiny_run / RUN / "data" / "features.parquet"
    before = features.stat()
    try:
        os.utime(features)
        jobs, _ = dry_run(tiny_run, "--until", "regions", "--quiet", "rules")
        assert jobs == {"regions": 1}
    finally:
        os.utime(features, ns=(before.st_atime_ns, before.st_mtime_ns))
    jobs, _ = dry_run(tiny_run, "--quiet", "rules")
    assert jobs == {}  # the finished run is whole again
    # a fresh run stops after the regions as well: the data stages, no training or fits
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    jobs, _ = dry_run(tmp_path, "--until", "regions", "--quiet", "rules")
    assert jobs == {"toy_events": 1, "features": 1, "regions": 1}


def test_forcerun_bumphunt_keeps_the_trained_scores(tiny_run):
    windows = tiny_run / RUN / "windows"
    scores = {w: (windows / w / "cwola" / "scores.parquet").stat().st_mtime_ns for w in WINDOW_IDS}
    fits = {w: (windows / w / "cwola" / "fit.json").stat().st_mtime_ns for w in WINDOW_IDS}
    proc = snakemake(tiny_run, "--cores", "2", "--forcerun", "bumphunt", timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    # the fits and the summary that reads them, no training and no evaluation
    assert planned(text) == {"bumphunt": len(WINDOW_IDS), "summary": 1, "all": 1}
    for w in WINDOW_IDS:
        assert (windows / w / "cwola" / "scores.parquet").stat().st_mtime_ns == scores[w], w
        assert (windows / w / "cwola" / "fit.json").stat().st_mtime_ns > fits[w], w


def job_running(workdir: Path, command: str) -> bool:
    """Whether a process running ``command`` in ``workdir`` exists (Linux /proc).

    The job's log file appears before Snakemake registers the job as started, so a Ctrl-C sent
    when the log appears can stop Snakemake before the job exists (nothing to resume).
    """
    for proc in Path("/proc").iterdir():
        try:
            if (
                command in (proc / "cmdline").read_bytes().decode(errors="replace")
                and (proc / "cwd").resolve() == workdir.resolve()
            ):
                return True
        except OSError:
            continue
    return False


def test_the_laptop_profile_is_found_and_an_interrupted_run_resumes(tiny_run):
    """Ctrl-C in the middle of a job, then the same command again: it reruns that job.

    Without the default profile's rerun-incomplete Snakemake would refuse to start (incomplete
    files); the profile must be found from the Snakefile, as for `snakemake --cores all`. Either
    the job is planned again or, if Snakemake stopped before it handled the killed job, the old
    output is intact (atomic writes): never a refusal, never a half-written file.
    """
    import signal
    import subprocess
    import sys
    import time

    from tests.test_workflow import REPO

    target = RUN / "windows" / "w01" / "cwola" / "scores.parquet"
    # the target first: after --forcerun (which takes several values) it would be read as a rule
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        str(target),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tiny_run),
        "--configfile",
        str(tiny_run / "config.yaml"),
        "--cores",
        "1",
        "--forcerun",
        "scores",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=snakemake_env()
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not job_running(tiny_run, "--window w01 --method cwola"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # the job's own process exists: Snakemake has started it
    out, _ = proc.communicate(timeout=120)
    assert "Using workflow specific profile" in out, out[-3000:]
    jobs, text = dry_run(tiny_run, str(target))
    assert "IncompleteFilesException" not in text
    if jobs.get("scores") != 1:
        # Snakemake may exit before it processes the killed job (a race inside its shutdown); the
        # job's atomic write then never touched the previous output, which must still be whole
        assert "Nothing to be done" in text, text[-3000:]
        import pandas as pd

        assert len(pd.read_parquet(tiny_run / target)) > 0
