"""summary.md: the search's result as a person reads it (largest excess, global significance,
tables of local Z and limits, how each background was chosen, warnings).

Only formatting lives here; every number comes from :mod:`anomalyhunt.summary`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt.io import atomic_path
from anomalyhunt.stats import fit as fitmod


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
    if st.get("choice_uncertainty"):
        how += (
            "; where a simpler function is kept, its difference to the next more flexible one "
            "is a background uncertainty"
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


def headline_lines(summary: dict[str, Any]) -> list[str]:
    """The result in a few bullet lines (Markdown): data, the largest excess, global significance
    three ways, the limit, warnings. summary.md and the report's front page both open with them."""
    lines = []
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
    return lines


def write_markdown(summary: dict[str, Any], table: pd.DataFrame, path: Path) -> None:
    lines = [f"# anomalyhunt search `{summary['run']}`", "", *headline_lines(summary)]
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


#: How to read the report, below the headline on its front page.
REPORT_GUIDE = """\
How to read this report: **Summary** holds the table of every test (``local_z.csv``: one row per
method, window and cut, with the background prediction, the local Z and its toy p-value) and the
scans of the local Z, p0 and limits against the signal-region centre; summary.md beside it has
the same headline and tables (the limits and background choices are also below). **Bump hunt per
window** shows each window's sideband fits at every cut and its score distributions;
**Evaluation** the ROC/SIC curves and the sculpting of mjj where truth labels exist.
"""


def _rst_literals(line: str) -> str:
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", line)


def markdown_to_rst(lines: list[str]) -> list[str]:
    """The summary's markdown (``##`` headings, bullets, pipe tables) as reStructuredText.

    So that the report's front page carries the same tables as summary.md, rendered by docutils.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            title = _rst_literals(line[3:])
            out += [title, "-" * len(title)]
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):  # not the |---| rule
                    rows.append(cells)
                i += 1
            out += [".. list-table::", "   :header-rows: 1", ""]
            for row in rows:
                out.append("   * - " + (_rst_literals(row[0]) or " "))
                out += [f"     - {_rst_literals(c) or ' '}" for c in row[1:]]
            out.append("")
            continue
        else:
            out.append(_rst_literals(line.replace("|", "\\|")))
        i += 1
    return out


def write_report_front(summary: dict[str, Any], table: pd.DataFrame, path: Path) -> None:
    """The front page of ``snakemake --report``: the headline and the summary's tables (RST)."""
    title = f"anomalyhunt search ``{summary['run']}``"
    body = [_rst_literals(line) for line in headline_lines(summary)]
    tables = _limits_table(table, summary.get("luminosity_fb"))
    tables += _choice_and_spurious(table) + _sparse_lines(table)
    text = "\n".join([title, "", *body, "", REPORT_GUIDE, *markdown_to_rst(tables)])
    with atomic_path(path) as tmp:
        tmp.write_text(text)
