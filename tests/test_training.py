"""The shared training loop: reproducible, keeps the best epoch, weights, divergence, checkpoints.

A tiny regression (four features, a linear target plus noise) stands in for the real networks,
whose own tests (classifiers, autoencoders, flows) run through the same loop.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.training import batched, seeded, train_network

SETTINGS = {"epochs": 30, "batch_size": 16, "learning_rate": 1e-2, "patience": 4}


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0, 1.0, n)).astype(np.float32)
    return X, y


def make_net(seed: int = 0) -> nn.Module:
    with seeded(seed):
        return nn.Sequential(
            nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
        )


def squared_error(net: nn.Module, noise: float = 0.0):
    """Per-event loss; with ``noise`` the target is jittered with the loop's generator."""

    def loss(batch, generator):
        x, y = batch
        if noise:
            y = y + noise * torch.randn(y.shape, generator=generator, device=y.device)
        return (net(x).squeeze(-1) - y) ** 2

    return loss


TRAIN, VALID = data(40, 1), data(200, 2)  # a small training set, so the network overfits


def run(seed: int = 0, net_seed: int = 0, **kw):
    net = make_net(net_seed)
    result = train_network(
        net, squared_error(net, kw.pop("noise", 0.3)), TRAIN, VALID, seed=seed, **SETTINGS | kw
    )
    return net, result


def state(net: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])


def test_seeded_block_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        inside = torch.rand(3)
    np.testing.assert_array_equal(torch.rand(3), expected)
    with seeded(7):
        np.testing.assert_array_equal(torch.rand(3), inside)


def test_same_seed_same_model_other_seed_another():
    a, ra = run()
    b, rb = run()
    assert_same_state(a, b)
    assert ra.history == rb.history
    c, _ = run(seed=1)  # same initial weights, other batch order and noise
    assert not np.array_equal(state(a)["0.weight"], state(c)["0.weight"])


def test_stops_early_and_keeps_the_best_epoch():
    net, result = run(epochs=200, noise=0.0)
    val = [h["val_loss"] for h in result.history]
    assert result.stopped == "patience"
    assert result.best_epoch == int(np.argmin(val)) and result.best_loss == min(val)
    assert len(val) == result.best_epoch + 1 + SETTINGS["patience"]
    assert val[-1] > min(val)  # it did overfit: the last weights are not the kept ones
    # the network holds the best epoch's weights: its validation loss, measured anew
    X, y = VALID
    with torch.no_grad():
        mse = float(
            ((net(torch.as_tensor(X)).squeeze(-1) - torch.as_tensor(y)) ** 2).double().mean()
        )
    assert mse == pytest.approx(result.best_loss, rel=1e-6)
    assert not net.training


def test_weights_make_a_weighted_mean():
    w_val = np.random.default_rng(3).uniform(0, 2, len(VALID[0]))
    net, result = run(weight=np.ones(len(TRAIN[0])), valid_weight=w_val, epochs=3, noise=0.0)
    per_event = batched(squared_error(net), VALID)
    assert result.best_loss == pytest.approx(np.sum(w_val * per_event) / np.sum(w_val), rel=1e-12)
    # unit training weights give exactly the unweighted run
    plain, _ = run(epochs=3, noise=0.0)
    assert_same_state(net, plain)


def test_divergence_stops_and_is_a_clear_error():
    net = make_net()
    calls = {"val": 0}

    def nan_after_first_epoch(batch, generator):
        loss = squared_error(net)(batch, generator)
        if not torch.is_grad_enabled():  # a validation pass
            calls["val"] += 1
            if calls["val"] > 1:
                return loss * float("nan")
        return loss

    result = train_network(net, nan_after_first_epoch, TRAIN, VALID, seed=0, **SETTINGS)
    assert result.stopped == "non-finite" and len(result.history) == 2 and result.best_epoch == 0
    net = make_net()
    with pytest.raises(AnomalyHuntError, match="toy training diverged"):
        train_network(
            net,
            lambda b, g: squared_error(net)(b, g) * float("nan"),
            TRAIN,
            VALID,
            seed=0,
            label="toy",
            **SETTINGS,
        )


class Killed(Exception):
    """Stands in for a job killed mid-epoch."""


def test_checkpoint_resumes_to_the_uninterrupted_result(tmp_path, caplog):
    reference, ref_result = run(epochs=12, patience=100)
    path = tmp_path / "ckpt.pt"
    net = make_net()
    loss, calls = squared_error(net, 0.3), {"n": 0}

    def killed_in_epoch_5(batch, generator):
        calls["n"] += 1  # three training batches and one validation pass per epoch
        if calls["n"] == 4 * 5 + 2:
            raise Killed
        return loss(batch, generator)

    with pytest.raises(Killed):
        train_network(
            net,
            killed_in_epoch_5,
            TRAIN,
            VALID,
            seed=0,
            checkpoint=path,
            **SETTINGS | {"epochs": 12, "patience": 100},
        )
    assert path.exists()
    caplog.set_level(logging.INFO, logger="anomalyhunt")
    resumed, result = run(epochs=12, patience=100, checkpoint=path)
    assert "resumed from" in caplog.text and "after epoch 4" in caplog.text
    assert_same_state(resumed, reference)
    assert result.history == ref_result.history and result.best_epoch == ref_result.best_epoch
    assert not path.exists()  # removed once training has ended


def test_checkpoint_of_another_run_is_not_resumed(tmp_path, caplog):
    path = tmp_path / "ckpt.pt"
    net = make_net()

    def killed(batch, generator):
        raise Killed

    with pytest.raises(Killed):
        train_network(net, killed, TRAIN, VALID, seed=0, checkpoint=path, **SETTINGS)
    with pytest.raises(Killed):  # the first epoch's checkpoint is written, then the kill
        n = {"calls": 0}

        def after_one_epoch(batch, generator):
            n["calls"] += 1
            if n["calls"] > 4:
                raise Killed
            return squared_error(net)(batch, generator)

        train_network(net, after_one_epoch, TRAIN, VALID, seed=0, checkpoint=path, **SETTINGS)
    assert path.exists()
    caplog.set_level(logging.INFO, logger="anomalyhunt")
    other, _ = run(learning_rate=3e-3, checkpoint=path, epochs=5)
    assert "of another run" in caplog.text and "resumed from" not in caplog.text
    fresh, _ = run(learning_rate=3e-3, epochs=5)
    assert_same_state(other, fresh)
    path.write_bytes(b"garbage")  # an unreadable checkpoint is ignored, not fatal
    again, _ = run(learning_rate=3e-3, checkpoint=path, epochs=5)
    assert_same_state(again, fresh)


# --- games: two players with their own optimisers (a GAN on a 1-D Gaussian) ---------------------

TRUE_MEAN, TRUE_SD = 3.0, 0.5
REAL = (np.random.default_rng(5).normal(TRUE_MEAN, TRUE_SD, (512, 1)).astype(np.float32),)
REAL_VALID = (np.zeros((64, 1), dtype=np.float32),)  # unused by the monitor, but must be non-empty


class Gan(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gen = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, 1))
        self.disc = nn.Sequential(nn.Linear(1, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def sample(self, n: int, generator) -> torch.Tensor:
        return self.gen(torch.randn((n, 1), generator=generator))


def gan_players(gan: Gan):
    from anomalyhunt.scores.training import Player

    bce = nn.functional.binary_cross_entropy_with_logits

    def d_loss(batch, generator):
        (x,) = batch
        fake = gan.sample(len(x), generator).detach()
        real_logit, fake_logit = gan.disc(x).squeeze(-1), gan.disc(fake).squeeze(-1)
        return bce(real_logit, torch.ones_like(real_logit), reduction="none") + bce(
            fake_logit, torch.zeros_like(fake_logit), reduction="none"
        )

    def g_loss(batch, generator):
        logit = gan.disc(gan.sample(len(batch[0]), generator)).squeeze(-1)
        return bce(logit, torch.ones_like(logit), reduction="none")

    def monitor(generator) -> float:  # distance of the generated mean and spread from the truth
        x = gan.sample(4096, generator)
        return float(abs(x.mean() - TRUE_MEAN) + abs(x.std() - TRUE_SD))

    return [
        Player(gan.disc.parameters(), d_loss, betas=(0.5, 0.9)),
        Player(gan.gen.parameters(), g_loss, betas=(0.5, 0.9)),
    ], monitor


GAME = {"epochs": 40, "batch_size": 64, "learning_rate": 3e-3, "patience": 40}


def test_a_game_of_two_players_learns_the_distribution_reproducibly():
    with seeded(0):
        gan = Gan()
    players, monitor = gan_players(gan)
    with torch.no_grad():
        before = monitor(torch.Generator().manual_seed(1))
    result = train_network(gan, players, REAL, REAL_VALID, seed=0, monitor=monitor, **GAME)
    assert before > 2.0 and result.best_loss < 0.3  # the generated mean moved onto the truth's
    assert len(result.history[0]["player_losses"]) == 2
    with seeded(0):
        again = Gan()
    players, monitor = gan_players(again)
    train_network(again, players, REAL, REAL_VALID, seed=0, monitor=monitor, **GAME)
    assert_same_state(gan, again)
    with pytest.raises(ValueError, match="needs a monitor"):
        train_network(again, players, REAL, REAL_VALID, seed=0, **GAME)


def test_a_game_resumes_from_its_checkpoint(tmp_path):
    def fresh():
        with seeded(0):
            gan = Gan()
        return gan, *gan_players(gan)

    settings = GAME | {"epochs": 6}
    reference, players, monitor = fresh()
    train_network(reference, players, REAL, REAL_VALID, seed=0, monitor=monitor, **settings)
    path = tmp_path / "game.pt"
    gan, players, monitor = fresh()
    calls = {"n": 0}

    def killed_in_epoch_3(generator):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed
        return monitor(generator)

    with pytest.raises(Killed):
        train_network(
            gan,
            players,
            REAL,
            REAL_VALID,
            seed=0,
            monitor=killed_in_epoch_3,
            checkpoint=path,
            **settings,
        )
    gan, players, monitor = fresh()
    train_network(
        gan, players, REAL, REAL_VALID, seed=0, monitor=monitor, checkpoint=path, **settings
    )
    assert_same_state(gan, reference)
