from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_LHCO = REPO.parent / "shared" / "data" / "lhco-rnd-signal-region"


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
