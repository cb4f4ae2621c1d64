"""Branch ganplify (arXiv:2008.06545): toys, the quantile MSE's 1/n law, the fit, the GAN."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.ganplify import metrics as m
from anomalyhunt.ganplify import model
from anomalyhunt.ganplify.__main__ import main
from anomalyhunt.ganplify.fit import fit_camel, fit_cell_probabilities, fit_radius
from anomalyhunt.ganplify.toy import Camel, Shell, make_toy
from tests.conftest import branch_output

torch.set_num_threads(1)


def test_camel_has_two_unit_humps_at_plus_minus_four():
    toy = Camel(quantiles=10)
    x = toy.sample(200_000, np.random.default_rng(0))[:, 0]
    # mixture of N(-4,1) and N(4,1): mean 0, variance 1 + 16, half the events on each side
    assert x.mean() == pytest.approx(0.0, abs=0.03)
    assert x.var() == pytest.approx(17.0, rel=0.01)
    assert (x > 0).mean() == pytest.approx(0.5, abs=0.005)
    right = x[x > 0]
    assert right.mean() == pytest.approx(4.0, abs=0.01) and right.std() == pytest.approx(
        1, abs=0.01
    )
    # the median edge sits between the humps, the first decile inside the left hump
    assert toy.edges[4] == pytest.approx(0.0, abs=1e-9)
    assert toy.edges[0] == pytest.approx(-4.0 - 0.8416, abs=1e-3)  # F = 0.1 -> left hump's 20%


@pytest.mark.parametrize("dim", [2, 5])
def test_ring_and_shell_radius_is_four_and_every_cell_holds_the_same_probability(dim):
    toy = Shell(dim=dim, radial_quantiles=4, sectors=4)
    x = toy.sample(200_000, np.random.default_rng(dim))
    r = toy.radius(x)
    assert r.mean() == pytest.approx(4.0, abs=0.01) and r.std() == pytest.approx(1.0, abs=0.01)
    assert np.abs(x.mean(axis=0)).max() < 0.03  # no preferred direction
    assert toy.n_cells == 4 * 4 * 2 ** (dim - 2)
    frac = m.cell_fractions(toy.cells(x), toy.n_cells)
    # multinomial spread of a cell's fraction: sqrt(p (1 - p) / n); all within 5 of them
    sd = math.sqrt((1 / toy.n_cells) * (1 - 1 / toy.n_cells) / len(x))
    assert np.abs(frac - 1 / toy.n_cells).max() < 5 * sd


def test_make_toy_knows_three_toys():
    kw = {"quantiles": 10, "radial_quantiles": 3, "sectors": 2, "shell_dim": 4}
    assert [make_toy(t, **kw).dim for t in ("camel", "ring", "shell")] == [1, 2, 4]
    assert make_toy("shell", **kw).n_cells == 3 * 2 * 4
    with pytest.raises(ValueError, match="unknown toy"):
        make_toy("torus", **kw)


def test_quantile_mse_of_true_samples_falls_as_one_over_n():
    # by hand: K = 10 cells of 1/10, n = 100 events: (1 - 1/10) / (10 * 100) = 9e-4
    assert m.expected_sample_mse(10, 100) == pytest.approx(9e-4)
    assert m.equivalent_events(9e-4, 10) == pytest.approx(100)
    assert m.quantile_mse(np.array([0.2, 0.0, 0.5, 0.3])) == pytest.approx(
        (0.05**2 + 0.25**2 + 0.25**2 + 0.05**2) / 4
    )
    toy = Camel(quantiles=10)
    cells = toy.cells(toy.sample(400_000, np.random.default_rng(1)))
    curve = m.sample_mse_curve(cells, toy.n_cells, [40, 400, 4000])
    for n, (mse, samples) in curve.items():
        assert samples == 400_000 // n
        # the mean of `samples` MSEs, each with a relative spread of about sqrt(2 / (K - 1))
        assert mse / m.expected_sample_mse(10, n) == pytest.approx(1.0, abs=0.1)
    assert curve[40][0] / curve[4000][0] == pytest.approx(100, rel=0.2)


def test_fits_recover_the_truth_and_beat_the_raw_sample():
    rng = np.random.default_rng(2)
    camel = Camel(quantiles=10)
    ring = Shell(dim=2, radial_quantiles=4, sectors=4)
    par = fit_camel(camel.sample(5000, rng))
    assert par["centres"] == pytest.approx([-4, 4], abs=0.06)
    assert par["widths"] == pytest.approx([1, 1], abs=0.05)
    par = fit_radius(ring.radius(ring.sample(5000, rng)))
    assert (par["radius"], par["width"]) == pytest.approx((4, 1), abs=0.04)
    # five fitted numbers for nine free cell fractions (camel), two for fifteen (ring)
    for toy, factor in ((camel, 1.5), (ring, 4.0)):
        sample_mse, fit_mse = [], []
        for _ in range(20):
            x = toy.sample(100, rng)
            sample_mse.append(m.quantile_mse(m.cell_fractions(toy.cells(x), toy.n_cells)))
            fit_mse.append(m.quantile_mse(fit_cell_probabilities(toy, x)[0]))
        # knowing the functional form is worth more events than were fitted
        assert np.mean(fit_mse) < np.mean(sample_mse) / factor


def test_a_short_gan_training_lowers_the_quantile_mse():
    toy = Camel(quantiles=10)
    x = toy.sample(200, np.random.default_rng(3))
    net = model.build_gan(x, latent_dim=4, hidden=[32, 32], seed=4)

    def truth_mse() -> float:
        events = model.sample(net, 20_000, seed=5)
        return m.quantile_mse(m.cell_fractions(toy.cells(events), toy.n_cells))

    net.update_average(0.0)  # the untrained generator, as sampled
    before = truth_mse()
    result = model.train_gan(
        net,
        x,
        epochs=40,
        batches_per_epoch=10,
        batch_size=64,
        learning_rate=1e-3,
        patience=40,
        average_decay=0.5,
        mmd_weight=1.0,
        holdout=0.0,
        seed=6,
    )
    after = truth_mse()
    assert len(result.history) >= 10
    # untrained: most events in a few central cells; trained: both humps, cells within ~25%
    assert before > 0.01 and after < 0.002 and after < before / 10


def _config(tmp_path, block=None):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"run": "t", "ganplify": block or {}}))
    return ["--config", str(path), "--out-dir", str(tmp_path / "out")]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"n_train": [100, 5000], "pool": 4000}, "ganplify.n_train: .* ganplify.pool is 4000"),
        ({"n_train": [1000], "replicas": 5, "pool": 4000}, "ganplify.n_train"),
        ({"n_generated": [100, 300], "n_train": [1000]}, "ganplify.n_generated"),
        ({"quantiles": 1}, "quantiles"),
        ({"toys": ["torus"]}, "toys"),
        ({"n_train": [5]}, "n_train"),
    ],
)
def test_bad_settings_stop_with_one_line_naming_the_key(tmp_path, block, message):
    with pytest.raises(AnomalyHuntError, match=message) as err:
        main(_config(tmp_path, block))
    assert "\n" not in str(err.value)


@pytest.mark.workflow
def test_ganplify_target_writes_its_metrics(branch_targets):
    out = branch_output(branch_targets, "ganplify")
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("amplification.png", "quantile_mse.png", "densities.png"):
        assert (out / name).stat().st_size > 10_000
    rows = {(r["toy"], r["n_train"]): r for r in metrics["results"]}
    assert set(rows) == {("camel", 100), ("ring", 100)}
    for r in rows.values():
        assert r["mse_expected_true_sample"] == pytest.approx(
            (1 - 1 / r["n_cells"]) / (r["n_cells"] * 100)
        )
        # the fit knows the shape: worth several times its 100 events
        assert r["amplification_fit"] > 2
        # a GAN that learnt the toy is worth a fair fraction of its training sample at least (one
        # that put its events into a few cells would be worth ~1 event: amplification 0.01)
        assert 0.1 < r["amplification_gan"] < 50
        gan = list(r["mse_gan_by_n_generated"].values())
        assert gan[-1] < gan[0]  # more generated events, smaller MSE
    assert metrics["amplification"]["camel_N100"]["dimension"] == 1
    for ratios in metrics["true_sample_mse_over_law"].values():
        assert all(0.7 < v < 1.3 for v in ratios.values())
