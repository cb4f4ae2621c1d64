"""Every default lives in the config schema: the library's keyword defaults must agree with it.

The scorers, classifiers and flows take their hyperparameters as keyword arguments with defaults
in their signatures (for library use), and the workflow passes the schema's values. These tests
fail as soon as one of the two changes without the other, or a key exists on one side only.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from anomalyhunt import config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores import available, get_scorer, score_out_of_fold
from anomalyhunt.scores.base import Configurable
from anomalyhunt.scores.classifiers import HGBClassifier, MLPClassifier
from anomalyhunt.scores.flows import ConditionalFlow

SCHEMA = config.schema()


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def block(name: str) -> dict[str, Any]:
    """The schema of one config block: a $defs entry or a method under ``scores``."""
    if name in SCHEMA["$defs"]:
        return SCHEMA["$defs"][name]
    return SCHEMA["properties"]["scores"]["properties"][name]


def plain(value: Any) -> Any:
    return [plain(v) for v in value] if isinstance(value, tuple | list) else value


CASES = [("mlp", MLPClassifier), ("hgb", HGBClassifier), ("flow", ConditionalFlow)] + [
    (name, get_scorer(name)) for name in available()
]


@pytest.mark.parametrize(("name", "cls"), CASES, ids=[n for n, _ in CASES])
def test_keyword_defaults_equal_the_schema_defaults(name: str, cls: type[Configurable]):
    props = block(name)["properties"]
    defaults = cls.param_defaults()
    driver = set(props) - set(defaults)
    assert driver <= set(cls.DRIVER_KEYS), f"{name}: schema keys the class does not take: {driver}"
    assert set(defaults) <= set(props), f"{name}: keywords missing from the schema"
    for key, default in defaults.items():
        assert default is not inspect.Parameter.empty, f"{cls.__name__}({key}) has no default"
        node = resolve(props[key])
        if node.get("type") == "object":  # a nested block: None means the nested class's defaults
            assert default is None and props[key]["default"] == {}, (name, key)
        else:
            expected = props[key]["default"]
            assert plain(default) == expected, f"{name}.{key}: {default!r} vs {expected!r}"
            assert isinstance(default, bool) == isinstance(expected, bool), (name, key)


def test_every_method_has_a_block_and_the_driver_its_default():
    assert set(SCHEMA["properties"]["scores"]["properties"]["methods"]["items"]["enum"]) == set(
        available()
    )
    driver_default = inspect.signature(score_out_of_fold).parameters["validation_fraction"].default
    for name in available():
        assert block(name)["properties"]["validation_fraction"]["default"] == driver_default


def test_config_values_reach_the_classes():
    cfg = config.validate(
        {
            "scores": {
                "cwola": {"classifier": "mlp", "ensemble": 2, "mlp": {"epochs": 7}},
                "cathode": {"flow": {"layers": 2}},
            }
        }
    )
    cwola = get_scorer("cwola").from_config(cfg["scores"]["cwola"], seed=3)
    assert (cwola.classifier, cwola.ensemble, cwola.seed) == ("mlp", 2, 3)
    mlp = MLPClassifier.from_config(cwola.mlp)
    assert mlp.epochs == 7 and mlp.hidden == [64, 64, 64]
    cathode = get_scorer("cathode").from_config(cfg["scores"]["cathode"])
    assert ConditionalFlow.from_config(cathode.flow).layers == 2
    # a filled-in block round-trips through get_params, as saved models do
    for name in available():
        scorer = get_scorer(name).from_config(cfg["scores"][name])
        again = get_scorer(name).from_config(scorer.get_params())
        assert again.get_params() == scorer.get_params()


def test_unknown_keys_are_a_clear_error():
    with pytest.raises(AnomalyHuntError, match="MLPClassifier: unknown setting.*epoch\\b"):
        MLPClassifier.from_config({"epoch": 3})
    with pytest.raises(AnomalyHuntError, match="unknown setting.*hiden"):
        get_scorer("autoencoder").from_config({"hiden": [4]})
    # the driver's key is accepted from a method block, and taken by a class that uses it
    assert get_scorer("cwola").from_config({"validation_fraction": 0.3}).classifier == "hgb"
    assert (
        get_scorer("supervised").from_config({"validation_fraction": 0.3}).validation_fraction
        == 0.3
    )


def test_bump_hunt_options_defaults_are_the_schemas():
    """HuntOptions() (library use) and the options of a default config are the same."""
    from dataclasses import asdict

    from anomalyhunt.bumphunt import HuntOptions

    from_schema = asdict(HuntOptions.from_config(config.validate({})["bumphunt"]))
    assert asdict(HuntOptions()) == from_schema
