"""Reference scorers that need simulation, and the fully supervised one.

A weakly supervised or unsupervised score learns from the window's data alone. Two reference
points frame how good it is, and both need a *simulator* rather than data:

* the fully supervised classifier (here): simulated background vs simulated signals, the best a
  search can do when it knows what it looks for (and the price it pays when it guesses wrong);
* the idealized anomaly detector (``idealized.py``): data vs a perfectly modelled background.

The reference samples come from a :class:`~anomalyhunt.scores.simulation.Simulation`; a
:class:`ReferenceScorer` gets one per instance (:meth:`ReferenceScorer.set_reference`, before
``fit``) or per class (:meth:`ReferenceScorer.bound_to` returns a subclass whose instances carry it;
that is what the stage command hands to the unchanged k-fold driver).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.classifiers import check_kind, is_network
from anomalyhunt.scores.ensemble import Ensemble
from anomalyhunt.scores.penalties import METHODS as PENALTIES
from anomalyhunt.scores.penalties import classifier_for
from anomalyhunt.scores.simulation import Simulation, kinematically_allowed

log = logging.getLogger(__name__)

#: mX and mY (TeV) whose combinations make the default supervised signal cocktail.
DEFAULT_MX: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7)
DEFAULT_MY: tuple[float, ...] = (0.1, 0.3)
#: Below this fraction of W' events in the SR, the supervised cocktail moves the W' to the SR centre.
MIN_SIGNAL_ACCEPTANCE = 0.01

R = TypeVar("R", bound="ReferenceScorer")
#: The values of ``scores.supervised.decorrelate`` and ``scores.idealized.decorrelate``.
DECORRELATE: tuple[str, ...] = ("none", *PENALTIES)


class ReferenceScorer(Scorer):
    """A Scorer that also trains on simulated reference samples from a :class:`Simulation`.

    Give it one with :meth:`set_reference` before ``fit``, or build it from :meth:`bound_to`'s
    subclass. ``score``, ``save`` and ``load`` never need the simulation.

    Parameters
    ----------
    classifier : {"hgb", "mlp"}, default "hgb"
        The ensemble members' classifier.
    ensemble : int, default 3
        Members of the classifier ensemble.
    decorrelate : {"none", "disco", "adversary"}, default "none"
        ``disco`` and ``adversary`` penalise the dependence of the output on mjj for the
        class-0 (simulated background) events while the network trains
        (:mod:`~anomalyhunt.scores.penalties`); they need ``classifier="mlp"``.
    decorrelation_strength : float, default 10.0
        Weight of that penalty (unused with ``none``).
    hgb, mlp : mapping, optional
        Keyword arguments of the two classifiers; only the chosen one's is used.
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    needs_simulation: ClassVar[bool] = True
    bound_simulation: ClassVar[Simulation | None] = None
    MANIFEST = "scorer.json"

    @classmethod
    def uses_torch(cls, params: Mapping[str, Any]) -> bool:
        return is_network(params)

    def __init__(
        self,
        *,
        classifier: str = "hgb",
        ensemble: int = 3,
        decorrelate: str = "none",
        decorrelation_strength: float = 10.0,
        hgb: Mapping[str, Any] | None = None,
        mlp: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.classifier = check_kind(classifier, f"scores.{self.name}.classifier")
        self.ensemble = int(ensemble)
        self.hgb, self.mlp = dict(hgb or {}), dict(mlp or {})
        self.decorrelate = decorrelate
        self.decorrelation_strength = float(decorrelation_strength)
        self.kind, self.params = classifier_for(
            self.classifier,
            getattr(self, self.classifier),
            self.decorrelate,
            self.decorrelation_strength,
            f"scores.{self.name}",
            DECORRELATE,
        )
        self.simulation: Simulation | None = type(self).bound_simulation
        self.model: Ensemble | None = None

    def set_reference(self: R, simulation: Simulation) -> R:
        """Use ``simulation`` for the reference samples of the next ``fit``."""
        self.simulation = simulation
        return self

    @classmethod
    def bound_to(cls: type[R], simulation: Simulation) -> type[R]:
        """A subclass (same name, not registered) whose instances use ``simulation``.

        This lets the unchanged k-fold driver, which only calls
        ``cls.from_config(params, seed=...)``, build reference scorers.
        """
        return type(cls.__name__, (cls,), {"bound_simulation": simulation, "__doc__": cls.__doc__})

    def _need_simulation(self) -> Simulation:
        if self.simulation is None:
            raise AnomalyHuntError(
                f"scoring method '{self.name}' needs simulated reference samples: call "
                "set_reference(Simulation(...)) before fit (the stage command does so for "
                "data.source: toy)"
            )
        return self.simulation

    def inputs(self, X: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """The classifier's input rows: the features, plus mjj last for a decorrelation penalty."""
        return np.column_stack([X, mjj]) if self.decorrelate in PENALTIES else X

    def _new_ensemble(self, seed: int) -> Ensemble:
        return Ensemble(
            self.kind,
            self.params,
            self.ensemble,
            seed=seed,
            device=self.device,
            threads=self.threads,
        )

    def score(self, data: WindowData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() or load() first")
        return self.model.predict_proba(self.inputs(data.X, data.mjj))

    def save(self, path: str | os.PathLike) -> None:
        """A directory: the ensemble's member files plus this scorer's settings."""
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}: nothing to save before fit()")
        path = Path(path)
        self.model.save(path)
        write_json(
            {"name": self.name, "params": self.get_params(), "seed": self.seed},
            path / self.MANIFEST,
        )

    @classmethod
    def load(cls: type[R], path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> R:
        path = Path(path)
        if not (path / cls.MANIFEST).exists():
            raise AnomalyHuntError(f"{path}: no saved '{cls.name}' model found")
        meta = read_json(path / cls.MANIFEST)
        if meta.get("name") != cls.name:
            raise AnomalyHuntError(f"{path}: holds a '{meta.get('name')}' model, not '{cls.name}'")
        scorer = cls.from_config(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.model = Ensemble.load(path, device=device, threads=threads)
        return scorer


def _split(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    n_val = min(max(int(round(validation_fraction * n)), 1), n - 1)
    return np.sort(idx[n_val:]), np.sort(idx[:n_val])


@register
class Supervised(ReferenceScorer):
    """Simulated background vs a cocktail of simulated W' -> X Y signals, all in the window's SR.

    If the W' hardly reaches this window's SR, the cocktail uses a W' at the SR centre. The model
    never sees the window's data, so it depends on the simulation alone: it is trained once per
    :class:`Simulation` (seed derived from the simulation's) and every fold reuses it. The
    parameters are the config's ``scores.supervised`` block.

    Parameters
    ----------
    n_background : int, default 60000
        Simulated SR background events.
    n_signal : int, default 6000
        Simulated SR signal events per (mx, my) point.
    signals : list of [mx, my], optional
        The cocktail's points in TeV; None: the grid :data:`DEFAULT_MX` x :data:`DEFAULT_MY`
        where kinematically allowed, plus the injected point.
    leave_out_injected : bool, default False
        Drop the injected (mx, my) from the cocktail: the price of guessing the signal wrong.
    validation_fraction : float, default 0.2
        Share of the simulated events kept for early stopping.

    Other Parameters
    ----------------
    classifier, ensemble, hgb, mlp, seed, device, threads
        As for :class:`ReferenceScorer`.
    """

    name = "supervised"
    requires_regions = ()

    def __init__(
        self,
        *,
        n_background: int = 60000,
        n_signal: int = 6000,
        signals: Sequence[Sequence[float]] | None = None,
        leave_out_injected: bool = False,
        validation_fraction: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_background = int(n_background)
        self.n_signal = int(n_signal)
        self.signals = None if signals is None else [[float(v) for v in p] for p in signals]
        self.leave_out_injected = bool(leave_out_injected)
        self.validation_fraction = float(validation_fraction)

    def cocktail(self) -> list[tuple[float, float]]:
        """The (mx, my) points of the signal cocktail, in TeV."""
        sim = self._need_simulation()
        if self.signals:
            points = [(a, b) for a, b in self.signals]
            for mx, my in points:
                if not kinematically_allowed(mx, my, sim.mjj_signal):
                    raise AnomalyHuntError(
                        f"scores.supervised.signals: point [{mx}, {my}] is not allowed for a W' of "
                        f"{sim.mjj_signal} TeV (mx + my must be below a quarter of it)"
                    )
        else:
            points = [
                (mx, my)
                for mx in DEFAULT_MX
                for my in DEFAULT_MY
                if kinematically_allowed(mx, my, sim.mjj_signal)
            ]
            if not any(np.isclose([sim.mx, sim.my], p).all() for p in points):
                points.append((sim.mx, sim.my))
        if self.leave_out_injected:
            points = [p for p in points if not np.isclose([sim.mx, sim.my], p).all()]
        if not points:
            raise AnomalyHuntError("scores.supervised: the signal cocktail is empty")
        return points

    def _train(self, sim: Simulation) -> Ensemble:
        n_sig = self.n_signal
        bkg = sim.background(self.n_background)
        signals = []
        for mx, my in self.cocktail():
            mass = sim.mjj_signal
            if sim.signal_acceptance(mx, my) < MIN_SIGNAL_ACCEPTANCE:
                # a search for a resonance in this window: the hypothesis is a W' at its centre
                mass = sim.window.centre
                if not kinematically_allowed(mx, my, mass):
                    log.warning(
                        "supervised: (mx=%.2f, my=%.2f) not allowed for a W' of %.2f TeV; "
                        "left out in %s",
                        mx,
                        my,
                        mass,
                        sim.window.id,
                    )
                    continue
                log.info(
                    "supervised: the W' (%.2f TeV) barely reaches the SR of %s; the cocktail point "
                    "(mx=%.2f, my=%.2f) uses a W' at the SR centre, %.2f TeV",
                    sim.mjj_signal,
                    sim.window.id,
                    mx,
                    my,
                    mass,
                )
            signals.append(sim.signal(n_sig, mx, my, mjj=mass))
        if not signals:
            raise AnomalyHuntError(
                f"supervised: no cocktail point is allowed in {sim.window.id}; set scores.supervised.signals"
            )
        X = self.inputs(
            np.concatenate([bkg.X, *(s.X for s in signals)]),
            np.concatenate([bkg.mjj, *(s.mjj for s in signals)]),
        )
        y = np.r_[np.zeros(len(bkg)), np.ones(len(X) - len(bkg))].astype(np.int64)
        seed = derive_seed(sim.seed, "supervised", self.classifier)
        tr, va = _split(len(X), self.validation_fraction, derive_seed(seed, "split"))
        ens = self._new_ensemble(seed)
        ens.fit(X[tr], y[tr], X[va], y[va])
        log.info(
            "supervised: %d background vs %d signal events from %d (mx, my) points",
            len(bkg),
            len(X) - len(bkg),
            len(signals),
        )
        return ens

    def fit(self, train: WindowData, valid: WindowData) -> Supervised:
        """Train on simulation only; ``train`` and ``valid`` (the data) are not used."""
        sim = self._need_simulation()
        key = "supervised/" + json.dumps(self.get_params(), sort_keys=True, default=str)
        self.model = sim.memo(key, lambda: self._train(sim))
        return self
