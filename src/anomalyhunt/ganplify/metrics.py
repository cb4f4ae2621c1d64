"""The paper's figure of merit: the mean squared error of the cell (quantile) probabilities.

A sample of ``n`` true events puts a multinomial fraction ``p_k`` into each of ``K`` cells of true
probability ``1 / K``; its expected quantile MSE is ``(1 - 1/K) / (K n)``. Inverting that law turns
any estimate's MSE (a GAN's, a fit's) into the number of true events it is worth,
``N_equiv = (1 - 1/K) / (K MSE)``, and the amplification factor is ``N_equiv / N`` for an estimate
made from ``N`` training events (arXiv:2008.06545, section 2).
"""

from __future__ import annotations

import numpy as np


def cell_fractions(cells: np.ndarray, n_cells: int) -> np.ndarray:
    """Fraction of the events in each cell (``cells``: one cell index per event)."""
    cells = np.asarray(cells)
    if len(cells) == 0:
        raise ValueError("no events to count")
    return np.bincount(cells, minlength=int(n_cells)) / len(cells)


def quantile_mse(probabilities: np.ndarray) -> float:
    """Mean over the cells of (estimated - true probability)^2, the truth being ``1 / K``.

    Parameters
    ----------
    probabilities : array of shape (K,)
        The estimate's probability of each of the ``K`` equal-probability cells (a sample's
        fractions, a fit's integrals).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean((p - 1.0 / len(p)) ** 2))


def expected_sample_mse(n_cells: int, n: float) -> float:
    """The mean quantile MSE of ``n`` true events in ``n_cells`` equal cells (multinomial)."""
    k = float(n_cells)
    return (1.0 - 1.0 / k) / (k * float(n))


def equivalent_events(mse: float, n_cells: int) -> float:
    """How many true events have, on average, this quantile MSE (the inverse of the 1/n law)."""
    k = float(n_cells)
    return (1.0 - 1.0 / k) / (k * float(mse)) if mse > 0 else float("inf")


def sample_mse_curve(
    cells: np.ndarray, n_cells: int, sizes: list[int], max_samples: int | None = None
) -> dict[int, tuple[float, int]]:
    """Mean quantile MSE of disjoint samples of each size, cut from one pool of events.

    For true events the measured side of the 1/n law; for generated ones the GAN's MSE against
    the number of generated events. Returns ``{size: (mean MSE, number of samples)}`` for every
    size of which the pool holds at least one sample, using at most ``max_samples`` samples.
    """
    out = {}
    for size in sizes:
        m = len(cells) // int(size)
        if max_samples is not None:
            m = min(m, int(max_samples))
        if m == 0:
            continue
        parts = np.asarray(cells[: m * size]).reshape(m, size)
        mses = [quantile_mse(cell_fractions(part, n_cells)) for part in parts]
        out[int(size)] = (float(np.mean(mses)), m)
    return out
