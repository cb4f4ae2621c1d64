"""How close generated events are to the truth: the paper's per-bin ratios and the peak widths.

arXiv:1907.03764 judges its GAN by eye from histograms of the top, W and quark kinematics with
a GAN/truth ratio panel beneath each, and from the shape of the reconstructed W and top mass
peaks. Here the same histograms are reduced to numbers:

* per observable, the truth-weighted mean of |GAN/truth - 1| over the bins (equal to the L1
  distance of the two normalised histograms) and the largest |GAN/truth - 1| over the bins that
  hold at least 2% of the truth, next to the same numbers for a second, independent truth sample
  of the same size (the statistical floor: what a perfect generator would score);
* per mass peak, its width as the interquartile range, which for a Breit-Wigner equals the width
  Gamma (0.97 Gamma at the truncation used here), and its median.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalyhunt.gan_events import toy

#: Observables of the ratio panels: (object, variable), pooled over particle and antiparticle.
OBSERVABLES = tuple((obj, var) for obj in ("t", "W") for var in ("pt", "eta", "phi", "m"))
#: The truth-fraction a bin needs to enter the largest-deviation number.
MIN_BIN_FRACTION = 0.02
N_BINS = 20
#: Half-range of the mass histograms in particle widths around the pole (bins of Gamma / 2).
MASS_RANGE = 6.0
MASS_BINS = 24


def observables(momenta: np.ndarray) -> dict[str, np.ndarray]:
    """pT, eta, phi and mass of the reconstructed tops and Ws (both charges pooled)."""
    objects = toy.reconstruct(momenta)
    out = {}
    for obj, key in (("t", "t"), ("W", "w")):
        p = objects[key].reshape(-1, 4)
        kin = toy.kinematics(p)
        out.update({f"{var}_{obj}": kin[var] for var in ("pt", "eta", "phi")})
        out[f"m_{obj}"] = toy.minkowski_mass(p)
    return out


def bin_edges(truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fixed binning per observable, from the truth: 20 bins over the central 99% of pT and
    eta and over the full phi range, 24 bins of half a width within 6 widths of each pole."""
    edges = {}
    for obj, var in OBSERVABLES:
        name = f"{var}_{obj}"
        if var == "m":
            pole, gamma = (toy.M_TOP, toy.GAMMA_TOP) if obj == "t" else (toy.M_W, toy.GAMMA_W)
            lo, hi, n = pole - MASS_RANGE * gamma, pole + MASS_RANGE * gamma, MASS_BINS
        elif var == "phi":
            lo, hi, n = -np.pi, np.pi, N_BINS
        else:
            lo, hi = np.percentile(truth[name], [0.5, 99.5])
            n = N_BINS
        edges[name] = np.linspace(lo, hi, n + 1)
    return edges


def histogram(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fractions of all of ``x`` in each bin (events outside the range count in the total)."""
    counts, _ = np.histogram(x, bins=edges)
    return counts / max(len(x), 1)


def ratio_deviation(gen: np.ndarray, truth: np.ndarray, edges: np.ndarray) -> dict[str, float]:
    """Per-bin GAN/truth ratio (None where the truth bin is empty), and its mean
    (truth-weighted) and largest |GAN/truth - 1| over the bins of one observable.

    Parameters
    ----------
    gen, truth : ndarray
        Values of the observable in generated and true events.
    edges : ndarray
        Bin edges.
    """
    g, t = histogram(gen, edges), histogram(truth, edges)
    mean = float(np.sum(np.abs(g - t)) / max(np.sum(t), 1e-12))
    big = t >= MIN_BIN_FRACTION
    worst = float(np.max(np.abs(g[big] / t[big] - 1.0))) if big.any() else float("nan")
    per_bin = [float(gi / ti) if ti > 0 else None for gi, ti in zip(g, t, strict=True)]
    return {"mean_abs_ratio_minus_1": mean, "max_abs_ratio_minus_1": worst, "per_bin": per_bin}


def peak(masses: np.ndarray) -> dict[str, float]:
    """Median and interquartile range (the Breit-Wigner width estimate) of a mass peak, GeV."""
    q1, med, q3 = np.percentile(masses, [25, 50, 75])
    return {"median_gev": float(med), "width_iqr_gev": float(q3 - q1)}


def compare(
    gen: dict[str, np.ndarray], truth: dict[str, np.ndarray], edges: dict[str, np.ndarray]
) -> dict[str, Any]:
    """All numbers of one sample against the truth: ratios per observable and both peaks.

    Parameters
    ----------
    gen, truth : dict
        :func:`observables` of the generated (or second truth) and the true events.
    edges : dict
        :func:`bin_edges` of the truth.
    """
    out: dict[str, Any] = {"ratios": {}}
    for name in edges:
        out["ratios"][name] = ratio_deviation(gen[name], truth[name], edges[name])
    devs = [r["mean_abs_ratio_minus_1"] for r in out["ratios"].values()]
    out["mean_abs_ratio_minus_1_all"] = float(np.mean(devs))
    for obj in ("t", "W"):
        mine, true = peak(gen[f"m_{obj}"]), peak(truth[f"m_{obj}"])
        out[f"m_{obj}"] = {
            **mine,
            "width_ratio_to_truth": mine["width_iqr_gev"] / true["width_iqr_gev"],
        }
    return out


def width_within(result: dict[str, Any], tolerance: float) -> bool:
    """Whether both mass-peak widths are within ``tolerance`` (relative) of the truth's."""
    return all(
        abs(result[f"m_{obj}"]["width_ratio_to_truth"] - 1.0) <= tolerance for obj in ("t", "W")
    )
