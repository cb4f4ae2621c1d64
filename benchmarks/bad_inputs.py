"""Run every bad input of issue 12 the way a user meets it and print a Markdown table.

    python benchmarks/bad_inputs.py            # about a minute on 2 cores

Each case runs in its own temporary folder, through the package's commands or a Snakemake dry
run: case, exit code, the first line the user sees (the error line; for a run that succeeds, the
line of summary.md that matters) and the files left behind besides the inputs (Snakemake's own
.snakemake/ not counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from anomalyhunt.data.features import LHCO_COLUMNS  # noqa: E402


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (self.command,))


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.uniform(10, 1000, n) for c in LHCO_COLUMNS})


def _h5(df: pd.DataFrame, path: Path, fmt: str = "fixed") -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.to_hdf(path, key="df", mode="w", format=fmt)


_BEFORE: set[Path] = set()  # the files there just before the last command: its inputs


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    _BEFORE.clear()
    _BEFORE.update(p for p in cwd.rglob("*") if p.is_file())
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )


def _features(d: Path, name: str) -> subprocess.CompletedProcess:
    return _run(
        ["-m", "anomalyhunt.data", "features", "--input", name, "--out", "out/features.parquet"], d
    )


def _dry(d: Path, *config: str) -> subprocess.CompletedProcess:
    (d / "config.yaml").write_text(
        yaml.safe_dump({"run": "tiny", "regions": {"scan": {"min": 2.5, "max": 4.5}}})
    )
    return _run(
        [
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(d),
            "--configfile",
            str(d / "config.yaml"),
            "-n",
            *(["--config", *config] if config else []),
        ],
        d,
    )


def _summary(
    d: Path, fits: list[dict], windows: list[str], toys: int
) -> subprocess.CompletedProcess:
    run = d / "results" / "r"
    (run / "windows").mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"run": "r", "summary": {"toys": toys}}))
    meta = {
        "n_events": 1000,
        "n_injected": 0,
        "windows": [{"id": w, "skipped": None} for w in windows],
    }
    (run / "windows.json").write_text(json.dumps(meta))
    paths = []
    for f in fits:
        p = run / "windows" / f["window"] / f["method"] / "fit.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(f))
        paths.append(str(p.relative_to(d)))
    return _run(
        [
            "-m",
            "anomalyhunt.summary",
            "--config",
            "config.yaml",
            "--windows",
            "results/r/windows.json",
            "--fits",
            *paths,
            "--out-dir",
            "results/r",
            "--jobs",
            "1",
        ],
        d,
    )


def _md_line(d: Path, needle: str) -> str:
    md = d / "results" / "r" / "summary.md"
    return (
        next((ln for ln in md.read_text().splitlines() if needle in ln), "") if md.exists() else ""
    )


def case_pickled_column(d: Path):
    df = _frame(20)
    df["payload"] = [_RunsCommand(f"touch {d / 'CODE_RAN'}")] * 20
    _h5(df, d / "evil.h5")
    return _features(d, "evil.h5"), ""


def case_pickled_attribute(d: Path):
    _h5(_frame(20), d / "evil.h5")
    with warnings.catch_warnings(), pd.HDFStore(d / "evil.h5", mode="a") as store:
        warnings.simplefilter("ignore")
        store.get_storer("df").attrs.note = _RunsCommand(f"touch {d / 'CODE_RAN'}")
    return _features(d, "evil.h5"), ""


def case_run_dotdot(d: Path):
    return _dry(d, "run=.."), ""


def case_dry_run(d: Path):
    return _dry(d), "(dry run)"


def case_config_numbers(d: Path):
    return _dry(d, "summary={toys: 5000}"), "(dry run)"


def case_text_column(d: Path):
    df = _frame(20)
    df["mj1"] = df["mj1"].astype(str)
    df.loc[3, "mj1"] = "n/a"
    _h5(df, d / "text.h5", "table")
    return _features(d, "text.h5"), ""


def case_label_7(d: Path):
    df = _frame(20)
    df["label"] = 0
    df.loc[[2, 5], "label"] = 7
    _h5(df, d / "labels.h5")
    return _features(d, "labels.h5"), ""


def case_empty_file(d: Path):
    _h5(_frame(0), d / "empty.h5")
    return _features(d, "empty.h5"), ""


def case_50_events(d: Path):
    _h5(_frame(50), d / "small.h5")
    _features(d, "small.h5")
    (d / "config.yaml").write_text("{}\n")
    return _run(
        [
            "-m",
            "anomalyhunt.regions",
            "--config",
            "config.yaml",
            "--features",
            "out/features.parquet",
            "--out-events",
            "out/events.parquet",
            "--out-windows",
            "out/windows.json",
        ],
        d,
    ), ""


def case_toys_0(d: Path):
    from tests.test_summary_plots import make_fits

    proc = _summary(d, make_fits(n_windows=3), ["w00", "w01", "w02"], 0)
    return proc, _md_line(d, "global significance from toys")


def case_narrowed_scan(d: Path):
    from tests.test_summary_plots import make_fits

    fits = make_fits(n_windows=5)
    _summary(d, fits, [f"w{k:02d}" for k in range(5)], 50)
    proc = _summary(d, fits[:3], ["w00", "w01", "w02"], 50)
    return proc, _md_line(d, "stale outputs")


def case_nothing_tested(d: Path):
    fits = [
        {
            "window": w,
            "method": "cwola",
            "sr": [3.0, 3.4],
            "centre": 3.2,
            "skipped": "no scored events",
            "cuts": [],
        }
        for w in ("w00", "w01")
    ]
    return _summary(d, fits, ["w00", "w01"], 50), ""


def case_sr_bins(d: Path):
    return _dry(d, "bumphunt={sr_bins: 9}"), ""


def case_bin_width(d: Path):
    return _dry(d, "bumphunt={bin_width: 0.5, sr_bins: 1}"), ""


def case_n_inject(d: Path):
    return _dry(d, "regions={n_inject: 200000}"), ""


CASES: list[tuple[str, Callable]] = [
    ("1 HDF5 with a pickled column (runs `touch`)", case_pickled_column),
    ("1 HDF5 with a pickled attribute (runs `touch`)", case_pickled_attribute),
    ("2 `--config run=..` (dry run)", case_run_dotdot),
    ("2 plain dry run `snakemake -n`", case_dry_run),
    ("3 `--config summary='{toys: 5000}'` (dry run)", case_config_numbers),
    ("4 text in column mj1", case_text_column),
    ("5 label 7 in 2 events", case_label_7),
    ("5 empty file", case_empty_file),
    ("5 50 events (regions stage)", case_50_events),
    ("5 `summary.toys: 0`", case_toys_0),
    ("5 scan narrowed from 5 to 3 windows", case_narrowed_scan),
    ("5 no window gave a result", case_nothing_tested),
    ("6 `bumphunt.sr_bins: 9` (8 fit bins in the SR)", case_sr_bins),
    ("6 `bumphunt.bin_width: 0.5` (SR 0.4 TeV)", case_bin_width),
    ("6 `regions.n_inject: 200000` (pool 100000)", case_n_inject),
]


def _first_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("anomalyhunt: error:"):
            return ln
    for i, ln in enumerate(lines):  # Snakemake: the message follows "WorkflowError:"
        if ln.startswith("WorkflowError"):
            return lines[i + 1] if i + 1 < len(lines) else ln
    return ""


def _left(d: Path) -> str:
    new = sorted(
        str(p.relative_to(d))
        for p in d.rglob("*")
        if p.is_file() and p not in _BEFORE and ".snakemake" not in p.relative_to(d).parts
    )
    if not new:
        return "none"
    return ", ".join(new[:4]) + (f" (+{len(new) - 4} more)" if len(new) > 4 else "")


def main() -> None:
    rows = ["| case | exit | first line the user sees | files left behind |", "|---|---|---|---|"]
    for name, case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "out").mkdir()
            proc, shown = case(d)
            if (d / "CODE_RAN").exists():
                shown = "**CODE FROM THE FILE RAN** " + shown
            line = (shown or _first_line(proc) or "(nothing)").replace("|", "\\|")
            rows.append(f"| {name} | {proc.returncode} | {line} | {_left(d)} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
