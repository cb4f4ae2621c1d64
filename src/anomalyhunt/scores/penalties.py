"""Training penalties that keep a neural classifier's output independent of mjj (issue 17).

An SR-vs-SB (or data-vs-reference) classifier whose output depends on mjj for background events
sculpts the background spectrum when it is cut on (:mod:`~anomalyhunt.scores.decorrelate`
explains why). Instead of reshaping the features, these penalise the dependence while the
network trains, on the events of class 0 only (the sidebands for CWoLa, the simulated background
for the supervised and idealized classifiers), so that the signal is still free to be separated:

* ``disco``: the squared distance correlation of output and mjj (Szekely, Rizzo, Bakirov 2007),
  added to the cross-entropy with weight ``strength``: DisCo (Kasieczka and Shih,
  arXiv:2001.05310). Zero only for independent variables; a batch-level term, cheap.
* ``adversary``: a mixture density network ``r`` predicts standardised ln mjj from the
  classifier's output; the classifier minimises ``L_clf - strength * L_r`` and ``r`` minimises
  ``L_r`` (Louppe, Kagan, Cranmer, arXiv:1611.01046; the ``pivot`` branch shows the game on the
  paper's toy). Slower (an extra network, several adversary steps per batch).

Early stopping never trusts the adversary (a weak one makes the game's loss look good): the
disco classifier is judged by its own objective on the validation events, the adversary's by
``L_clf + strength * I(output; mjj)`` with the mutual information binned, which is the game's
value with an ideal adversary up to a constant.

:class:`DecorrelatedMLPClassifier` is the MLP that trains with either penalty (an ensemble kind of
its own); :func:`classifier_for` turns a scorer's ``decorrelate`` setting into it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.scores.classifiers import (
    CLASSIFIERS,
    MLPClassifier,
    _build_mlp,
    balanced_weights,
    check_xy,
)
from anomalyhunt.scores.torchio import load_network
from anomalyhunt.scores.training import Player

#: The methods and what they need.
METHODS: tuple[str, ...] = ("disco", "adversary")
#: Class-0 validation events (at most) on which the monitors measure the dependence.
MONITOR_EVENTS = 4096
#: Equal-count bins per variable of the adversary monitor's mutual information.
MONITOR_BINS = 10
#: The adversary: Gaussians of its mixture, hidden widths, updates per classifier update (fewer
#: than 5, or a slower adversary, let the classifier outrun it and swing between opposite mjj
#: dependences instead of settling on none: measured on tests/test_cwola.py's correlated window).
ADVERSARY_COMPONENTS = 5
ADVERSARY_HIDDEN: tuple[int, ...] = (32, 32)
ADVERSARY_STEPS = 5
#: Epochs the adversary trains alone against the initial classifier before the game.
ADVERSARY_PRETRAIN_EPOCHS = 2
#: The adversary's Adam step size over the classifier's: it must keep up with the classifier.
ADVERSARY_LR_FACTOR = 3.0
#: Bounds of the adversary's log-widths (a collapsing component stays finite).
LOG_SIGMA_RANGE = (-4.0, 3.0)


def distance_correlation(x: Any, y: Any) -> Any:
    """Squared distance correlation of two 1-D tensors, unbiased (0-d tensor, differentiable).

    ``dCor^2 = dCov^2(x, y) / sqrt(dCov^2(x, x) dCov^2(y, y))`` with the U-centred (unbiased)
    distance covariances of Szekely and Rizzo (Ann. Statist. 42 (2014) 2382). Unbiased matters
    for a penalty: the plain (V-statistic) estimate of two *independent* variables is about
    1/n above 0 on a batch of n events and smaller for an output that varies less, so a strong
    penalty would push a weakly supervised classifier towards a constant output. This one
    scatters around 0 for independent variables (slightly negative values happen), and is 1 for
    ``y`` a linear function of ``x``. O(n^2) memory: call it on batches. 0 for fewer than four
    events or a constant variable.
    """
    import torch

    n = x.shape[0]
    if n < 4:
        return x.sum() * 0.0
    off_diagonal = 1.0 - torch.eye(n, dtype=x.dtype, device=x.device)

    def u_centred(v: Any) -> Any:
        d = (v[:, None] - v[None, :]).abs()
        row = d.sum(dim=1)
        out = d - row[:, None] / (n - 2) - row[None, :] / (n - 2) + d.sum() / ((n - 1) * (n - 2))
        return out * off_diagonal

    a, b = u_centred(x), u_centred(y)
    xy, xx, yy = (a * b).sum(), (a * a).sum(), (b * b).sum()
    denom = (xx * yy).clamp_min(0.0).sqrt()
    return torch.where(denom > 0, xy / denom.clamp_min(1e-30), xy * 0.0)


def distance_correlation_np(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`distance_correlation` of two arrays (float64), for tests and reports."""
    import torch

    t = torch.as_tensor(np.asarray(x, dtype=np.float64).copy())
    u = torch.as_tensor(np.asarray(y, dtype=np.float64).copy())
    return float(distance_correlation(t, u))


def _equal_count_bins(v: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count bin index of each value (ties split by position, so a saturated output bins)."""
    order = np.argsort(np.asarray(v), kind="stable")
    index = np.empty(len(v), dtype=np.int64)
    index[order] = np.arange(len(v)) * int(bins) // len(v)
    return index


def mutual_information(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """Plug-in mutual information (nats) of two variables in ``bins`` equal-count bins each.

    Compare only estimates on equally many events: two independent variables give about
    ``(bins - 1)^2 / (2 n)``.

    Parameters
    ----------
    a, b : arrays of equal length
        The two variables (a classifier's output and mjj, or a nuisance).
    bins : int
        Bins per variable (at least 2).
    """
    n = len(a)
    if n != len(b) or n < bins or bins < 2:
        raise ValueError(f"mutual information needs two arrays of >= {bins} events and bins >= 2")
    joint = np.zeros((bins, bins))
    np.add.at(joint, (_equal_count_bins(a, bins), _equal_count_bins(b, bins)), 1.0)
    joint /= n
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def mixture_nll(params: Any, target: Any, components: int) -> Any:
    """Per-event -ln p(target) under the Gaussian mixture ``params`` (logits, means, log-widths)."""
    import torch

    logits, mu, log_sigma = params.split(int(components), dim=1)
    log_sigma = log_sigma.clamp(*LOG_SIGMA_RANGE)
    log_norm = (
        -0.5 * ((target[:, None] - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * np.log(2 * np.pi)
    )
    return -torch.logsumexp(torch.log_softmax(logits, dim=1) + log_norm, dim=1)


def build_adversary(seed: int) -> Any:
    """The mixture density network output -> standardised ln mjj, weights fixed by ``seed``."""
    from anomalyhunt.gan import mlp
    from anomalyhunt.scores.training import seeded

    with seeded(seed):
        return mlp(1, ADVERSARY_HIDDEN, 3 * ADVERSARY_COMPONENTS, activation="elu")


class DecorrelatedMLPClassifier(MLPClassifier):
    """The MLP trained with a penalty that keeps its output independent of mjj for class 0.

    Its inputs carry mjj as an extra **last column** of ``X`` (in ``fit`` and ``predict_proba``
    alike), so that it travels through the :class:`~anomalyhunt.scores.ensemble.Ensemble`'s
    re-splits with its events. That column is never an input of the network: it is dropped before
    the first layer and read only by the penalty, which acts on the class-0 events of each batch
    (they count equally there; sample weights enter the cross-entropy only).

    Parameters
    ----------
    method : {"disco", "adversary"}, default "disco"
        ``disco``: squared distance correlation of output and mjj added to the loss.
        ``adversary``: a mixture density network predicting ln mjj from the output, played
        against.
    strength : float, default 10.0
        Weight of the penalty (DisCo's lambda; the adversary game's lambda).
    hidden, epochs, batch_size, learning_rate, patience, seed, device, threads
        As for :class:`MLPClassifier`.
    """

    kind = "mlp_decorrelated"
    FORMAT = "anomalyhunt.mlp_decorrelated/1"

    def __init__(self, *, method: str = "disco", strength: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if method not in METHODS:
            raise AnomalyHuntError(f"decorrelation method '{method}' unknown; use one of {METHODS}")
        if not float(strength) >= 0:
            raise AnomalyHuntError(f"decorrelation strength must be >= 0, got {strength}")
        self.method = method
        self.strength = float(strength)

    @staticmethod
    def _split(X: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] < 2:
            raise ValueError(f"{what}: the decorrelated MLP needs the features plus mjj as columns")
        return X[:, :-1], np.asarray(X[:, -1], dtype=np.float64)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        sample_weight: np.ndarray | None = None,
        sample_weight_val: np.ndarray | None = None,
    ) -> DecorrelatedMLPClassifier:
        import torch

        from anomalyhunt.scores.training import seeded, set_standardisation, train_network

        (X, mjj), (X_val, mjj_val) = self._split(X, "training data"), self._split(X_val, "valid")
        X, y = check_xy(X, y, "training data")
        X_val, y_val = check_xy(X_val, y_val, "validation data")
        for v in (mjj, mjj_val):
            if not (np.isfinite(v).all() and (v > 0).all()):
                raise AnomalyHuntError("decorrelated classifier: mjj (the last column) must be > 0")
        # standardised ln mjj of the class-0 training events: the adversary's target
        lm, lm_val = np.log(mjj), np.log(mjj_val)
        ref = lm[y == 0] if (y == 0).any() else lm
        centre, spread = ref.mean(), max(ref.std(), 1e-12)
        m, m_val = ((v - centre) / spread for v in (lm, lm_val))
        w, w_val = balanced_weights(y, sample_weight), balanced_weights(y_val, sample_weight_val)
        with seeded(self.seed):
            clf = _build_mlp(X.shape[1], self.hidden)
        set_standardisation(clf, X)
        self.net = clf
        lam = self.strength

        def bce(logit: Any, target: Any, weight: Any) -> Any:
            each = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, target, reduction="none"
            )
            return (each * weight).sum() / weight.sum()

        # validation tensors for the monitors, at most MONITOR_EVENTS class-0 events for the penalty
        dev = torch.device(self.device)
        vx, vy, vw = (
            torch.as_tensor(a, device=dev) for a in (X_val, y_val.astype(np.float32), w_val)
        )
        zero = np.flatnonzero(y_val == 0)
        rng = np.random.default_rng(derive_seed(self.seed, "monitor"))
        if len(zero) > MONITOR_EVENTS:
            zero = np.sort(rng.choice(zero, MONITOR_EVENTS, replace=False))
        vm0 = m_val[zero]
        arrays = (X, y.astype(np.float32), m.astype(np.float32), w.astype(np.float32))
        arrays_val = (
            X_val,
            y_val.astype(np.float32),
            m_val.astype(np.float32),
            w_val.astype(np.float32),
        )

        if self.method == "disco":

            def loss(batch: tuple[Any, ...], generator: Any) -> Any:
                x, target, mass, weight = batch
                logit = clf(x)
                bkg = target < 0.5
                penalty = distance_correlation(torch.sigmoid(logit[bkg]), mass[bkg])
                return bce(logit, target, weight) + lam * penalty

            def monitor(generator: Any) -> float:
                logit = clf(vx)
                p0 = torch.sigmoid(logit[torch.as_tensor(zero, device=dev)]).double()
                dcor = distance_correlation(p0, torch.as_tensor(vm0, device=dev))
                return float(bce(logit, vy, vw)) + lam * float(dcor)

            players: Any = [Player(clf.parameters(), loss)]
            net: Any = clf
        else:
            adversary = build_adversary(derive_seed(self.seed, "adversary"))
            net = torch.nn.ModuleDict({"classifier": clf, "adversary": adversary})
            k = ADVERSARY_COMPONENTS

            def adversary_nll(logit: Any, target: Any, mass: Any, weight: Any) -> Any:
                bkg = (target < 0.5).to(weight.dtype) * weight
                nll = mixture_nll(adversary(torch.sigmoid(logit)[:, None]), mass, k)
                return (nll * bkg).sum() / bkg.sum().clamp_min(1e-12)

            def adversary_loss(batch: tuple[Any, ...], generator: Any) -> Any:
                x, target, mass, weight = batch
                with torch.no_grad():
                    logit = clf(x)
                return adversary_nll(logit, target, mass, weight)

            def classifier_loss(batch: tuple[Any, ...], generator: Any) -> Any:
                x, target, mass, weight = batch
                logit = clf(x)
                return bce(logit, target, weight) - lam * adversary_nll(logit, target, mass, weight)

            def monitor(generator: Any) -> float:
                logit = clf(vx)
                p0 = torch.sigmoid(logit).cpu().numpy()[zero]
                info = mutual_information(p0, vm0, MONITOR_BINS)
                return float(bce(logit, vy, vw)) + lam * info

            vm0_t = torch.as_tensor(vm0, device=dev, dtype=torch.float32)
            vx0 = vx[torch.as_tensor(zero, device=dev)]

            def adversary_monitor(generator: Any) -> float:
                p0 = torch.sigmoid(clf(vx0))[:, None]
                return float(mixture_nll(adversary(p0), vm0_t, k).mean())

            # the adversary first learns what the initial classifier tells about mjj
            train_network(
                net,
                [
                    Player(
                        adversary.parameters(),
                        adversary_loss,
                        learning_rate=ADVERSARY_LR_FACTOR * self.learning_rate,
                    )
                ],
                arrays,
                arrays_val,
                epochs=ADVERSARY_PRETRAIN_EPOCHS,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                patience=ADVERSARY_PRETRAIN_EPOCHS,
                seed=derive_seed(self.seed, "adversary"),
                device=self.device,
                threads=self.threads,
                label="mlp+adversary: adversary",
                monitor=adversary_monitor,
            )
            players = [
                Player(
                    adversary.parameters(),
                    adversary_loss,
                    steps=ADVERSARY_STEPS,
                    learning_rate=ADVERSARY_LR_FACTOR * self.learning_rate,
                ),
                Player(clf.parameters(), classifier_loss),
            ]
        result = train_network(
            net,
            players,
            arrays,
            arrays_val,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
            label=f"mlp+{self.method}",
            monitor=monitor,
        )
        self.net = clf.eval()
        self.best_epoch, self.history = result.best_epoch, result.history
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return super().predict_proba(self._split(X, "data")[0])

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1
    ) -> DecorrelatedMLPClassifier:
        def build(model: DecorrelatedMLPClassifier, n_features: int) -> Any:
            return _build_mlp(n_features, model.hidden)

        return load_network(cls, path, build, "decorrelated MLP model", device, threads)


CLASSIFIERS[DecorrelatedMLPClassifier.kind] = DecorrelatedMLPClassifier


def classifier_for(
    kind: str,
    params: dict[str, Any],
    decorrelate: str,
    strength: float,
    where: str,
    allowed: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    """The ensemble's classifier kind and settings for a scorer's ``decorrelate`` option.

    ``disco`` and ``adversary`` train a penalty into the network, so they need the MLP
    (gradient boosting cannot take one) and turn it into :class:`DecorrelatedMLPClassifier`;
    any other of the scorer's ``allowed`` values leaves ``kind`` and ``params`` as they are.
    """
    if decorrelate not in allowed:
        raise AnomalyHuntError(
            f"{where}.decorrelate '{decorrelate}' unknown; use one of {tuple(allowed)}"
        )
    if decorrelate not in METHODS:
        return kind, params
    if kind != "mlp":
        raise AnomalyHuntError(
            f"{where}.decorrelate: '{decorrelate}' trains a penalty into a neural network and needs "
            f"{where}.classifier: mlp ('{kind}' cannot take one); set it"
        )
    return DecorrelatedMLPClassifier.kind, {
        **params,
        "method": decorrelate,
        "strength": float(strength),
    }
