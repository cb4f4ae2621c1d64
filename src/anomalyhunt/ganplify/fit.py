"""The fit baseline: the right functional form, fitted by maximum likelihood to the N events.

The paper's yardstick from above: a parametric fit knows the shape and only learns a few numbers,
so it beats any sample and any GAN. Camel: a two-Gaussian mixture (two weights, means, widths) by
expectation maximisation. Ring and shell: the truncated-Gaussian radius (mean and width) with a
uniform direction; only the radial cells then carry any error.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from anomalyhunt.ganplify.toy import Camel, Shell, Toy, mixture_cdf, radial_distribution


def fit_camel(x: np.ndarray, *, iterations: int = 500, tol: float = 1e-10) -> dict[str, list]:
    """Maximum-likelihood two-Gaussian mixture of 1-D events (EM from the outer quartiles).

    Parameters
    ----------
    x : array of shape (n,) or (n, 1)
        The events.
    iterations, tol : int, float
        Most EM steps, and the change of the mean log-likelihood that ends them.

    Returns
    -------
    dict
        ``weights``, ``centres``, ``widths``: two entries each.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    mu = np.quantile(x, [0.25, 0.75])
    sd = np.full(2, max(x.std() / 2, 1e-3))
    w = np.array([0.5, 0.5])
    floor = 1e-3 * max(x.std(), 1e-9)
    last = -np.inf
    for _ in range(int(iterations)):
        dens = w * np.exp(-0.5 * ((x[:, None] - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        total = dens.sum(axis=1, keepdims=True) + 1e-300
        loglik = float(np.mean(np.log(total)))
        resp = dens / total
        nk = resp.sum(axis=0) + 1e-12
        w = nk / len(x)
        mu = (resp * x[:, None]).sum(axis=0) / nk
        sd = np.maximum(np.sqrt((resp * (x[:, None] - mu) ** 2).sum(axis=0) / nk), floor)
        if abs(loglik - last) < tol:
            break
        last = loglik
    order = np.argsort(mu)
    return {
        "weights": w[order].tolist(),
        "centres": mu[order].tolist(),
        "widths": sd[order].tolist(),
    }


def fit_radius(r: np.ndarray) -> dict[str, float]:
    """Maximum-likelihood mean and width of a Gaussian radius truncated to r > 0.

    Parameters
    ----------
    r : array of shape (n,)
        Distances of the events from the origin.
    """
    r = np.asarray(r, dtype=np.float64)

    def nll(theta: np.ndarray) -> float:  # Gaussian over its probability above r = 0
        mean, width = theta[0], np.exp(theta[1])
        norm = stats.norm.logsf(-mean / width)
        return float(np.sum(0.5 * ((r - mean) / width) ** 2) + len(r) * (np.log(width) + norm))

    start = np.array([r.mean(), np.log(max(r.std(), 1e-3))])
    best = optimize.minimize(
        nll, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10}
    )
    return {"radius": float(best.x[0]), "width": float(np.exp(best.x[1]))}


def fit_cell_probabilities(toy: Toy, x: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    """The fitted model's probability of each of the toy's cells, and the fitted parameters."""
    if isinstance(toy, Camel):
        par = fit_camel(x)
        cdf = mixture_cdf(
            toy.edges,
            np.asarray(par["centres"]),
            np.asarray(par["widths"]),
            np.asarray(par["weights"]),
        )
        return np.diff(np.concatenate([[0.0], cdf, [1.0]])), par
    if isinstance(toy, Shell):
        par = fit_radius(toy.radius(x))
        cdf = radial_distribution(par["radius"], par["width"]).cdf(toy.radial_edges)
        radial = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
        return np.repeat(radial, toy.n_directions) / toy.n_directions, par
    raise TypeError(f"no fit for {type(toy).__name__}")
