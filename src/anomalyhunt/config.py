"""Load a run's config and validate it against the schema (the same one Snakemake uses).

Defaults live in the schema alone, so the workflow, the commands and the tests never disagree.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from anomalyhunt.errors import AnomalyHuntError

#: libyaml's parser where PyYAML has it: the same safe YAML, parsed ~10x faster than pure Python
#: (the schema alone took ~1.5 s to parse in every command of a run).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """yaml.safe_load with libyaml when present (plain data only: no tags run code)."""
    return yaml.load(text, Loader=_SAFE_LOADER)


@functools.cache
def _schema() -> dict[str, Any]:
    # read-only: the validators copy defaults into the instance, never change the schema
    return safe_load(
        resources.files("anomalyhunt").joinpath("schemas/config.schema.yaml").read_text()
    )


def schema() -> dict[str, Any]:
    """The config schema (a fresh copy: callers may change it)."""
    return copy.deepcopy(_schema())


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
        raise AnomalyHuntError(
            f"{source}: expected a mapping of settings, got {type(config).__name__}"
        )
    run = config.get("run")
    if isinstance(run, str) and (run in (".", "..") or run != Path(run).name or not run.strip(".")):
        raise AnomalyHuntError(
            f"{source}: run = {run!r} is not a plain folder name: outputs go to results/<run>/, so "
            "use letters, digits, '_', '-' and '.' (not '.' or '..')"
        )
    errors = sorted(_Validator(_schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise AnomalyHuntError(f"{source}: invalid value at '{where}': {err.message}")
    # a second pass fills defaults inside objects that were themselves filled from defaults
    _Validator(_schema()).validate(config)
    regions = config["regions"]
    if (
        regions["scan"]["max"]
        <= regions["scan"]["min"] + regions["sr_width"] + 2 * regions["sideband_width"]
    ):
        raise AnomalyHuntError(
            f"{source}: regions.scan [{regions['scan']['min']}, {regions['scan']['max']}] TeV is too narrow "
            f"for one signal region of {regions['sr_width']} TeV with two sidebands of "
            f"{regions['sideband_width']} TeV"
        )
    if config["data"]["source"] == "file" and not config["data"]["file"]["path"]:
        raise AnomalyHuntError(f"{source}: data.source is 'file' but data.file.path is not set")
    _check_binning(config, source)
    _check_signal_pool(config, source)
    return config


def _check_binning(config: dict[str, Any], source: str) -> None:
    """bumphunt.bin_width and sr_bins against the SR, as the fit stage would find them."""
    regions, bh = config["regions"], config["bumphunt"]
    width, sr = bh["bin_width"], regions["sr_width"]
    if width > sr + 1e-9:
        raise AnomalyHuntError(
            f"{source}: bumphunt.bin_width = {width} TeV is wider than the signal region "
            f"(regions.sr_width = {sr} TeV)"
        )
    for name, value in (
        ("regions.sr_width", sr),
        ("regions.sideband_width", regions["sideband_width"]),
    ):
        if abs(value / width - round(value / width)) > 1e-6:
            raise AnomalyHuntError(
                f"{source}: bumphunt.bin_width = {width} TeV does not divide {name} = {value} TeV "
                "into whole bins, so the fit bins would not fall on the window edges"
            )
    n_sr = round(sr / width)
    if bh["sr_bins"] > n_sr:
        raise AnomalyHuntError(
            f"{source}: bumphunt.sr_bins = {bh['sr_bins']} is more than the {n_sr} fit bins of the "
            f"signal region (regions.sr_width {sr} / bumphunt.bin_width {width} TeV)"
        )


def _check_signal_pool(config: dict[str, Any], source: str) -> None:
    """regions.n_inject against the signal pool, where the config alone says how large it is."""
    n_inject = config["regions"]["n_inject"]
    data = config["data"]
    pool = {
        "toy": ("data.toy.n_signal", data["toy"]["n_signal"]),
        "pythia": ("data.pythia.n_signal (generated, before the cut)", data["pythia"]["n_signal"]),
        "lhco": ("the LHCO R&D file's signal events", 100_000),
    }.get(data["source"])
    if pool is not None and n_inject > pool[1]:
        raise AnomalyHuntError(
            f"{source}: regions.n_inject = {n_inject} is larger than the signal pool, "
            f"{pool[0]} = {pool[1]}"
        )


def coerce_strings(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with strings read as YAML where the schema wants no string there.

    Snakemake hands nested ``--config`` values over as strings (``summary='{toys: 5000}'`` gives
    ``{'toys': '5000'}``), so a number, boolean, null or list given on the command line is
    turned back into one wherever the schema expects it. Where a string is allowed it stays a
    string, except the null words (null, ~) where null is allowed too.
    """
    root = schema()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    def walk(value: Any, node: dict[str, Any]) -> Any:  # noqa: ANN401
        node = resolve(node)
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        if isinstance(value, str) and types:
            if "string" not in types:
                try:
                    parsed = safe_load(value)
                except yaml.YAMLError:
                    return value  # left for the validator to name
                if parsed is not None or "null" in types:
                    return walk(parsed, node)
            elif "null" in types and value.strip() in ("null", "Null", "NULL", "~"):
                return None
        if isinstance(value, dict) and "object" in types:
            props = node.get("properties", {})
            return {k: walk(v, props[k]) if k in props else v for k, v in value.items()}
        if isinstance(value, list) and "array" in types and isinstance(node.get("items"), dict):
            return [walk(v, node["items"]) for v in value]
        return value

    return walk(copy.deepcopy(config), root)


def load(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` (nested dict), validate and fill defaults."""
    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: config file not found")
    try:
        config = safe_load(path.read_text()) or {}
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
        node[leaf] = safe_load(value)
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
