"""Training the four fast simulations with the project's one loop.

The GANs are games (``gan.gan_players``): the conditional GAN with the non-saturating loss, the
WGAN-GP with its gradient penalty and critic steps (Adam betas (0, 0.9) as in arXiv:1704.00028,
Algorithm 1). Their losses do not measure quality, so each epoch is judged by
:func:`binned_w1`, the mean 1-D Wasserstein distance between generated and true standardised
responses in quartiles of the validation muons' pT. The flow and the mixture density network
minimise the negative log-likelihood and stop on its validation value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.fastsim.networks import ConditionalFlow, ConditionalGan, MixtureDensity
from anomalyhunt.fastsim.simulator import KINDS, EfficiencyMap, FastSim, ThetaRange, encode
from anomalyhunt.scores.training import TrainingResult, seeded, train_network


@dataclass(frozen=True)
class Settings:
    """The networks' sizes and training settings (the ``fastsim`` config block's keys).

    Parameters
    ----------
    hidden : list of int
        Hidden widths of the GANs' generator and critic and of the mixture network.
    noise_dim : int
        Latent noise per muon of the GAN generators.
    flow_layers, flow_hidden : int
        MADE transforms of the flow and their hidden units.
    flow_transform : str
        "spline" or "affine" MADE steps.
    flow_bins : int
        Spline bins.
    components : int
        Gaussians of the mixture density network.
    epochs, gan_epochs : int
        Most epochs of the likelihood models and of the GANs.
    batch_size : int
        Muons per optimiser step.
    learning_rate : float
        Adam's step size for the likelihood models.
    gan_learning_rate, critic_learning_rate : float
        Adam's step size for the GAN generators and for their critics (a faster critic, as in
        the two time-scale update rule, keeps the BCE game from collapsing).
    patience : int
        Epochs without improvement before stopping (GANs: of the monitor).
    cgan_critic_steps : int
        Discriminator updates per generator update of the conditional (BCE) GAN.
    critic_steps : int
        WGAN-GP critic updates per generator update.
    gradient_penalty : float
        WGAN-GP penalty weight.
    monitor_events : int
        Validation muons the GAN monitor generates per epoch.
    """

    hidden: list[int]
    noise_dim: int
    flow_layers: int
    flow_hidden: int
    flow_transform: str
    flow_bins: int
    components: int
    epochs: int
    gan_epochs: int
    batch_size: int
    learning_rate: float
    gan_learning_rate: float
    critic_learning_rate: float
    patience: int
    cgan_critic_steps: int
    critic_steps: int
    gradient_penalty: float
    monitor_events: int


def binned_w1(z_true: Any, z_gen: Any, pt_rank: Any, bins: int = 4) -> Any:
    """Mean over pT bins (equal counts) and features of the 1-D Wasserstein distance.

    ``pt_rank`` orders the rows by pT; with equal sample sizes W1 is the mean absolute
    difference of the sorted values.
    """
    import torch

    z_true, z_gen = z_true[pt_rank], z_gen[pt_rank]
    parts = []
    for idx in torch.tensor_split(torch.arange(len(z_true), device=z_true.device), bins):
        a, _ = torch.sort(z_true[idx], dim=0)
        b, _ = torch.sort(z_gen[idx], dim=0)
        parts.append((a - b).abs().mean())
    return torch.stack(parts).mean()


def _gan_players(net: ConditionalGan, kind: str, s: Settings) -> list[Any]:
    import torch

    from anomalyhunt.gan import gan_players

    wgan = kind == "wgan_gp"
    return gan_players(
        net.generator.parameters(),
        net.critic,
        lambda b, g: torch.cat([net.generate(b[1], g), b[1]], dim=1),
        lambda b: torch.cat([b[0], b[1]], dim=1),
        kind="wgan_gp" if wgan else "bce",
        critic_steps=s.critic_steps if wgan else s.cgan_critic_steps,
        penalty=s.gradient_penalty,
        betas=(0.0, 0.9) if wgan else (0.5, 0.9),
        learning_rate=s.gan_learning_rate,
        critic_learning_rate=s.critic_learning_rate,
    )


def build(kind: str, n_out: int, n_cond: int, s: Settings, seed: int) -> Any:
    """A fresh network of ``kind``, its initial weights set by ``seed``."""
    with seeded(seed):
        if kind in ("cgan", "wgan_gp"):
            return ConditionalGan(n_out, n_cond, s.hidden, s.noise_dim)
        if kind == "flow":
            return ConditionalFlow(
                n_out, n_cond, s.flow_layers, s.flow_hidden, s.flow_transform, s.flow_bins
            )
        if kind == "mdn":
            return MixtureDensity(n_out, n_cond, s.hidden, s.components)
    raise AnomalyHuntError(f"fastsim.models: unknown model '{kind}'; use some of {KINDS}")


def train(
    kind: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    settings: Settings,
    theta_range: ThetaRange,
    efficiency: EfficiencyMap,
    seed: int,
    device: str,
    checkpoint: Any = None,
) -> tuple[FastSim, TrainingResult]:
    """Train one fast simulation on (theta, response) and return it with its training record.

    Parameters
    ----------
    kind : str
        One of :data:`~anomalyhunt.fastsim.simulator.KINDS`.
    data : tuple of arrays
        (theta_train, response_train, theta_valid, response_valid) of reconstructed muons.
    settings : Settings
        Sizes and training settings.
    theta_range : ThetaRange
        The range the muons were generated in (the encoding and the guard use it).
    efficiency : EfficiencyMap
        The efficiency map the simulator applies.
    seed : int
        Seeds the initial weights, batch order and noise.
    device : str
        Torch device.
    checkpoint : path, optional
        The loop's checkpoint file (a killed run resumes from it).
    """
    import torch

    from anomalyhunt.config import derive_seed

    theta, resp, theta_val, resp_val = data
    mean, scale = resp.mean(axis=0), resp.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)

    def prep(t: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((r - mean) / scale).astype(np.float32), encode(t, theta_range)

    train_set, valid_set = prep(theta, resp), prep(theta_val, resp_val)
    s = settings
    net = build(kind, resp.shape[1], train_set[1].shape[1], s, derive_seed(seed, "init"))
    common = {
        "batch_size": s.batch_size,
        "patience": s.patience,
        "seed": derive_seed(seed, "loop"),
        "device": device,
        "label": f"fastsim {kind}",
        "checkpoint": checkpoint,
    }
    if kind in ("cgan", "wgan_gp"):
        dev = torch.device(device)
        m = min(s.monitor_events, len(theta_val))
        z_mon = torch.as_tensor(valid_set[0][:m], device=dev)
        c_mon = torch.as_tensor(valid_set[1][:m], device=dev)
        rank = torch.as_tensor(np.argsort(theta_val[:m, 0], kind="stable"), device=dev)

        def monitor(generator: Any) -> float:
            return float(binned_w1(z_mon, net.generate(c_mon, generator), rank))

        result = train_network(
            net,
            _gan_players(net, kind, s),
            train_set,
            valid_set,
            epochs=s.gan_epochs,
            learning_rate=s.gan_learning_rate,
            monitor=monitor,
            **common,
        )
    else:
        result = train_network(
            net,
            lambda b, _: -net.log_prob(b[0], b[1]),
            train_set,
            valid_set,
            epochs=s.epochs,
            learning_rate=s.learning_rate,
            min_delta=1e-4,
            **common,
        )
    sim = FastSim(
        kind,
        net,
        theta_range=theta_range,
        mean=mean,
        scale=scale,
        efficiency=efficiency,
        device=device,
    )
    return sim, result


def nll(sim: FastSim, theta: np.ndarray, resp: np.ndarray) -> float | None:
    """Mean -log q(r | theta) per muon in the response's units (None for a GAN: no density)."""
    from anomalyhunt.scores.training import batched

    if not hasattr(sim.net, "log_prob"):
        return None
    z = ((resp - sim.mean) / sim.scale).astype(np.float32)
    lp = batched(
        lambda b, _: sim.net.log_prob(b[0], b[1]), (z, encode(theta, sim.range)), device=sim.device
    )
    return float(-(lp - np.log(sim.scale).sum()).mean())
