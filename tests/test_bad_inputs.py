"""Bad inputs (issue 12): each one stops with one clear line, runs no code and leaves no stale result."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError
from tests.conftest import run_command


class _RunsCommand:
    """Unpickling this runs a shell command: what a hostile HDF5 file can carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (self.command,))


def lhco_frame(n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.uniform(10, 1000, n) for c in LHCO_COLUMNS})


def write_h5(df: pd.DataFrame, path, **kw) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about pickled object columns
        df.to_hdf(path, key="df", mode="w", **kw)


def test_pickled_column_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    df = lhco_frame()
    df["payload"] = [_RunsCommand(f"touch {marker}")] * len(df)
    write_h5(df, tmp_path / "evil.h5", format="fixed")
    from anomalyhunt.data.files import read_events

    with pytest.raises(AnomalyHuntError, match="payload") as err:
        read_events(tmp_path / "evil.h5")
    assert "pickle" in str(err.value)
    assert not marker.exists()
    # the user's path: one line, exit 2, nothing run, nothing written
    proc = run_command(
        [
            "-m",
            "anomalyhunt.data",
            "features",
            "--input",
            str(tmp_path / "evil.h5"),
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("anomalyhunt: error:")
    assert "payload" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "f.parquet").exists()


def test_pickled_attribute_is_never_unpickled(tmp_path):
    """PyTables unpickles attributes as soon as a node is opened: they are checked first."""
    marker = tmp_path / "ran"
    write_h5(lhco_frame(), tmp_path / "evil.h5", format="fixed")
    with warnings.catch_warnings(), pd.HDFStore(tmp_path / "evil.h5", mode="a") as store:
        warnings.simplefilter("ignore")
        store.get_storer("df").attrs.note = _RunsCommand(f"touch {marker}")
    assert not marker.exists()
    from anomalyhunt.data import lhco, lhco_raw
    from anomalyhunt.data.files import read_events
    from anomalyhunt.export import read_table

    for read in (read_events, lhco.read_features_h5, lhco_raw.n_events, read_table):
        with pytest.raises(AnomalyHuntError, match="'note'"):
            read(tmp_path / "evil.h5")
    assert not marker.exists()


def test_raw_lhco_file_with_pickled_column_is_refused(tmp_path):
    from anomalyhunt.data import lhco_raw

    marker = tmp_path / "ran"
    pt, eta, phi, label = lhco_raw.synthetic_events(3, seed=1)
    values = np.stack([pt, eta, phi], axis=2).reshape(3, lhco_raw.N_PARTICLE_COLUMNS)
    df = pd.DataFrame(values)
    df[lhco_raw.N_PARTICLE_COLUMNS] = [_RunsCommand(f"touch {marker}")] * 3
    write_h5(df, tmp_path / "raw.h5", format="fixed")
    with pytest.raises(AnomalyHuntError, match="2100"):
        lhco_raw.read_rows(tmp_path / "raw.h5", 0, 3)
    assert not marker.exists()


def test_numeric_hdf5_files_still_read(tmp_path):
    from anomalyhunt.data.files import read_events

    df = lhco_frame()
    df["label"] = np.int8(0)
    for fmt in ("fixed", "table"):
        write_h5(df, tmp_path / f"{fmt}.h5", format=fmt)
        got = read_events(tmp_path / f"{fmt}.h5")
        pd.testing.assert_frame_equal(got, df, check_dtype=False)


# --- case 4: a non-numeric column ------------------------------------------------------------


def test_non_numeric_column_is_one_line_naming_it(tmp_path):
    from anomalyhunt.data.features import compute_features

    df = lhco_frame()
    df["mj1"] = df["mj1"].astype(str)
    df.loc[3, "mj1"] = "n/a"
    with pytest.raises(AnomalyHuntError, match="column 'mj1' holds .* values, not numbers.*'n/a'"):
        compute_features(df, source="x")
    write_h5(df, tmp_path / "text.h5", format="table")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.data",
            "features",
            "--input",
            str(tmp_path / "text.h5"),
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'mj1'" in proc.stderr and "not numbers" in proc.stderr


# --- case 5: runs that tested nothing --------------------------------------------------------


def test_label_outside_minus1_0_1_is_refused(tmp_path):
    df = lhco_frame()
    df["label"] = 0
    df.loc[[2, 5], "label"] = 7
    write_h5(df, tmp_path / "labels.h5", format="fixed")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.data",
            "features",
            "--input",
            str(tmp_path / "labels.h5"),
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds 7 in 2 events" in proc.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_empty_file_is_refused_at_the_features_stage(tmp_path):
    write_h5(lhco_frame().iloc[:0], tmp_path / "empty.h5", format="fixed")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.data",
            "features",
            "--input",
            str(tmp_path / "empty.h5"),
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    assert proc.returncode == 2 and "holds 0 events" in proc.stderr
    assert not (tmp_path / "f.parquet").exists()


def _features(n: int, mjj_lo: float = 2.6, mjj_hi: float = 6.0, seed: int = 0) -> pd.DataFrame:
    from anomalyhunt import FEATURE_COLUMNS

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.uniform(0.1, 0.9, n) for c in FEATURE_COLUMNS})
    df["mjj"] = rng.uniform(mjj_lo, mjj_hi, n)
    df["label"] = np.int8(0)
    return df


def test_too_few_events_or_no_usable_window_stop_the_regions_stage():
    from anomalyhunt import config as cfgmod
    from anomalyhunt import regions

    config = cfgmod.validate({})
    with pytest.raises(AnomalyHuntError, match="50 events, fewer than the 600"):
        regions.build(_features(50), config)
    # enough events, but none inside the scan: every window would be skipped
    with pytest.raises(AnomalyHuntError, match="all 11 windows .* nothing could be tested"):
        regions.build(_features(5000, 1.0, 2.0), config)


def _run_summary(tmp_path, fits, window_ids, toys, monkeypatch):
    import json

    import yaml

    from anomalyhunt import cli, summary

    monkeypatch.setattr(
        summary, "bumphunter_check", lambda *a, **k: {"status": "skipped in this test"}
    )
    run = tmp_path / "results" / "r"
    (run / "windows").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"run": "r", "summary": {"toys": toys}}))
    meta = {
        "n_events": 1000,
        "n_injected": 0,
        "windows": [{"id": w, "skipped": None} for w in window_ids],
    }
    (run / "windows.json").write_text(json.dumps(meta))
    paths = []
    for f in fits:
        p = run / "windows" / f["window"] / f["method"] / "fit.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(f))
        paths.append(str(p))
    argv = [
        "--config",
        str(config),
        "--windows",
        str(run / "windows.json"),
        "--fits",
        *paths,
        "--out-dir",
        str(run),
        "--jobs",
        "1",
    ]
    return cli.run(summary.main, argv), run


def test_toys_0_says_so_in_summary_md(tmp_path, monkeypatch):
    from tests.test_summary_plots import make_fits

    fits = make_fits(n_windows=3)
    rc, run = _run_summary(tmp_path, fits, ["w00", "w01", "w02"], 0, monkeypatch)
    assert rc == 0
    md = (run / "summary.md").read_text()
    assert "global significance from toys: not computed (summary.toys = 0)" in md
    assert "Gross-Vitells estimate: not computed" in md


def test_stale_windows_of_an_earlier_scan_are_named_and_marked(tmp_path, monkeypatch):
    from tests.test_summary_plots import make_fits

    fits = make_fits(n_windows=5)
    rc, run = _run_summary(tmp_path, fits, [f"w{k:02d}" for k in range(5)], 50, monkeypatch)
    assert rc == 0 and "stale" not in (run / "summary.md").read_text()
    # the scan is narrowed to three windows: w03 and w04 stay on disk from the first run
    rc, run = _run_summary(tmp_path, fits[:3], ["w00", "w01", "w02"], 50, monkeypatch)
    assert rc == 0
    md = (run / "summary.md").read_text()
    assert "**stale outputs**: w03, w04" in md
    assert (run / "windows" / "w03" / "STALE.md").exists() and (
        run / "windows" / "w04" / "STALE.md"
    ).exists()
    assert not (run / "windows" / "w00" / "STALE.md").exists()
    import json

    assert json.loads((run / "summary.json").read_text())["stale_windows"] == ["w03", "w04"]
    # widened again: the note goes
    rc, run = _run_summary(tmp_path, fits, [f"w{k:02d}" for k in range(5)], 50, monkeypatch)
    assert not (run / "windows" / "w03" / "STALE.md").exists()


def test_summary_where_nothing_was_tested_exits_non_zero(tmp_path, monkeypatch):
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
    rc, run = _run_summary(tmp_path, fits, ["w00", "w01"], 50, monkeypatch)
    assert rc == 2
    assert "NOTHING WAS TESTED" in (run / "summary.md").read_text()


# --- cases 2 and 3: run names, dry runs and --config values ----------------------------------

TINY_DRY = {"run": "tiny", "regions": {"scan": {"min": 2.5, "max": 4.5}}}


def _snakemake_n(workdir, *args: str):
    import yaml

    from tests.conftest import snakemake

    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_DRY))
    return snakemake(workdir, "-n", *args, timeout=300)


def _written(workdir) -> list[str]:
    """Files in ``workdir`` besides its config.yaml and Snakemake's own .snakemake/ bookkeeping."""
    out = []
    for p in workdir.rglob("*"):
        rel = p.relative_to(workdir)
        if p.is_file() and rel.parts[0] != ".snakemake" and str(rel) != "config.yaml":
            out.append(str(rel))
    return sorted(out)


@pytest.mark.parametrize("name", [".", "..", "a/b", "../x"])
def test_run_names_that_leave_results_are_refused(name):
    from anomalyhunt import config as cfgmod

    with pytest.raises(AnomalyHuntError, match="run"):
        cfgmod.validate({"run": name})


@pytest.mark.workflow
def test_dry_run_writes_nothing_and_dotdot_is_refused(tmp_path):
    proc = _snakemake_n(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _written(tmp_path) == [], "a dry run must write nothing"
    proc = _snakemake_n(tmp_path, "--config", "run=..")
    assert proc.returncode != 0
    assert "not a plain folder name" in proc.stdout + proc.stderr
    assert _written(tmp_path) == []


def readme_config_examples() -> list[str]:
    import re

    from tests.conftest import REPO

    found = []
    for line in (REPO / "README.md").read_text().splitlines():
        for match in re.finditer(r"snakemake [^`#]*?--config (.+?)(?:`|\s+#|$)", line):
            found.append(match.group(1).strip())
    return found


def test_readme_has_config_examples():
    assert len(readme_config_examples()) >= 2


@pytest.mark.workflow
@pytest.mark.parametrize("example", readme_config_examples())
def test_every_readme_config_example_dry_runs(tmp_path, example):
    """Each `--config` example of the README, as a dry run of a tiny search."""
    import shlex

    proc = _snakemake_n(tmp_path, "--config", *shlex.split(example))
    assert proc.returncode == 0, (example, (proc.stdout + proc.stderr)[-3000:])
    assert _written(tmp_path) == []


def test_command_line_strings_become_the_types_the_schema_wants():
    from anomalyhunt import config as cfgmod

    given = {
        "summary": {"toys": "5000"},
        "output": {"root": "true"},
        "seed": "7",
        "bumphunt": {"efficiencies": "[1.0, 0.1]", "bin_width": "0.1", "sr_bins": "2"},
        "data": {"source": "file", "file": {"path": "x.h5", "tree": "null"}},
    }
    config = cfgmod.validate(cfgmod.coerce_strings(given))
    assert config["summary"]["toys"] == 5000 and config["output"]["root"] is True
    assert config["seed"] == 7 and config["bumphunt"]["efficiencies"] == [1.0, 0.1]
    assert config["bumphunt"]["bin_width"] == 0.1 and config["data"]["file"]["tree"] is None
    assert config["data"]["file"]["path"] == "x.h5"


# --- case 6: cross-field checks when the config is loaded ------------------------------------


@pytest.mark.parametrize(
    ("settings", "keys"),
    [
        (
            {"bumphunt": {"sr_bins": 9}},
            ["bumphunt.sr_bins", "regions.sr_width", "bumphunt.bin_width"],
        ),
        (
            {"bumphunt": {"bin_width": 0.5, "sr_bins": 1}},
            ["bumphunt.bin_width", "regions.sr_width"],
        ),
        ({"bumphunt": {"bin_width": 0.03}}, ["bumphunt.bin_width", "regions.sr_width"]),
        (
            {"regions": {"n_inject": 5000}, "data": {"toy": {"n_signal": 4000}}},
            ["regions.n_inject", "data.toy.n_signal"],
        ),
        ({"regions": {"n_inject": 200_000}, "data": {"source": "lhco"}}, ["regions.n_inject"]),
    ],
)
def test_cross_field_errors_stop_at_load(tmp_path, settings, keys):
    import yaml

    from anomalyhunt import config as cfgmod

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(AnomalyHuntError) as err:
        cfgmod.load(path)
    message = str(err.value)
    assert "\n" not in message
    for key in keys:
        assert key in message
