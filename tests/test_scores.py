"""The scoring machinery: registry, data container, classifiers, out-of-fold driver and CLI.

Everything runs on small synthetic windows made here (not the toy generator), so it is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import log_loss

from anomalyhunt import FEATURES, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION, Window
from anomalyhunt.scores import (
    SCORE_COLUMNS,
    Scorer,
    WindowData,
    available,
    get_scorer,
    register,
    resolve_device,
    score_out_of_fold,
)
from anomalyhunt.scores.__main__ import main as scores_main
from anomalyhunt.scores.base import _REGISTRY
from anomalyhunt.scores.classifiers import HGBClassifier, MLPClassifier, balanced_weights
from anomalyhunt.scores.cwola import CWoLa
from anomalyhunt.scores.ensemble import Ensemble

WINDOW = Window("w01", (3.3, 3.7), (2.9, 3.3), (3.7, 4.1))


def make_events(n_bkg: int = 6000, n_sig: int = 200, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Falling mjj over (and a little beyond) the window, flat features; signal at one point."""
    rng = np.random.default_rng(seed)
    mjj = 2.8 + rng.exponential(0.6, n_bkg)
    X = np.column_stack(
        [
            rng.normal(0.2, 0.1, n_bkg),
            rng.normal(0.1, 0.1, n_bkg),
            rng.uniform(0, 1, n_bkg),
            rng.uniform(0, 1, n_bkg),
        ]
    )
    Xs = rng.normal([0.5, 0.4, 0.2, 0.3], [0.02, 0.02, 0.05, 0.05], size=(n_sig, 4))
    df = pd.DataFrame(np.vstack([X, Xs]).astype(np.float32), columns=list(FEATURES))
    df.insert(0, "mjj", np.concatenate([mjj, rng.normal(3.5, 0.05, n_sig)]))
    df["label"] = np.r_[np.zeros(n_bkg), np.ones(n_sig)].astype(np.int8)
    df.insert(0, "event_id", rng.permutation(len(df)).astype(np.int64) * 3 + 7)
    df["fold"] = rng.permutation(np.arange(len(df)) % folds).astype(np.int8)
    return df


class Spy(Scorer):
    """Records what each fold's model trained on and what it scored (not registered)."""

    name = "spy"
    log: list[dict] = []

    def fit(self, train: WindowData, valid: WindowData) -> Spy:
        self.trained = set(train.event_id.tolist())
        self.validated = set(valid.event_id.tolist())
        return self

    def score(self, data: WindowData) -> np.ndarray:
        Spy.log.append(
            {"trained": self.trained, "validated": self.validated, "scored": data.event_id.copy()}
        )
        return data.X[:, 0].astype(np.float64)

    def save(self, path) -> None:  # pragma: no cover - not used
        raise NotImplementedError

    @classmethod
    def load(cls, path, *, device="cpu", threads=1) -> Spy:  # pragma: no cover - not used
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# registry, device, WindowData


def test_registry_resolves_and_rejects_unknown():
    assert "cwola" in available()
    assert get_scorer("cwola") is CWoLa
    with pytest.raises(AnomalyHuntError, match="unknown scoring method 'nope'.*cwola"):
        get_scorer("nope")


def test_register_requires_name_and_unique():
    with pytest.raises(TypeError, match="name"):

        @register
        class NoName(Spy):
            name = ""

    with pytest.raises(TypeError, match="already registered"):

        @register
        class Clash(Spy):
            name = "cwola"

    @register
    class Tmp(Spy):
        name = "tmp_test_method"

    try:
        assert get_scorer("tmp_test_method") is Tmp
    finally:
        _REGISTRY.pop("tmp_test_method")


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(AnomalyHuntError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(AnomalyHuntError, match="unknown device"):
        resolve_device("tpu")


def test_window_data_from_frame_and_subset():
    df = make_events(500, 10)
    data = WindowData.from_frame(df, WINDOW)
    assert data.X.dtype == np.float32 and data.X.shape == (len(df), 4)
    np.testing.assert_array_equal(data.region, WINDOW.region_of(df["mjj"].to_numpy()))
    sub = data.subset(data.in_sr)
    assert len(sub) == data.count(SIGNAL_REGION) > 0
    assert (sub.region == SIGNAL_REGION).all()
    assert set(sub.event_id) <= set(df["event_id"])
    with pytest.raises(AnomalyHuntError, match="lacks columns"):
        WindowData.from_frame(df.drop(columns="tau21_heavy"), WINDOW)


# ---------------------------------------------------------------------------------------------
# out-of-fold driver


def test_every_window_event_scored_once_by_models_that_never_saw_it():
    df = make_events()
    Spy.log = []
    out = score_out_of_fold(Spy, {}, df, WINDOW, seed=3, validation_fraction=0.25)
    assert list(out.columns) == list(SCORE_COLUMNS)
    assert out["score"].dtype == np.float64
    window_ids = set(df.loc[WINDOW.region_of(df["mjj"].to_numpy()) > 0, "event_id"])
    assert len(window_ids) < len(df)  # some events lie outside the window and are not scored
    assert out["event_id"].is_unique
    assert set(out["event_id"]) == window_ids
    assert (out["region"] > 0).all()

    fold_of = dict(zip(df["event_id"], df["fold"], strict=True))
    assert len(Spy.log) == 5
    scored_all = []
    for rec in Spy.log:
        scored = set(rec["scored"].tolist())
        (k,) = {fold_of[e] for e in scored}  # each model scores exactly one fold
        seen = rec["trained"] | rec["validated"]
        assert not seen & scored
        assert not rec["trained"] & rec["validated"]
        # the model trained on every other window event, and only those
        assert seen == {e for e in window_ids if fold_of[e] != k}
        assert 0.2 < len(rec["validated"]) / len(seen) < 0.3
        scored_all.extend(scored)
    assert len(scored_all) == len(window_ids)
    # the output carries the right fold and the score each event got from its own fold's model
    np.testing.assert_array_equal(out["fold"], [fold_of[e] for e in out["event_id"]])
    by_id = df.set_index("event_id")
    np.testing.assert_allclose(out["score"], by_id.loc[out["event_id"], FEATURES[0]], rtol=1e-6)


def test_missing_class_in_training_is_a_clear_error():
    df = make_events(2000, 0)
    region = WINDOW.region_of(df["mjj"].to_numpy())
    df.loc[region == SIGNAL_REGION, "fold"] = 0  # every SR event in fold 0
    with pytest.raises(AnomalyHuntError, match="w01.*fold 0 has no signal-region events"):
        score_out_of_fold(Spy, {}, df, WINDOW, seed=1)
    df.loc[region == SIDEBAND, "fold"] = 0
    with pytest.raises(AnomalyHuntError, match="one fold"):
        score_out_of_fold(Spy, {}, df, WINDOW, seed=1)


# ---------------------------------------------------------------------------------------------
# classifiers


def _xy(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(int)
    X = rng.normal(size=(n, 4)).astype(np.float32) * [1, 100, 1, 1] + y[:, None] * [1, 0, 0, 0.5]
    return X.astype(np.float32), y


def test_balanced_weights_give_equal_class_totals():
    y = np.array([0, 0, 0, 1])
    w = balanced_weights(y)
    assert w[y == 0].sum() == pytest.approx(2) and w[y == 1].sum() == pytest.approx(2)
    with pytest.raises(AnomalyHuntError, match="class 1"):
        balanced_weights(np.zeros(5, int))


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (MLPClassifier, {"hidden": [16, 16], "epochs": 8, "batch_size": 256, "patience": 2}),
        (HGBClassifier, {"max_iter": 50, "min_samples_leaf": 20}),
    ],
)
def test_classifier_learns_is_deterministic_and_round_trips(tmp_path, cls, params):
    from sklearn.metrics import roc_auc_score

    X, y = _xy()
    Xv, yv = _xy(1000, 1)
    Xt, yt = _xy(2000, 2)
    a = cls(**params, seed=5).fit(X, y, Xv, yv)
    b = cls(**params, seed=5).fit(X, y, Xv, yv)
    pa = a.predict_proba(Xt)
    assert pa.shape == (len(Xt),) and pa.dtype == np.float64
    assert ((pa >= 0) & (pa <= 1)).all()
    assert roc_auc_score(yt, pa) > 0.7
    np.testing.assert_array_equal(pa, b.predict_proba(Xt))
    # class balancing: the mean prediction sits near 1/2, not at the 30% prior
    assert 0.4 < pa.mean() < 0.6
    path = tmp_path / f"model{cls.suffix}"
    a.save(path)
    np.testing.assert_array_equal(pa, cls.load(path).predict_proba(Xt))


def test_mlp_early_stopping_restores_best_epoch():
    X, y = _xy(2000)
    Xv, yv = _xy(500, 1)
    m = MLPClassifier(
        hidden=[8], epochs=40, batch_size=128, patience=2, learning_rate=0.05, seed=0
    ).fit(X, y, Xv, yv)
    losses = [h["val_loss"] for h in m.history]
    assert m.best_epoch == int(np.argmin(losses))
    assert len(losses) <= 40 and len(losses) - 1 - m.best_epoch <= 2
    # the weights in the model are those of the best epoch: its class-weighted validation loss,
    # measured independently, is the smallest in the history
    p = m.predict_proba(Xv)
    assert log_loss(yv, p, sample_weight=balanced_weights(yv)) == pytest.approx(
        min(losses), rel=1e-6
    )


def test_mlp_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"format": "other"}, path)
    with pytest.raises(AnomalyHuntError, match="not an anomalyhunt MLP"):
        MLPClassifier.load(path)


def test_ensemble_members_differ_and_average(tmp_path):
    X, y = _xy()
    Xv, yv = _xy(1000, 1)
    ens = Ensemble("hgb", {"max_iter": 30, "min_samples_leaf": 20}, 3, seed=2).fit(X, y, Xv, yv)
    preds = np.array([m.predict_proba(Xv) for m in ens.members])
    assert not np.array_equal(preds[0], preds[1])
    np.testing.assert_allclose(ens.predict_proba(Xv), preds.mean(axis=0))
    ens.save(tmp_path / "ens")
    np.testing.assert_array_equal(
        Ensemble.load(tmp_path / "ens").predict_proba(Xv), ens.predict_proba(Xv)
    )
    with pytest.raises(AnomalyHuntError, match="unknown classifier"):
        Ensemble("svm", {}, 1, seed=0)


# ---------------------------------------------------------------------------------------------
# command line


CWOLA_FAST = {
    "classifier": "hgb",
    "ensemble": 1,
    "hgb": {"max_iter": 30, "min_samples_leaf": 20},
}


def _write_inputs(tmp_path, df: pd.DataFrame) -> dict[str, str]:
    config = {"seed": 4, "device": "cpu", "threads": 1, "scores": {"cwola": CWOLA_FAST}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    df.to_parquet(tmp_path / "events.parquet", index=False)
    skipped = {
        "id": "w02",
        "sr": [3.5, 3.9],
        "sb_low": [3.1, 3.5],
        "sb_high": [3.9, 4.3],
        "skipped": "12 events in the signal region, fewer than 200",
    }
    win = {"id": "w01", "sr": [3.3, 3.7], "sb_low": [2.9, 3.3], "sb_high": [3.7, 4.1]}
    (tmp_path / "windows.json").write_text(
        json.dumps({"windows": [win | {"skipped": None}, skipped], "folds": 5})
    )
    return {
        "--config": str(tmp_path / "config.yaml"),
        "--events": str(tmp_path / "events.parquet"),
        "--windows": str(tmp_path / "windows.json"),
    }


def _argv(base: dict[str, str], **kw: str) -> list[str]:
    args = base | {f"--{k.replace('_', '-')}": v for k, v in kw.items()}
    return [x for kv in args.items() for x in kv]


def test_cli_end_to_end_and_skipped_window(tmp_path):
    df = make_events(3000, 100)
    base = _write_inputs(tmp_path, df)
    out = tmp_path / "scores.parquet"
    argv = _argv(base, window="w01", method="cwola", out=str(out), model_dir=str(tmp_path / "m"))
    assert cli.run(scores_main, [*argv, "--keep-checkpoints"]) == 0  # to load a fold model below
    scores = read_parquet(out)
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert set(scores["event_id"]) == set(df.loc[WINDOW.region_of(df["mjj"]) > 0, "event_id"])
    assert (tmp_path / "m" / "fold4" / "scorer.json").exists()
    # the saved fold model reproduces its scores
    fold4 = scores[scores["fold"] == 4]
    model = CWoLa.load(tmp_path / "m" / "fold4")
    rescored = model.score(
        WindowData.from_frame(df.set_index("event_id").loc[fold4["event_id"]].reset_index(), WINDOW)
    )
    np.testing.assert_array_equal(rescored, fold4["score"].to_numpy())

    skip_out = tmp_path / "skipped.parquet"
    assert cli.run(scores_main, _argv(base, window="w02", method="cwola", out=str(skip_out))) == 0
    empty = read_parquet(skip_out)
    assert len(empty) == 0 and list(empty.columns) == list(SCORE_COLUMNS)
    assert empty.dtypes.to_dict() == scores.dtypes.to_dict()


def test_cli_errors_are_one_line(tmp_path, capsys):
    base = _write_inputs(tmp_path, make_events(500, 0))
    out = str(tmp_path / "s.parquet")
    assert cli.run(scores_main, _argv(base, window="w99", method="cwola", out=out)) == 2
    assert "no window 'w99'" in capsys.readouterr().err
    assert cli.run(scores_main, _argv(base, window="w01", method="nope", out=out)) == 2
    err = capsys.readouterr().err
    assert "unknown scoring method 'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "s.parquet").exists()


def test_module_entry_point_exit_code(tmp_path):
    base = _write_inputs(tmp_path, make_events(300, 0))
    argv = _argv(base, window="w01", method="nope", out=str(tmp_path / "s.parquet"))
    proc = subprocess.run(
        [sys.executable, "-m", "anomalyhunt.scores", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("anomalyhunt: error: unknown scoring")


def test_gradient_boosting_scores_never_import_torch(tmp_path):
    # with device: auto only a network method may spend torch's import (2 s a job) on a GPU query
    base = _write_inputs(tmp_path, make_events(3000, 100))
    config = yaml.safe_load(Path(base["--config"]).read_text()) | {"device": "auto"}
    Path(base["--config"]).write_text(yaml.safe_dump(config))
    argv = _argv(base, window="w01", method="cwola", out=str(tmp_path / "s.parquet"))
    code = (
        "import sys; from anomalyhunt import cli; from anomalyhunt.scores.__main__ import main; "
        "rc = cli.run(main, sys.argv[1:]); sys.exit(rc or 10 * ('torch' in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(read_parquet(tmp_path / "s.parquet")) > 0


def test_gpu_slots_follow_the_device_setting() -> None:
    import torch

    from anomalyhunt.scores.base import gpu_slots

    assert gpu_slots("cpu") == 0
    assert (
        gpu_slots("cuda") == 1 and gpu_slots("cuda:1") == 1
    )  # claimed even where the DAG is built
    assert gpu_slots("auto") == int(torch.cuda.is_available())
