"""Load a run's config and validate it against the schema (the same one Snakemake uses).

Defaults live in the schema alone, so the workflow, the commands and the tests never disagree.
"""

from __future__ import annotations

import copy
import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from anomalyhunt.errors import AnomalyHuntError


def schema() -> dict[str, Any]:
    text = resources.files("anomalyhunt").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(validator_class: type) -> type:
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def validate(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Return a validated copy of ``config`` with every default filled in."""
    config = copy.deepcopy(config) if config is not None else {}
    if not isinstance(config, dict):
        raise AnomalyHuntError(f"{source}: expected a mapping of settings, got {type(config).__name__}")
    errors = sorted(_Validator(schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise AnomalyHuntError(f"{source}: invalid value at '{where}': {err.message}")
    # a second pass fills defaults inside objects that were themselves filled from defaults
    _Validator(schema()).validate(config)
    regions = config["regions"]
    if regions["scan"]["max"] <= regions["scan"]["min"] + regions["sr_width"] + 2 * regions["sideband_width"]:
        raise AnomalyHuntError(
            f"{source}: regions.scan [{regions['scan']['min']}, {regions['scan']['max']}] TeV is too narrow "
            f"for one signal region of {regions['sr_width']} TeV with two sidebands of "
            f"{regions['sideband_width']} TeV"
        )
    if config["data"]["source"] == "file" and not config["data"]["file"]["path"]:
        raise AnomalyHuntError(f"{source}: data.source is 'file' but data.file.path is not set")
    return config


def load(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` (nested dict), validate and fill defaults."""
    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: config file not found")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AnomalyHuntError(f"{path}: not valid YAML ({exc})") from exc
    if overrides:
        config = merge(config, overrides)
    return validate(config, source=str(path))


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: values of ``update`` win, nested mappings are merged."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a": {"b": 1}, "c": ["x", "y"]}`` (values read as YAML).

    The command-line form of a config override, as in Snakemake's ``--config``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise AnomalyHuntError(f"'{item}': expected key.path=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise AnomalyHuntError(f"'{item}': {part} is set to a value and a mapping")
        node[leaf] = yaml.safe_load(value)
    return out


def derive_seed(seed: int, *labels: object) -> int:
    """A stable 32-bit seed for one random step, so runs are reproducible and steps independent."""
    text = "/".join([str(seed), *map(str, labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def write_resolved(config: dict[str, Any], path: str | os.PathLike) -> str:
    """Write the validated config as YAML, touching the file only when its content changes."""
    from anomalyhunt.io import atomic_path

    text = yaml.safe_dump(config, sort_keys=False)
    path = Path(path)
    if not path.exists() or path.read_text() != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return str(path)
