"""Learning to pivot (arXiv:1611.01046) on the paper's 2-D toy: ``python -m anomalyhunt.pivot``.

Trains a classifier alone (``lambda = 0``) and against a mixture-density adversary that predicts
the nuisance ``z`` from its output, for ``lambda`` in ``scan`` and ``strength``; writes
``pivot.png`` (f at ``Z = -1, 0, +1`` without and with the adversary, the paper's figure 2, and
the two decision boundaries), ``tradeoff.png`` (background rejection against the KS distance
over ``lambda``; a cut's signal efficiency at the three nuisance values) and ``metrics.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt import branch, cli
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.pivot import figures, metrics, model, toy

log = logging.getLogger("anomalyhunt.pivot")

#: What ``scale: paper`` changes: the paper's lambda = 50 and minibatch of 128 (section 5.1,
#: figure 3), ten times the CPU samples, and longer training with more adversary steps per
#: minibatch (the paper's K = 500 updates of r per update of f on fresh minibatches are not
#: reproduced by the loop, which repeats steps on one minibatch).
PAPER_SIZES: dict[str, Any] = {
    "n_train": 200000,
    "n_valid": 50000,
    "n_test": 200000,
    "strength": 50.0,
    "batch_size": 128,
    "adversary_steps": 10,
    "pretrain_epochs": 50,
    "adversary_epochs": 30,
    "epochs": 100,
    "patience": 15,
}
#: The nuisance values of the conditional distributions (units of its standard deviation).
Z_VALUES = (-1.0, 0.0, 1.0)
#: Bins of f in the distributions of pivot.png and metrics.json.
F_BINS = 25


def settings(block: dict[str, Any]) -> dict[str, Any]:
    """The block with the paper's sizes in when ``scale`` is ``paper``, checked."""
    s = dict(block)
    if s["scale"] == "paper":
        s.update(PAPER_SIZES)
    if s["batch_size"] > s["n_train"]:
        raise AnomalyHuntError(
            f"pivot.batch_size: {s['batch_size']} is more than the {s['n_train']} training "
            "events (pivot.n_train); lower it or raise n_train"
        )
    if s["n_valid"] < 10 * s["bins"] ** 2 or s["n_test"] < 10 * s["bins"] ** 2:
        raise AnomalyHuntError(
            f"pivot.bins: {s['bins']} x {s['bins']} cells of the mutual information need at "
            f"least {10 * s['bins'] ** 2} validation and test events (pivot.n_valid "
            f"{s['n_valid']}, pivot.n_test {s['n_test']}); lower bins or raise them"
        )
    if s["strength"] in s["scan"]:
        raise AnomalyHuntError(
            f"pivot.scan: holds the headline pivot.strength {s['strength']:g}, which is always "
            "trained; drop it from the scan"
        )
    return s


def _histograms(net: Any, cond: dict[float, toy.Sample], device: str) -> dict[float, np.ndarray]:
    edges = np.linspace(0.0, 1.0, F_BINS + 1)
    return {
        z: np.histogram(model.scores(net, s.x, device), edges, density=True)[0]
        for z, s in cond.items()
    }


def report(
    b: branch.Branch,
    s: dict[str, Any],
    nets: dict[float, Any],
    rows: list[dict[str, float]],
    test: toy.Sample,
    cond: dict[float, toy.Sample],
) -> dict[str, Any]:
    """Write both figures; the numbers of metrics.json."""
    lam = float(s["strength"])
    plain, pivot = nets[0.0], nets[lam]
    by_lambda = {r["lambda"]: r for r in rows}
    edges = np.linspace(0.0, 1.0, F_BINS + 1)
    hists = {k: _histograms(net, cond, b.device) for k, net in ((0.0, plain), (lam, pivot))}
    x1, x2 = np.linspace(-3.0, 4.0, 141), np.linspace(-3.5, 5.0, 171)
    xx = np.stack(np.meshgrid(x1, x2), axis=-1).reshape(-1, 2).astype(np.float32)
    cuts = []
    for net in (plain, pivot):
        c = cond[0.0]
        cuts.append(
            metrics.cut_at_efficiency(model.scores(net, c.x[c.y > 0.5], b.device), s["efficiency"])
        )
    shown = slice(0, 1500)
    figures.pivot_figure(
        edges,
        hists[0.0],
        hists[lam],
        lam,
        (
            by_lambda[0.0]["ks_signal_z_minus1_vs_plus1"],
            by_lambda[lam]["ks_signal_z_minus1_vs_plus1"],
        ),
        (x1, x2),
        tuple(model.scores(net, xx, b.device).reshape(len(x2), len(x1)) for net in (plain, pivot)),
        (cuts[0], cuts[1]),
        (test.x[shown], test.y[shown], test.z[shown]),
        b.path("pivot.png"),
    )
    # the best classifier that ignores z, exactly (the toy's densities)
    opt_scored = {z: (c.y, toy.optimal_log_ratio(c.x)) for z, c in cond.items()}
    optimal = metrics.summarise(
        test.y,
        test.z,
        toy.optimal_log_ratio(test.x),
        opt_scored,
        efficiency=s["efficiency"],
        bins=s["bins"],
    )
    figures.tradeoff_figure(rows, optimal, s["efficiency"], b.path("tradeoff.png"))
    return {
        "working_point_signal_efficiency": s["efficiency"],
        "without_adversary": by_lambda[0.0],
        "with_adversary": by_lambda[lam],
        "tradeoff": rows,
        "optimal_classifier_ignoring_z": optimal
        | {"cross_entropy_nats": toy.optimal_cross_entropy(test)},
        "f_distributions": {
            "edges": edges,
            "without_adversary": {f"{z:+g}": h for z, h in hists[0.0].items()},
            "with_adversary": {f"{z:+g}": h for z, h in hists[lam].items()},
        },
        "z_entropy_nats": toy.Z_ENTROPY,
        "paper_section3": {
            "adversary_loss_against_a_pivot_nats": toy.Z_ENTROPY,
            "note": "a pivot leaves the best adversary the prior of z: L_r = H(z)",
        },
        "paper_fig3": {
            "lambda": 50,
            "minibatch_size": 128,
            "adversary_steps_K": 500,
            "iterations": 200,
            "note": "the paper's toy training (arXiv:1611.01046, section 5.1, figure 3)",
        },
        "sizes": {k: s[k] for k in ("n_train", "n_valid", "n_test", "scale")},
    }


def main(argv: Sequence[str] | None = None) -> None:
    b = branch.start("pivot", argv, __doc__)
    s = settings(b.block)
    rng = np.random.default_rng(b.seed("toy"))
    train, valid, test = (toy.generate(s[k], rng) for k in ("n_train", "n_valid", "n_test"))
    cond = {z: toy.conditional(s["n_test"], z, rng) for z in Z_VALUES}
    fit = {k: s[k] for k in ("batch_size", "learning_rate", "patience")} | {"device": b.device}
    adv = fit | {"learning_rate": s["adversary_learning_rate"], "epochs": s["adversary_epochs"]}

    def summary(net: Any) -> dict[str, float]:
        scored = {z: (c.y, model.scores(net, c.x, b.device)) for z, c in cond.items()}
        out = metrics.summarise(
            test.y,
            test.z,
            model.scores(net, test.x, b.device),
            scored,
            efficiency=s["efficiency"],
            bins=s["bins"],
        )
        return out

    net = model.build(
        hidden=s["hidden"],
        adversary_hidden=s["adversary_hidden"],
        components=s["components"],
        seed=b.seed("init"),
    )
    log.info("pivot: pretraining the classifier on %d events", len(train))
    model.train_classifier(
        net,
        train,
        valid,
        epochs=s["pretrain_epochs"],
        seed=b.seed("classifier"),
        checkpoint=b.path("classifier.ckpt"),
        **fit,
    )
    model.train_adversary(
        net, train, valid, seed=b.seed("adversary", 0), checkpoint=b.path("adversary.ckpt"), **adv
    )
    pretrained = model.clone(net)
    rows = [{"lambda": 0.0, **summary(net), "adversary_loss_nats": model.adversary_loss(net, test)}]
    nets = {0.0: net}
    for lam in sorted({*map(float, s["scan"]), float(s["strength"])}):
        net = model.clone(pretrained)
        result = model.train_pivot(
            net,
            train,
            valid,
            strength=lam,
            adversary_steps=s["adversary_steps"],
            epochs=s["epochs"],
            adversary_learning_rate=s["adversary_learning_rate"],
            bins=s["bins"],
            seed=b.seed("game", lam),
            checkpoint=b.path("game.ckpt"),
            **fit,
        )
        # a fresh look by the adversary at the final f: what f still tells about z
        model.train_adversary(
            net,
            train,
            valid,
            seed=b.seed("adversary", lam),
            checkpoint=b.path("adversary.ckpt"),
            **adv,
        )
        rows.append(
            {
                "lambda": lam,
                **summary(net),
                "adversary_loss_nats": model.adversary_loss(net, test),
                "best_epoch": result.best_epoch,
                "epochs_trained": len(result.history),
            }
        )
        nets[lam] = net
        log.info("pivot: lambda %g: %s", lam, rows[-1])
    metrics_out = report(b, s, nets, rows, test, cond)
    b.finish(metrics_out)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
