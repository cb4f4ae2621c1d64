"""Summary of a search: local significance of every window x cut (x method), and the global one.

The global significance of the largest local excess comes from background-only pseudo-experiments
of the whole fit stage (each fitted background Poisson-fluctuated and refitted), with a
Gross-Vitells upcrossing estimate beside it as a cross-check that needs no toys at high Z.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path, read_json, write_csv, write_json
from anomalyhunt.stats import bumphunter, trials
from anomalyhunt.summary_markdown import write_markdown, write_report_front

log = logging.getLogger(__name__)


def local_table(fits: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (method, window, cut) with the local result; skipped/failed rows kept, z NaN."""
    rows = []
    for f in fits:
        if f["skipped"]:
            rows.append(
                {
                    "method": f["method"],
                    "window": f["window"],
                    "centre": f["centre"],
                    "sr_lo": f["sr"][0],
                    "sr_hi": f["sr"][1],
                    "efficiency": np.nan,
                    "status": f"skipped: {f['skipped']}",
                }
            )
            continue
        for c in f["cuts"]:
            limit = c.get("limit") or {}
            xs = (c.get("xsec_limit") or {}).get("sigma_eff_acc_fb") or {}
            spur = c.get("spurious") or {}
            rows.append(
                {
                    "method": f["method"],
                    "window": f["window"],
                    "centre": f["centre"],
                    "sr_lo": f["sr"][0],
                    "sr_hi": f["sr"][1],
                    "efficiency": c["efficiency"],
                    "n_obs": c["n_obs"],
                    "b": c["b"],
                    "sigma_b": c["sigma_b"],
                    "z": c["z"],
                    "p0": c["p0"],
                    "limit_obs": limit.get("observed"),
                    "limit_exp": limit.get("expected"),
                    "chi2_ndf": _chi2_ndf(c["fit"]),
                    "fit_pvalue": c["fit"].get("chi2_pvalue"),
                    "n_signal_sr": c.get("n_signal_sr"),
                    "function": c.get("function", "dijet4"),
                    "n_free": c["fit"].get("n_free"),
                    "sparse": c["fit"].get("sparse"),
                    "sparse_action": c["fit"].get("sparse_action"),
                    "sr_bins": (c.get("sr_model") or {}).get("bins", 1),
                    "spurious_ratio": spur.get("ratio"),
                    "spurious_flag": spur.get("flag"),
                    "signal_eff": c.get("signal_efficiency"),
                    "xsec_obs_fb": xs.get("observed"),
                    "xsec_exp_fb": xs.get("expected"),
                    "status": "ok" if c["valid"] else f"fit failed: {c['reason']}",
                }
            )
    table = pd.DataFrame(rows)
    for col in (
        "z",
        "p0",
        "b",
        "sigma_b",
        "n_obs",
        "limit_obs",
        "limit_exp",
        "xsec_obs_fb",
        "xsec_exp_fb",
    ):
        if col not in table:
            table[col] = np.nan
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def _chi2_ndf(fit: dict[str, Any]) -> float | None:
    ndf = fit.get("ndf")
    return fit["chi2"] / ndf if ndf and fit.get("chi2") is not None else None


def toy_tests(
    fits: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[tuple[str, str, float, float]]]:
    """The (window, cut) tests the toys redo, with their keys (method, window, efficiency, centre)."""
    tests, keys = [], []
    for f in fits:
        if f["skipped"]:
            continue
        for c in f["cuts"]:
            if not c["valid"]:
                continue
            fit = c["fit"]
            sr_model = c.get("sr_model") or {}
            tests.append(
                {
                    "edges": np.asarray(fit["edges"]),
                    "expected": np.asarray(fit["expected"]),
                    "sr": tuple(f["sr"]),
                    "start": np.asarray(fit["params"]),
                    "function": fit.get("function"),
                    "n_free": fit.get("n_free"),
                    "sr_bins": sr_model.get("bins", 1),
                    "signal_shape": sr_model.get("signal_shape"),
                    "log_offset": fit.get("log_offset"),
                    "choice_shift": fit.get("choice_shift"),
                }
            )
            keys.append((f["method"], f["window"], c["efficiency"], f["centre"]))
    return tests, keys


def bumphunter_check(fits: Sequence[dict[str, Any]], n_pe: int, seed: int) -> dict[str, Any]:
    """BumpHunter cross-check of the global significance; a failure is recorded, never raised.

    It is an independent second opinion, so whatever goes wrong in it (a package missing, odd
    binning) must not cost the search its summary.
    """
    if n_pe <= 0:
        return {"status": "skipped (summary.bumphunter_pe = 0)"}
    try:
        return bumphunter.global_bumphunter(fits, n_pe=n_pe, seed=seed)
    except Exception as exc:
        log.warning("BumpHunter cross-check failed: %s", exc)
        return {"status": f"failed: {type(exc).__name__}: {exc}"}


def global_significance(
    fits: Sequence[dict[str, Any]],
    table: pd.DataFrame,
    n_toys: int,
    seed: int,
    n_jobs: int,
    bumphunter_pe: int = bumphunter.DEFAULT_PE,
    bumphunter_seed: int | None = None,
) -> dict[str, Any]:
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return {"status": "no valid window: nothing to test"}
    best = ok.loc[ok["z"].idxmax()]
    z_max = float(best["z"])
    out: dict[str, Any] = {
        "z_local_max": z_max,
        "p_local_min": float(best["p0"]),
        "n_tests": len(ok),
        "n_toys": n_toys,
    }
    bh_seed = seed + 1 if bumphunter_seed is None else bumphunter_seed
    if n_toys == 0:
        out["toys"] = {"status": "not computed (summary.toys = 0)"}
        out["gross_vitells"] = {
            "status": "not computed: it is fitted to the upcrossings of the toys, "
            "so it needs summary.toys > 0"
        }
        out["bumphunter"] = bumphunter_check(fits, bumphunter_pe, bh_seed)
        return out
    tests, keys = toy_tests(fits)
    z_toys = trials.toy_scans(tests, n_toys, seed, n_jobs=n_jobs, progress=True)
    out["toys"] = trials.global_significance(z_max, z_toys.max(axis=1))
    out["local_toys"] = local_from_toys(ok, keys, z_toys)
    # Gross-Vitells: one ordered 1D scan (local Z vs window centre) per method and cut
    scans = []
    groups: dict[tuple[str, float], list[int]] = {}
    for i, (method, _w, eff, _centre) in enumerate(keys):
        groups.setdefault((method, eff), []).append(i)
    for idx in groups.values():
        order = sorted(idx, key=lambda i: keys[i][3])
        if len(order) >= 2:
            scans.append(z_toys[:, order])
    out["gross_vitells"] = (
        trials.gross_vitells_multi(scans, z_max)
        if scans
        else {"status": "fewer than two windows per scan"}
    )
    out["toy_max_z_quantiles"] = {
        q: float(np.quantile(z_toys.max(axis=1), q)) for q in (0.5, 0.9, 0.99)
    }
    methods = sorted({k[0] for k in keys})
    if len(methods) > 1:
        # each method alone, as if it were the only one run: the number to quote per method
        out["per_method"] = {}
        for method in methods:
            cols = [i for i, k in enumerate(keys) if k[0] == method]
            z_m = float(ok.loc[ok["method"] == method, "z"].max())
            out["per_method"][method] = {
                "z_local_max": z_m,
                **trials.global_significance(z_m, z_toys[:, cols].max(axis=1)),
            }
    out["bumphunter"] = bumphunter_check(fits, bumphunter_pe, bh_seed)
    return out


def local_from_toys(
    ok: pd.DataFrame, keys: Sequence[tuple], z_toys: np.ndarray
) -> list[dict[str, Any]]:
    """Each test's local p-value from its own toys, beside the asymptotic one.

    The asymptotic q0 overstates Z on cuts that keep a few dozen events (at 3 sigma, a 0.1% cut
    of a high-mass window exceeds in 4-5 times more toys than the Gaussian tail says), so a
    collaboration quotes the toy number there. Bounded by the number of toys.
    """
    index = {(m, w, e): i for i, (m, w, e, _c) in enumerate(keys)}
    rows = []
    for r in ok.itertuples():
        i = index.get((r.method, r.window, r.efficiency))
        if i is not None:
            t = trials.global_significance(float(r.z), z_toys[:, i])
            rows.append(
                {
                    "method": r.method,
                    "window": r.window,
                    "efficiency": float(r.efficiency),
                    "p0": t["p_global"],
                    "z": t["z_global"],
                    "n_toys": t["n_toys"],
                    "is_lower_bound": t["is_upper_bound"],
                }
            )
    return rows


def with_toy_z(table: pd.DataFrame, local_toys: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``table`` with columns p0_toys and z_toys (NaN where no toys were run)."""
    toy = pd.DataFrame(list(local_toys), columns=["method", "window", "efficiency", "p0", "z"])
    toy = toy.rename(columns={"p0": "p0_toys", "z": "z_toys"})
    return table.merge(toy, on=["method", "window", "efficiency"], how="left")


def best_row(table: pd.DataFrame) -> dict[str, Any] | None:
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return None
    return ok.loc[ok["z"].idxmax()].to_dict()


STALE_NOTE = "STALE.md"


def mark_stale_windows(windows_dir: Path, current: Sequence[str], run: str) -> list[str]:
    """Window folders under ``windows_dir`` that are not in this scan, each marked with a note.

    Narrowing ``regions.scan`` leaves the dropped windows' folders (scores, fits, plots) behind;
    they are the user's files, so they are not deleted, but each gets a STALE.md and the summary
    names them. A current window loses any old note.
    """
    if not windows_dir.is_dir():
        return []
    stale = []
    for d in sorted(p for p in windows_dir.iterdir() if p.is_dir()):
        note = d / STALE_NOTE
        if d.name in current:
            note.unlink(missing_ok=True)
            continue
        stale.append(d.name)
        with atomic_path(note) as tmp:
            tmp.write_text(
                f"# {d.name} is stale\n\nThis window is not part of the latest search of run "
                f"`{run}` (its regions.scan no longer contains it): nothing here is a "
                "current result. See ../../summary.md.\n"
            )
    if stale:
        log.warning(
            "stale window folders from an earlier scan (not part of this search): %s",
            ", ".join(stale),
        )
    return stale


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.summary", description=__doc__.splitlines()[0]
    )
    p.add_argument("--config", required=True)
    p.add_argument("--windows", required=True)
    p.add_argument("--fits", nargs="+", required=True, help="fit.json of every window and method")
    p.add_argument(
        "--out-dir",
        required=True,
        help="writes summary.json, summary.md, report.rst, local_z.csv, plots/",
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for the toys")
    args = p.parse_args(argv)
    config = cfgmod.load(args.config)
    meta = read_json(args.windows)  # the whole record: counts and windows
    fits = [read_json(f) for f in args.fits]
    table = local_table(fits)
    out = Path(args.out_dir)
    glob = global_significance(
        fits,
        table,
        config["summary"]["toys"],
        cfgmod.derive_seed(config["seed"], "toys"),
        args.jobs,
        bumphunter_pe=config["summary"]["bumphunter_pe"],
        bumphunter_seed=cfgmod.derive_seed(config["seed"], "bumphunter"),
    )
    table = with_toy_z(table, glob.get("local_toys", []))
    summary = {
        "run": config["run"],
        "data_source": config["data"]["source"],
        "n_events": meta["n_events"],
        "n_injected": meta["n_injected"],
        "methods": sorted({f["method"] for f in fits}),
        "efficiencies": config["bumphunt"]["efficiencies"],
        "n_windows": len(meta["windows"]),
        "n_windows_skipped": sum(w["skipped"] is not None for w in meta["windows"]),
        "best": best_row(table),
        "global": glob,
        "luminosity_fb": config["bumphunt"]["luminosity_fb"],
        "statistics": {
            k: config["bumphunt"][k]
            for k in (
                "functions",
                "selection",
                "selection_threshold",
                "sr_bins",
                "luminosity_fb",
                "background",
                "ratio_functions",
                "choice_uncertainty",
            )
        }
        | {
            "resolution": config["bumphunt"]["signal"]["resolution"],
            "spurious": config["bumphunt"]["spurious"]["enabled"],
        },
        "local": table.replace({np.nan: None}).to_dict(orient="records"),
        "stale_windows": mark_stale_windows(
            out / "windows", [w["id"] for w in meta["windows"]], config["run"]
        ),
    }
    write_csv(table, out / "local_z.csv")
    write_json(summary, out / "summary.json")
    write_markdown(summary, table, out / "summary.md")
    write_report_front(summary, table, out / "report.rst")
    from anomalyhunt import plots

    plots.local_z_scan(table, out / "plots" / "local_z.png")
    plots.local_p0_scan(table, out / "plots" / "local_p0.png")
    plots.limit_scan(fits, out / "plots" / "limits.png", config["bumphunt"]["luminosity_fb"])
    log.info(
        "largest local Z = %s; global: %s",
        summary["best"] and round(summary["best"]["z"], 2),
        glob.get("toys", {}).get("z_global"),
    )
    if summary["best"] is None:
        bad = table[table["status"] != "ok"]
        reason = (
            f" (e.g. {bad.iloc[0]['window']}: {bad.iloc[0]['status']})" if not bad.empty else ""
        )
        raise AnomalyHuntError(
            f"nothing was tested: none of the {len(table)} window and cut tests gave "
            f"a result{reason}; see {out / 'summary.md'}"
        )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
