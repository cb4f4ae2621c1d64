"""The adversarial building blocks: MMD, the WGAN-GP penalty, the GAN players."""

from __future__ import annotations

import pytest
import torch

from anomalyhunt.gan import gan_players, gradient_penalty, mlp, mmd2
from anomalyhunt.scores.training import seeded


@pytest.mark.parametrize("kernel", ["gaussian", "breit_wigner"])
def test_mmd_vanishes_for_one_distribution_and_grows_with_a_shift(kernel):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(800, generator=g), torch.randn(800, generator=g)
    same = float(mmd2(x, y, [0.5, 1.0], kernel))
    near = float(mmd2(x, y + 0.3, [0.5, 1.0], kernel))
    far = float(mmd2(x, y + 1.0, [0.5, 1.0], kernel))
    assert abs(same) < 0.01 and same < near < far
    with pytest.raises(ValueError, match="unknown MMD kernel"):
        mmd2(x, y, [1.0], "cauchy")


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8]]))  # |grad| = 1 everywhere
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    assert float(gradient_penalty(critic, real, fake, g).detach().max()) < 1e-10
    with torch.no_grad():
        critic.weight.mul_(3.0)  # |grad| = 3: penalty (3 - 1)^2
    assert float(gradient_penalty(critic, real, fake, g).detach().mean()) == pytest.approx(4.0)


@pytest.mark.parametrize("kind", ["bce", "wgan_gp"])
def test_gan_players_move_only_their_own_parameters(kind):
    with seeded(0):
        gen, critic = mlp(2, [8], 2), mlp(2, [8], 1, activation="leaky_relu")
    g = torch.Generator().manual_seed(2)
    batch = (torch.randn(32, 2, generator=g) + 3.0,)
    players = gan_players(
        gen.parameters(),
        critic,
        lambda b, gen_: gen(torch.randn(len(b[0]), 2, generator=gen_)),
        lambda b: b[0],
        kind=kind,
        critic_steps=5 if kind == "wgan_gp" else 1,
    )
    assert [p.steps for p in players] == [5 if kind == "wgan_gp" else 1, 1]
    for player, module, other in ((players[0], critic, gen), (players[1], gen, critic)):
        for net in (module, other):
            net.zero_grad(set_to_none=True)
        loss = player.loss(batch, g)
        loss.mean().backward()
        assert all(p.grad is not None for p in module.parameters())
        if player is players[0]:  # the critic's loss sees generated events as constants
            assert all(p.grad is None for p in other.parameters())
