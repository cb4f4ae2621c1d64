"""Simulated reference samples: the toy generator as a simulator, for one window.

The k-fold driver builds scorers as ``cls.from_config(params, seed=..., device=..., threads=...)``
and knows nothing about simulation, so a reference scorer (``supervised.py``, ``idealized.py``) gets
its :class:`Simulation` either per instance or per class. A :class:`Simulation` is the toy
generator's settings, one window and a seed (derived from the config's seed with the label
``reference``, so independent of the data). It draws events as fixed-size chunks of an endless
seeded stream, keeps those inside the requested region and caches them: "the first n background
events in the SR" is the same sample whatever the order of the requests, and folds share it instead
of regenerating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIGNAL_REGION, Window
from anomalyhunt.scores.base import WindowData


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
