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
from anomalyhunt.stats import fit as fitmod

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
        return {"status": "skipped: no BumpHunter pseudo-experiments requested"}
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


def _bumphunter_line(bh: dict[str, Any] | None) -> str:
    """One summary.md line for the BumpHunter cross-check, whatever state it ended in."""
    if not bh:
        return "- BumpHunter cross-check: not run"
    if bh.get("status") != "ok":
        return f"- BumpHunter cross-check: {bh.get('status')}"
    comb = bh["combined"]
    rel = ">" if comb["is_upper_bound"] else "="
    return (
        f"- BumpHunter cross-check ({bh['n_pe']} pseudo-experiments per scan, "
        f"{comb['n_scans']} scans; reference taken as exact): largest bump {bh['method']} keep "
        f"{100 * bh['efficiency']:g}% at {bh['bump'][0]:.2f}-{bh['bump'][1]:.2f} TeV, "
        f"Z_local = {bh['z_local']:.2f}, Z_global {rel} {comb['z_global']:.2f}"
    )


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _limit_line(best: dict[str, Any]) -> str:
    """The 95% CLs limit of the most significant test, in events and as a cross section."""
    obs, exp = _num(best.get("limit_obs")), _num(best.get("limit_exp"))
    if obs is None:
        return "- 95% CLs limit there: not available"
    line = f"- 95% CLs limit there: {obs:.1f} signal events in the SR (expected {exp:.1f})"
    xs = _num(best.get("xsec_obs_fb"))
    if xs is not None:
        line += f", sigma x eff x A < {xs:.3g} fb"
        eff = _num(best.get("signal_eff"))
        if eff:
            line += f" (score-cut signal efficiency {eff:.3g} from truth: sigma x A < {xs / eff:.3g} fb)"
    return line


def _statistics_lines(summary: dict[str, Any], table: pd.DataFrame) -> list[str]:
    """How the local tests were made: background function(s), SR model, luminosity."""
    st = summary.get("statistics") or {}
    if not st:
        return []
    funcs = st.get("functions") or ["dijet4"]
    if len(funcs) > 1:
        how = f"chosen per window and cut among {', '.join(funcs)} ({st.get('selection')}, p < {st.get('selection_threshold')})"
    else:
        how = funcs[0]
    if st.get("background") == "ratio":
        how = (
            f"{how} for the uncut spectrum; after each cut the uncut spectrum times a smooth cut "
            f"efficiency ({', '.join(st.get('ratio_functions') or [])}, chosen by the same test)"
        )
    bins = st.get("sr_bins", 1)
    model = (
        "one counting bin"
        if bins == 1
        else (
            f"{bins} mjj bins, one eigen-variation of the fit per nuisance, Gaussian signal "
            f"(resolution {st.get('resolution')} x SR centre)"
        )
    )
    return [
        f"- statistics: background function {how}; SR model: {model}; cross sections at "
        f"{st.get('luminosity_fb')} fb^-1 (nominal; set bumphunt.luminosity_fb)"
    ]


def _limits_table(table: pd.DataFrame, lumi: float | None) -> list[str]:
    """Observed 95% CLs limits per window and cut: events (and sigma x eff x A in fb)."""
    ok = table[(table["status"] == "ok") & table["limit_obs"].notna()]
    if ok.empty:
        return []
    effs = sorted(ok["efficiency"].unique(), reverse=True)
    unit = f"; sigma x eff x A in fb at {lumi:g} fb^-1" if lumi else ""
    lines = [
        "",
        f"## 95% CLs upper limits: observed (expected) signal events in the SR{unit}",
        "",
        "| method | window | SR centre (TeV) | "
        + " | ".join(f"keep {100 * e:g}%" for e in effs)
        + " |",
        "|" + "---|" * (3 + len(effs)),
    ]
    for (method, window, centre), grp in ok.groupby(["method", "window", "centre"]):
        cells = []
        for e in effs:
            row = grp[grp["efficiency"] == e]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            cell = f"{r['limit_obs']:.0f} ({r['limit_exp']:.0f})"
            if lumi and pd.notna(r["xsec_obs_fb"]):
                cell += f"; {r['xsec_obs_fb']:.3g} fb"
            cells.append(cell)
        lines.append(f"| {method} | {window} | {centre:.2f} | " + " | ".join(cells) + " |")
    return lines


def _sparse_lines(table: pd.DataFrame) -> list[str]:
    """The tests whose sidebands held too few events for the configured functions, and the fix."""
    if "sparse" not in table:
        return []
    ok = table[table["status"] == "ok"]
    sparse = ok[ok["sparse"] == True]  # noqa: E712 (object column with None)
    if sparse.empty:
        return []
    lines = [
        "",
        "## Sparse spectra (too few sideband events to constrain every configured function)",
        "",
        f"- rule: at most min(events // {fitmod.MIN_EVENTS_PER_PARAMETER}, non-empty bins // "
        f"{fitmod.MIN_BINS_PER_PARAMETER}) free parameters in the fitted sideband bins; "
        f"{len(sparse)} of {len(ok)} tests affected",
    ]
    lines += [
        f"- {r.method} {r.window} keep {100 * r.efficiency:g}% ({r.function} with {r.n_free:.0f} free "
        f"parameters): {r.sparse_action}"
        for r in sparse.itertuples()
    ]
    return lines


def _choice_and_spurious(table: pd.DataFrame) -> list[str]:
    """Which background function each test used, and the spurious-signal flags, if run."""
    ok = table[table["status"] == "ok"]
    lines: list[str] = []
    if "function" in ok and ok["function"].nunique() > 1:
        counts = ok.groupby(["efficiency", "function"]).size().unstack(fill_value=0)
        lines += [
            "",
            "## Background function chosen (number of windows)",
            "",
            "| cut (keep) | " + " | ".join(counts.columns) + " |",
            "|" + "---|" * (1 + len(counts.columns)),
        ]
        for eff, row in counts.sort_index(ascending=False).iterrows():
            lines.append(
                f"| {100 * eff:g}% | " + " | ".join(str(int(v)) for v in row.to_numpy()) + " |"
            )
    if "spurious_ratio" in ok and ok["spurious_ratio"].notna().any():
        tested = ok[ok["spurious_ratio"].notna()]
        flagged = tested[tested["spurious_flag"] == True]  # noqa: E712 (object column with None)
        worst = tested.loc[tested["spurious_ratio"].abs().idxmax()]
        lines += [
            "",
            "## Spurious signal (fitted signal / its uncertainty on background-only pseudo-data)",
            "",
            f"- {len(flagged)} of {len(tested)} tests flagged (|S_spur| / sigma_S > threshold); largest "
            f"{worst['spurious_ratio']:+.2f} in {worst['method']} {worst['window']} keep {100 * worst['efficiency']:g}% "
            f"({worst['function']})",
        ]
        lines += [
            f"- flagged: {r.method} {r.window} keep {100 * r.efficiency:g}% ({r.function}): "
            f"{r.spurious_ratio:+.2f}"
            for r in flagged.itertuples()
        ]
    return lines


def _toy_z_text(best: dict[str, Any], g: dict[str, Any]) -> str:
    for t in g.get("local_toys", []):
        if (t["method"], t["window"], t["efficiency"]) == (
            best["method"],
            best["window"],
            best["efficiency"],
        ):
            rel = ">" if t["is_lower_bound"] else "="
            return (
                f" (asymptotic; from this test's own {t['n_toys']} toys Z_local {rel} {t['z']:.2f})"
            )
    return ""


def write_markdown(summary: dict[str, Any], table: pd.DataFrame, path: Path) -> None:
    lines = [f"# anomalyhunt search `{summary['run']}`", ""]
    lines.append(
        f"- data: {summary['data_source']}, {summary['n_events']:,} events, "
        f"{summary['n_injected']} signal events injected"
    )
    lines.append(
        f"- methods: {', '.join(summary['methods'])}; windows: {summary['n_windows']} "
        f"({summary['n_windows_skipped']} skipped); cuts keep {summary['efficiencies']}"
    )
    best = summary["best"]
    g = summary["global"]
    if best:
        lines.append(
            f"- **largest local excess**: {best['method']} window {best['window']} "
            f"(SR {best['sr_lo']:.2f}-{best['sr_hi']:.2f} TeV), keeping {100 * best['efficiency']:g}% "
            f"of events: n = {best['n_obs']:.0f}, b = {best['b']:.1f} ± {best['sigma_b']:.1f}, "
            f"**Z_local = {best['z']:.2f}**{_toy_z_text(best, g)}"
        )
        toys = g.get("toys", {})
        if "z_global" in toys and toys.get("is_upper_bound"):
            lines.append(
                f"- **global significance** ({toys['n_toys']} toys, none as extreme): "
                f"p < {toys['p_global']:.3g}, **Z_global > {toys['z_global']:.2f}** "
                "(more toys give a sharper number; see Gross-Vitells)"
            )
        elif "z_global" in toys:
            lines.append(
                f"- **global significance** ({toys['n_toys']} toys): p = {toys['p_global']:.3g} "
                f"± {toys['p_global_err']:.2g}, **Z_global = {toys['z_global']:.2f}**"
            )
        else:
            lines.append(
                f"- **global significance from toys: {toys.get('status', 'not computed')}**; "
                "the local Z above is not corrected for the look-elsewhere effect"
            )
        gv = g.get("gross_vitells", {})
        if "z_global" in gv:
            how = (
                "upcrossings fitted over several levels"
                if gv.get("method") == "fit"
                else "single-level extrapolation"
            )
            lines.append(
                f"- Gross-Vitells estimate ({how}): p = {gv['p_global']:.3g}, Z_global = {gv['z_global']:.2f}"
            )
        elif gv.get("status"):
            lines.append(f"- Gross-Vitells estimate: {gv['status']}")
        lines.append(_bumphunter_line(g.get("bumphunter")))
        if g.get("per_method"):
            each = "; ".join(
                f"{method}: Z_local = {pm['z_local_max']:.2f}, Z_global {'>' if pm['is_upper_bound'] else '='} "
                f"{pm['z_global']:.2f}"
                for method, pm in g["per_method"].items()
            )
            lines.append(f"- each method alone (toys of its own tests only): {each}")
        lines.append(_limit_line(best))
    else:
        lines.append(
            "- **NOTHING WAS TESTED**: no window and cut gave a result (the reasons are under "
            "'Not tested'); this is not a search result"
        )
    if summary.get("stale_windows"):
        lines.append(
            f"- **stale outputs**: {', '.join(summary['stale_windows'])} under "
            f"results/{summary['run']}/windows/ are left from an earlier scan and are not part "
            "of this search (each holds a STALE.md saying so); delete them or ignore them"
        )
    lines += _statistics_lines(summary, table)
    lines += ["", "## Local significance (Z) per window and cut", ""]
    ok = table[table["status"] == "ok"]
    if not ok.empty:
        pivot = ok.pivot_table(
            index=["method", "window", "centre"], columns="efficiency", values="z"
        )
        pivot = pivot[sorted(pivot.columns, reverse=True)]
        header = (
            "| method | window | SR centre (TeV) | "
            + " | ".join(f"keep {100 * e:g}%" for e in pivot.columns)
            + " |"
        )
        lines += [header, "|" + "---|" * (3 + len(pivot.columns))]
        for (method, window, centre), row in pivot.iterrows():
            cells = " | ".join("" if np.isnan(v) else f"{v:.2f}" for v in row.to_numpy())
            lines.append(f"| {method} | {window} | {centre:.2f} | {cells} |")
    lines += _limits_table(table, summary.get("luminosity_fb"))
    lines += _choice_and_spurious(table)
    lines += _sparse_lines(table)
    bad = table[table["status"] != "ok"]
    if not bad.empty:
        lines += ["", "## Not tested", ""]
        lines += [
            f"- {r.method} {r.window} keep {r.efficiency}: {r.status}" for r in bad.itertuples()
        ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


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
        "--out-dir", required=True, help="writes summary.json, summary.md, local_z.csv, plots/"
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
