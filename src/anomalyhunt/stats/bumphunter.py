"""BumpHunter cross-check of the global significance (pyBumpHunter's ``BumpHunter1D``).

The search tests fixed signal regions with a pyhf model and derives the look-elsewhere effect from
toys of its own fit stage. BumpHunter answers the same question with a different test statistic
(the smallest Poisson tail probability over all contiguous bin ranges of any width) and its own
background-only pseudo-experiments, so agreement between the two is a useful check that neither
the window layout nor the trial-factor estimate hides a mistake.

BumpHunter needs one data histogram and one background reference per scan (method x score cut).
They are assembled from the per-window ``fit.json`` results over the range covered by the signal
regions (see :func:`assemble_histograms` for how overlapping windows are resolved).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.functions import bin_masks

#: Background-only pseudo-experiments per scan: enough for a global p-value of ~1e-3.
DEFAULT_PE = 2000
_ROUND = 6  # bin edges are compared after rounding to 1e-6 TeV


@dataclass
class ScanHistogram:
    """The mjj histogram of one method and score cut over the scanned range, with its reference."""

    method: str
    efficiency: float
    edges: np.ndarray
    counts: np.ndarray
    reference: np.ndarray
    #: window id that supplied each bin's count and reference ("" where no window covers it)
    owner: list[str] = field(default_factory=list)


def _window_cuts(
    fits: Sequence[dict[str, Any]],
) -> dict[tuple[str, float], list[tuple[dict, dict]]]:
    """(method, efficiency) -> [(window result, cut result)] of every valid fit."""
    groups: dict[tuple[str, float], list[tuple[dict, dict]]] = {}
    for f in fits:
        if f.get("skipped"):
            continue
        for c in f.get("cuts", []):
            if c.get("valid") and c.get("fit", {}).get("expected") is not None:
                groups.setdefault((f["method"], float(c["efficiency"])), []).append((f, c))
    return groups


def assemble_histograms(fits: Sequence[dict[str, Any]]) -> list[ScanHistogram]:
    """One histogram and background reference per (method, cut) from the per-window fits.

    The range runs from the lowest to the highest signal-region edge of the valid windows: the
    sideband-only ends are left out because there the reference is a fit to those very counts.

    Windows overlap, and for a score cut below 100% the same mjj bin holds *different* events in
    different windows (each window has its own classifier and threshold). So each bin takes both
    its count and its reference from one window, never a mix: the window whose signal region
    contains the bin, nearest the SR centre (the SR prediction is an interpolation that never saw
    those counts, so an excess is not absorbed into the reference). A bin in no valid SR (a gap
    left by a skipped or failed window) falls back to the nearest window that covers it at all
    (its sideband fit); a bin no window covers gets count 0 and reference 0, which BumpHunter
    ignores consistently in data and pseudo-data.
    """
    out = []
    for (method, eff), members in sorted(_window_cuts(fits).items()):
        grid = sorted({round(float(e), _ROUND) for _, c in members for e in c["fit"]["edges"]})
        index = {e: i for i, e in enumerate(grid)}
        lo = min(round(float(f["sr"][0]), _ROUND) for f, _ in members)
        hi = max(round(float(f["sr"][1]), _ROUND) for f, _ in members)
        if lo not in index or hi not in index:
            raise AnomalyHuntError(f"{method} keep {eff:g}: SR boundaries are not bin edges")
        n_bins = len(grid) - 1
        best: list[tuple[tuple, float, float, str] | None] = [None] * n_bins
        for k, (f, c) in enumerate(members):
            edges = [round(float(e), _ROUND) for e in c["fit"]["edges"]]
            counts, expected = c["fit"]["counts"], c["fit"]["expected"]
            sr_lo, sr_hi = (float(v) for v in f["sr"])
            sr_mask, _ = bin_masks(np.asarray(edges, dtype=float), sr_lo, sr_hi)
            for j in range(len(edges) - 1):
                i = index[edges[j]]
                if grid[i + 1] != edges[j + 1]:
                    raise AnomalyHuntError(
                        f"{method} keep {eff:g}: window {f['window']} bins are not aligned with "
                        "the other windows' bins"
                    )
                if counts[j] is None or expected[j] is None:
                    continue
                centre = 0.5 * (edges[j] + edges[j + 1])
                key = (not sr_mask[j], abs(centre - 0.5 * (sr_lo + sr_hi)), k)
                if best[i] is None or key < best[i][0]:
                    best[i] = (key, float(counts[j]), float(expected[j]), str(f["window"]))
        i0, i1 = index[lo], index[hi]
        chosen = best[i0:i1]
        out.append(
            ScanHistogram(
                method=method,
                efficiency=eff,
                edges=np.asarray(grid[i0 : i1 + 1], dtype=float),
                counts=np.array([0.0 if b is None else b[1] for b in chosen]),
                reference=np.array([0.0 if b is None else b[2] for b in chosen]),
                owner=["" if b is None else b[3] for b in chosen],
            )
        )
    return out


@contextlib.contextmanager
def _quiet_global_rng() -> Iterator[None]:
    """pyBumpHunter reseeds numpy's global RNG and prints progress: keep both from leaking out."""
    state = np.random.get_state()  # noqa: NPY002 (the package uses the legacy global RNG)
    try:
        with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _z_from_logp(logp: float) -> float:
    """Z of a one-sided p-value given as its log, finite far beyond float64's smallest p."""
    return float(max(-special.ndtri_exp(logp), 0.0)) if math.isfinite(logp) else math.inf


def bump_hunt(
    edges: np.ndarray,
    counts: np.ndarray,
    reference: np.ndarray,
    n_pe: int = DEFAULT_PE,
    seed: int = 0,
    width_min: int = 1,
    width_max: int | None = None,
) -> dict[str, Any]:
    """Run BumpHunter1D on one binned spectrum against its background reference.

    Returns the local p-value and Z of the most significant bump (Z from the exact Poisson tail,
    so it stays finite where BumpHunter's own p-value underflows), its mjj range, and the global
    p-value from ``n_pe`` Poisson pseudo-experiments of the reference. ``p_global`` and
    ``z_global`` are BumpHunter's (k / n); ``is_upper_bound`` marks k = 0, where the p-value is
    only bounded (z_global is then BumpHunter's lower limit). ``t_toys`` (its test statistic
    -ln p_min of every pseudo-experiment) is kept for combining scans and not meant for JSON.
    """
    from pyBumpHunter import BumpHunter1D

    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if edges.ndim != 1 or counts.shape != reference.shape or counts.size != edges.size - 1:
        raise AnomalyHuntError("bump_hunt: need n+1 edges and n counts and n reference values")
    if counts.size < 2 or not np.any(reference > 0):
        raise AnomalyHuntError("bump_hunt: need at least two bins and a positive reference")
    if n_pe < 1:
        raise AnomalyHuntError(f"bump_hunt: n_pe = {n_pe} must be at least 1")
    if width_max is None:
        width_max = max(width_min, counts.size // 2)
    hunter = BumpHunter1D(
        rang=(float(edges[0]), float(edges[-1])),
        bins=edges,
        mode="excess",
        width_min=width_min,
        width_max=width_max,
        npe=int(n_pe),
        nworker=1,  # its workers are threads: no gain under the GIL, only overhead
        seed=int(seed),
    )
    with _quiet_global_rng():
        hunter.bump_scan(counts, reference, is_hist=True)
    t = np.asarray(hunter.t_ar, dtype=float)
    loc, width = int(hunter.min_loc_ar[0]), int(hunter.min_width_ar[0])
    n_obs = float(counts[loc : loc + width].sum())
    b = float(reference[loc : loc + width].sum())
    logp = float(stats.poisson.logsf(n_obs - 1, b)) if n_obs > b else 0.0
    k = int((t[1:] >= t[0]).sum())
    return {
        "p_local": float(math.exp(logp)),
        "z_local": _z_from_logp(logp),
        "bump": [float(edges[loc]), float(edges[loc + width])],
        "bump_centre": round(float(0.5 * (edges[loc] + edges[loc + width])), _ROUND),
        "bump_width_bins": width,
        "n_obs": n_obs,
        "b": b,
        "p_global": float(hunter.global_Pval),
        "z_global": float(hunter.significance),
        "n_exceed": k,
        "is_upper_bound": k == 0,
        "n_pe": int(n_pe),
        "t_toys": t[1:],
        "t_obs": float(t[0]),
    }


def _tail_fraction(toys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fraction of ``toys`` at or above each value (the empirical global p-value of a scan)."""
    ordered = np.sort(toys)
    return (toys.size - np.searchsorted(ordered, values, side="left")) / toys.size


def _combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Global p-value over all scans: the smallest per-scan global p-value, calibrated on toys.

    Each scan's pseudo-experiments are independent of the others' (as in the search's own toys),
    which ignores that nested cuts share events: conservative for the combined p-value.
    """
    n = min(r["t_toys"].size for r in results)
    toys = [r["t_toys"][:n] for r in results]
    obs = np.array(
        [_tail_fraction(t, np.array([r["t_obs"]]))[0] for t, r in zip(toys, results, strict=True)]
    )
    toy_min = np.min([_tail_fraction(t, t) for t in toys], axis=0)
    k = int((toy_min <= obs.min()).sum())
    p = k / n
    return {
        "p_global": p,
        "z_global": float(stats.norm.isf(max(p, 1.0 / n))) if p < 1 else 0.0,
        "is_upper_bound": k == 0,
        "n_pe": n,
        "n_scans": len(results),
    }


def global_bumphunter(
    fits: Sequence[dict[str, Any]], n_pe: int = DEFAULT_PE, seed: int = 0
) -> dict[str, Any]:
    """BumpHunter on every (method, cut) scan of the search, and their combination.

    Every scan has its own seed (``SeedSequence(seed).spawn``). A scan that fails is recorded as
    ``{"status": "failed: ..."}`` and left out of the combination; the largest local excess of
    the scans that ran is reported at the top level with its bump.
    """
    hists = assemble_histograms(fits)
    if not hists:
        return {"status": "no valid fit to scan"}
    seeds = np.random.SeedSequence(seed).spawn(len(hists))
    scans, good = [], []
    for h, ss in zip(hists, seeds, strict=True):
        entry: dict[str, Any] = {
            "method": h.method,
            "efficiency": h.efficiency,
            "range": [float(h.edges[0]), float(h.edges[-1])],
            "n_bins": int(h.counts.size),
        }
        try:
            res = bump_hunt(
                h.edges, h.counts, h.reference, n_pe=n_pe, seed=int(ss.generate_state(1)[0])
            )
        except Exception as exc:  # a cross-check must never stop the summary
            entry["status"] = f"failed: {exc}"
        else:
            good.append(res)
            entry.update({k: v for k, v in res.items() if k not in ("t_toys", "t_obs")})
            entry["status"] = "ok"
        scans.append(entry)
    out: dict[str, Any] = {
        "algorithm": "pyBumpHunter BumpHunter1D, excess mode",
        "n_pe": n_pe,
        "seed": seed,
        "scans": scans,
    }
    if not good:
        out["status"] = "failed: every scan failed"
        return out
    best = max((s for s in scans if s["status"] == "ok"), key=lambda s: s["z_local"])
    out.update(
        {k: best[k] for k in ("z_local", "p_local", "bump", "bump_centre", "method", "efficiency")}
    )
    out["combined"] = _combine(good)
    out["status"] = "ok"
    return out
