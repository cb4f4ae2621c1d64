from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
SHARED_LHCO = REPO.parent / "shared" / "data" / "lhco-rnd-signal-region"

#: The tiny search of the Snakemake catalog's convention (.test/config/config.yaml).
TINY = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """Snakemake on this checkout's workflow in `workdir`, with `workdir`/config.yaml first in
    --configfile (args may continue that list)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]


def snakemake_env() -> dict[str, str]:
    """The environment of a test's local Snakemake: without a Slurm controller to wait for
    (tests/no-controller.slurm.conf says why). The Slurm tests build their own."""
    return dict(
        os.environ,
        SLURM_CONF=str(REPO / "tests" / "no-controller.slurm.conf"),
        PYTHONUNBUFFERED="1",
    )


def snakemake(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` on its own config.yaml, capturing output."""
    return subprocess.run(
        snakemake_cmd(workdir, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=snakemake_env(),
    )


def run_command(
    args: list[str], cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run a package command the way a rule does (python -m ...), capturing output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def repo() -> Path:
    return REPO


def _shared_run(
    factory: pytest.TempPathFactory, name: str, config: dict, *args: str, timeout: float = 900
) -> tuple[Path, int]:
    """Snakemake run once per test session in a folder shared by every pytest-xdist worker: the
    first worker to get the lock runs it, the others wait and reuse it. Returns the folder and
    Snakemake's exit code (its stderr is in snakemake.stderr there)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    workdir = base / name
    with FileLock(str(workdir) + ".lock"):
        done = workdir / "returncode"
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            (workdir / "config.yaml").write_text(yaml.safe_dump(config))
            proc = snakemake(workdir, "--cores", "2", *args, timeout=timeout)
            (workdir / "snakemake.stderr").write_text(proc.stderr)
            done.write_text(str(proc.returncode))
    return workdir, int(done.read_text())


@pytest.fixture(scope="session")
def tiny_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny search, finished once per test session and shared by every pytest-xdist worker.

    Read it, never change it: a test that reruns anything works on `copy_run(tiny_master, ...)`.
    """
    workdir, rc = _shared_run(tmp_path_factory, "tiny-master", TINY)
    assert rc == 0, (workdir / "snakemake.stderr").read_text()[-5000:]
    return workdir


#: The stage-6 branches at test size (.test/config/branches.yaml), one block per branch target.
BRANCHES = yaml.safe_load((REPO / ".test" / "config" / "branches.yaml").read_text())


@pytest.fixture(scope="session")
def branch_targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage-6 branch target made by one Snakemake (one start-up instead of nine), once per
    session and shared like `tiny_master`. --keep-going: a branch that fails fails only its own
    test (`branch_output`)."""
    config = {**TINY, **BRANCHES}
    workdir, _ = _shared_run(
        tmp_path_factory, "branch-targets", config, "--keep-going", *BRANCHES, timeout=1800
    )
    return workdir


def branch_output(workdir: Path, branch: str) -> Path:
    """The branch's output folder in `branch_targets`; fails with its log if it has no metrics."""
    out = workdir / "results" / TINY["run"] / branch
    if not (out / "metrics.json").exists():
        logs = sorted((workdir / "results" / TINY["run"] / "logs").glob(f"{branch}*"))
        text = "".join(f.read_text()[-4000:] for f in logs if f.is_file())
        stderr = (workdir / "snakemake.stderr").read_text()[-3000:]
        pytest.fail(f"branch {branch} wrote no metrics.json\n{text}\n{stderr}")
    return out


def copy_run(source: Path, dest: Path) -> Path:
    """A finished workflow folder copied with its Snakemake state and file times (so it is
    finished there too)."""
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
    for marker in ("returncode", "snakemake.stderr"):  # _shared_run's, not the workflow's
        (dest / marker).unlink(missing_ok=True)
    return dest


#: Files that run longest (waiting on Slurm, or whole Snakemake searches), in the order they
#: should start: pytest-xdist hands out whole files in collection order (--dist loadfile
#: --no-loadscope-reorder; by default it reorders files by their number of tests, which started
#: the Slurm test 14 minutes into a 22-minute run), so one of them is never the last thing running.
LONGEST_FIRST = (
    "test_slurm.py",
    "test_sensitivity.py",
    "test_lhco_raw_workflow.py",
    "test_rerun.py",
    "test_workflow.py",
    "test_pythia_workflow.py",
    "test_unfolding.py",
    "test_anode_cathode.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within files
