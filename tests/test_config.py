"""The config schema: defaults filled, bad values rejected with one clear line, envs in sync."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from anomalyhunt import config
from anomalyhunt.errors import AnomalyHuntError
from tests.conftest import REPO, run_command


def test_default_config_is_valid_and_complete():
    cfg = config.load(REPO / "config" / "config.yaml")
    assert cfg["data"]["source"] == "toy"
    assert cfg["regions"]["n_inject"] == 1000
    assert cfg["bumphunt"]["efficiencies"] == [1.0, 0.1, 0.01, 0.001]
    assert cfg["summary"]["toys"] >= 1000


def test_empty_config_gets_every_default():
    cfg = config.validate({})
    assert cfg["regions"]["folds"] == 5
    assert cfg["data"]["toy"]["signal"] == {"mjj": 3.5, "mx": 0.5, "my": 0.1}
    assert cfg["scores"]["methods"] == ["cwola"]


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"regions": {"folds": 1}}, "regions.folds"),
        ({"regions": {"n_inject": -5}}, "regions.n_inject"),
        ({"data": {"source": "pythia9"}}, "data.source"),
        ({"scores": {"methods": ["nonsense"]}}, "scores.methods.0"),
        ({"bumphunt": {"efficiencies": [0.0]}}, "bumphunt.efficiencies.0"),
        ({"device": "tpu"}, "device"),
        ({"typo_key": 1}, "(top level)"),
        ({"run": "a b/c"}, "run"),
    ],
)
def test_bad_values_name_the_key(override, where):
    with pytest.raises(AnomalyHuntError) as err:
        config.validate(override)
    message = str(err.value)
    assert where in message and "\n" not in message


def test_scan_too_narrow_is_rejected():
    with pytest.raises(AnomalyHuntError, match="too narrow"):
        config.validate({"regions": {"scan": {"min": 3.0, "max": 3.5}}})


def test_file_source_needs_a_path():
    with pytest.raises(AnomalyHuntError, match="data.file.path"):
        config.validate({"data": {"source": "file"}})


def test_cli_reports_invalid_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: {folds: 0}\n")
    proc = run_command(
        [
            "-m",
            "anomalyhunt.regions",
            "--config",
            str(bad),
            "--features",
            "x",
            "--out-events",
            "y",
            "--out-windows",
            "z",
        ]
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert lines == [lines[0]] and "regions.folds" in lines[0]


def test_derived_seeds_are_stable_and_distinct():
    assert config.derive_seed(1, "toy") == config.derive_seed(1, "toy")
    assert config.derive_seed(1, "toy") != config.derive_seed(2, "toy")
    assert config.derive_seed(1, "toy") != config.derive_seed(1, "folds")


def test_resolved_config_is_rewritten_only_on_change(tmp_path):
    cfg = config.validate({})
    path = tmp_path / "resolved.yaml"
    config.write_resolved(cfg, path)
    mtime = path.stat().st_mtime_ns
    config.write_resolved(cfg, path)
    assert path.stat().st_mtime_ns == mtime
    assert config.load(path) == cfg


CONDA_NAMES = {"pytorch": "torch", "pytables": "tables"}
# Snakemake drives the rules rather than running inside them, so the rule envs need not list it.
DRIVER_ONLY = {"snakemake"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[]", requirement.strip(), maxsplit=1)[0].lower()


def test_conda_envs_list_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} - DRIVER_ONLY
    listed: set[str] = set()
    extras: set[str] = set()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        for dep in spec["dependencies"]:
            if isinstance(dep, dict):  # a pip: section holds optional extras (e.g. pythia)
                extras.update(_name(r) for r in dep.get("pip", []))
                continue
            name = _name(dep)
            if name not in ("python", "pip"):
                listed.add(CONDA_NAMES.get(name, name))
    assert listed == wanted, (
        f"only in envs: {listed - wanted}; only in pyproject: {wanted - listed}"
    )
    optional = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    assert extras <= optional, (
        f"pip extras in envs that no pyproject extra lists: {extras - optional}"
    )


def test_every_rule_uses_an_env_that_exists():
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().exists(), f"{rules.name}: {env}"


def test_schema_file_used_by_snakemake_is_the_package_schema():
    linked = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert (
        Path(linked).resolve()
        == (REPO / "src" / "anomalyhunt" / "schemas" / "config.schema.yaml").resolve()
    )
