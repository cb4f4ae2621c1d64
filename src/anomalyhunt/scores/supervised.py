"""Reference scorers that need simulation, and the fully supervised one.

A weakly supervised or unsupervised score learns from the window's data alone. Two reference
points frame how good it is, and both need a *simulator* rather than data:

* the fully supervised classifier (here): simulated background vs simulated signals, the best a
  search can do when it knows what it looks for (and the price it pays when it guesses wrong);
* the idealized anomaly detector (``idealized.py``): data vs a perfectly modelled background.

Design of the reference samples. The k-fold driver builds scorers as
``cls.from_config(params, seed=..., device=..., threads=...)`` and knows nothing about simulation, so a
:class:`ReferenceScorer` gets its :class:`Simulation` either per instance
(:meth:`ReferenceScorer.set_reference`, before ``fit``) or per class
(:meth:`ReferenceScorer.bound_to` returns a subclass whose instances carry it; that is what the
stage command hands to the unchanged k-fold driver). A :class:`Simulation` is the toy generator's
settings, one window and a seed (derived from the config's seed with the label ``reference``, so
independent of the data). It draws events as fixed-size chunks of an endless seeded stream, keeps
those inside the requested region and caches them: "the first n background events in the SR" is
the same sample whatever the order of the requests, and folds share it instead of regenerating.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.regions import SIGNAL_REGION, Window
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.classifiers import check_kind
from anomalyhunt.scores.ensemble import Ensemble

log = logging.getLogger(__name__)

#: mX and mY (TeV) whose combinations make the default supervised signal cocktail.
DEFAULT_MX: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7)
DEFAULT_MY: tuple[float, ...] = (0.1, 0.3)
#: Below this fraction of W' events in the SR, the supervised cocktail moves the W' to the SR centre.
MIN_SIGNAL_ACCEPTANCE = 0.01

R = TypeVar("R", bound="ReferenceScorer")


def kinematically_allowed(mx: float, my: float, mjj_signal: float) -> bool:
    """Whether the toy generator can make W'(mjj_signal) -> X(mx) Y(my) (mx + my < M/4)."""
    return mx > 0 and my > 0 and mx + my < 0.25 * mjj_signal


@dataclass
class Simulation:
    """Toy-generator settings, one window and a seed: a source of reference samples.

    ``background(n)`` and ``signal(n, mx, my)`` return the first ``n`` events of seeded streams that
    fall in the window's SR (or the whole window with ``region=None``), as :class:`WindowData`
    (``label`` 0 or 1). ``memo`` caches anything derived from them (e.g. a trained model that does
    not depend on the data) for the lifetime of this object.
    """

    window: Window
    seed: int
    mjj_correlation: float = 1.0
    mjj_signal: float = 3.5
    mx: float = 0.5
    my: float = 0.1
    background_chunk: int = 200_000
    signal_chunk: int = 20_000
    max_generated: int = 50_000_000
    _streams: dict[tuple, list[WindowData]] = field(default_factory=dict, repr=False)
    _generated: dict[tuple, int] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any], window: Window, method: str = "") -> Simulation:
        """The simulation of a validated config's toy generator; other data sources cannot give one."""
        require_toy(config, method)
        tc = config["data"]["toy"]
        return cls(
            window=window,
            seed=derive_seed(config["seed"], "reference", window.id),
            mjj_correlation=float(tc["mjj_correlation"]),
            mjj_signal=float(tc["signal"]["mjj"]),
            mx=float(tc["signal"]["mx"]),
            my=float(tc["signal"]["my"]),
        )

    def _draw(
        self, key: tuple, n: int, region: int | None, make: Callable[[int, int], Any]
    ) -> WindowData:
        from anomalyhunt.data.features import compute_features

        skey = (*key, region)
        chunks = self._streams.setdefault(skey, [])
        have = sum(len(c) for c in chunks)
        while have < n:
            i = len(chunks)
            chunk_size = self.background_chunk if key[0] == "background" else self.signal_chunk
            if (i + 1) * chunk_size > self.max_generated:
                raise AnomalyHuntError(
                    f"simulation: only {have} {key[0]} events of {n} requested fall in "
                    f"{'the SR' if region else 'the window'} of {self.window.id} after generating "
                    f"{i * chunk_size}; request fewer events or use a window nearer the signal"
                )
            events = make(chunk_size, derive_seed(self.seed, *key, i))
            feats = compute_features(events, source="simulation")
            region_of = self.window.region_of(feats["mjj"].to_numpy())
            keep = region_of > 0 if region is None else region_of == region
            feats = feats.loc[keep]
            data = WindowData.from_frame(feats.assign(region=region_of[keep]))
            chunks.append(data)
            have += len(data)
            self._generated[skey] = (i + 1) * chunk_size
        X = np.concatenate([c.X for c in chunks])[:n]
        return WindowData(
            X=X,
            mjj=np.concatenate([c.mjj for c in chunks])[:n],
            region=np.concatenate([c.region for c in chunks])[:n],
            label=np.concatenate([c.label for c in chunks])[:n],
        )

    def background(self, n: int, region: int | None = SIGNAL_REGION) -> WindowData:
        """The first ``n`` simulated background events in ``region`` (SR by default)."""
        from anomalyhunt.data import toy

        return self._draw(
            ("background",),
            n,
            region,
            lambda size, seed: toy.generate(size, 0, seed, mjj_correlation=self.mjj_correlation),
        )

    def _signal_key(self, mx: float, my: float, mjj: float) -> tuple:
        key: tuple = ("signal", round(mx, 6), round(my, 6))
        return key if mjj == self.mjj_signal else (*key, round(mjj, 6))

    def signal(
        self,
        n: int,
        mx: float,
        my: float,
        region: int | None = SIGNAL_REGION,
        mjj: float | None = None,
    ) -> WindowData:
        """The first ``n`` simulated W'(mjj) -> X(mx) Y(my) events in ``region`` (SR by default).

        ``mjj`` is the W' mass (default: the injected signal's).
        """
        from anomalyhunt.data import toy

        mjj = self.mjj_signal if mjj is None else float(mjj)
        if not kinematically_allowed(mx, my, mjj):
            raise AnomalyHuntError(
                f"simulation: signal point mx={mx}, my={my} TeV is not allowed for a W' of "
                f"{mjj} TeV (mx + my must be below a quarter of it)"
            )
        return self._draw(
            self._signal_key(mx, my, mjj),
            n,
            region,
            lambda size, seed: toy.generate(
                0,
                size,
                seed,
                mjj_correlation=self.mjj_correlation,
                mjj_signal=mjj,
                mx=mx,
                my=my,
            ),
        )

    def signal_acceptance(self, mx: float, my: float) -> float:
        """Fraction of the W' -> X Y events (one generated chunk) that fall in the window's SR."""
        from anomalyhunt.data import toy
        from anomalyhunt.data.features import compute_features

        seed = derive_seed(self.seed, *self._signal_key(mx, my, self.mjj_signal), 0)
        events = toy.generate(
            0,
            self.signal_chunk,
            seed,
            mjj_correlation=self.mjj_correlation,
            mjj_signal=self.mjj_signal,
            mx=mx,
            my=my,
        )
        mjj = compute_features(events, source="simulation")["mjj"].to_numpy()
        return float((self.window.region_of(mjj) == SIGNAL_REGION).sum()) / self.signal_chunk

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per key for this simulation; later calls return the stored result."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


def require_toy(config: dict[str, Any], method: str = "") -> None:
    """Fail clearly unless the config's data come from the toy generator (the only simulator)."""
    source = config["data"]["source"]
    if source != "toy":
        what = f"scoring method '{method}'" if method else "this scoring method"
        raise AnomalyHuntError(
            f"{what} needs simulated reference samples (perfectly modelled background, signal "
            f"templates), which only data.source: toy can provide; data.source is '{source}'. "
            "For the LHCO R&D signal region run 'python -m anomalyhunt.lhco_check' instead"
        )


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
    hgb, mlp : mapping, optional
        Keyword arguments of the two classifiers; only the chosen one's is used.
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    needs_simulation: ClassVar[bool] = True
    bound_simulation: ClassVar[Simulation | None] = None
    MANIFEST = "scorer.json"

    def __init__(
        self,
        *,
        classifier: str = "hgb",
        ensemble: int = 3,
        hgb: Mapping[str, Any] | None = None,
        mlp: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.classifier = check_kind(classifier, f"scores.{self.name}.classifier")
        self.ensemble = int(ensemble)
        self.hgb, self.mlp = dict(hgb or {}), dict(mlp or {})
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

    def _new_ensemble(self, seed: int) -> Ensemble:
        return Ensemble(
            self.classifier,
            getattr(self, self.classifier),
            self.ensemble,
            seed=seed,
            device=self.device,
            threads=self.threads,
        )

    def score(self, data: WindowData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() or load() first")
        return self.model.predict_proba(data.X)

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
            signals.append(sim.signal(n_sig, mx, my, mjj=mass).X)
        if not signals:
            raise AnomalyHuntError(
                f"supervised: no cocktail point is allowed in {sim.window.id}; set scores.supervised.signals"
            )
        X = np.concatenate([bkg.X, *signals])
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
