"""The sensitivity curve: ``python -m anomalyhunt.sensitivity`` (Snakemake target ``sensitivity``).

The figure by which anomaly-detection methods are compared: the whole search is rerun for a list
of injected signal counts and seeds, and per method the signal window's local Z at its best cut,
the global Z and the max SIC are plotted against the injected S/B and S/sqrt(B) in the signal
region, beside the oracle Z (the same cut with the true background count known). Each point is an
ordinary run (``results/<run>-sens-s<seed>-i<n>/``) made by Snakemake from the same config, so a
finished point is reused and an interrupted scan resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from anomalyhunt import cli
from anomalyhunt import config as ah_config
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path, write_json

log = logging.getLogger("anomalyhunt.sensitivity")


def point_run(run: str, seed: int, n_inject: int) -> str:
    """Name of one point's run, beside the base run under results/."""
    return f"{run}-sens-s{seed}-i{n_inject}"


def point_config(config: dict[str, Any], seed: int, n_inject: int) -> dict[str, Any]:
    """The base search with this seed and injection; toys and extras from the sensitivity block."""
    sens = config["sensitivity"]
    return ah_config.merge(
        config,
        {
            "run": point_run(config["run"], seed, n_inject),
            "seed": seed,
            "regions": {"n_inject": n_inject},
            # the curve reads the toys and Gross-Vitells; BumpHunter's check is a third of a summary
            "summary": {"toys": sens["toys"], "bumphunter_pe": 0},
            # the curve reads discovery Z only; CLs limits are ~60% of a bump hunt's time
            "bumphunt": {"limits": False},
            # nor the per-window figures (a fifth of a bump hunt's time)
            "output": {"root": False, "window_plots": False},
        },
    )


def _snakemake(
    cfg_path: Path,
    targets: Sequence[str],
    snakefile: Path,
    workdir: Path,
    cores: int,
    extra_args: Sequence[str],
) -> subprocess.CompletedProcess:
    # --nolock: the outer Snakemake (the `sensitivity` rule) holds the working directory's lock;
    # the inner runs write only below their own results/<run>/ folders.
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "-s",
        str(snakefile),
        "-d",
        str(workdir),
        "--configfile",
        str(cfg_path),
        "--cores",
        str(cores),
        "--nolock",
        *extra_args,
        "--quiet",
        "progress",
    ]
    return subprocess.run(cmd, capture_output=True, text=True)


def run_point(
    config: dict[str, Any],
    seed: int,
    n_inject: int,
    snakefile: Path,
    workdir: Path,
    cores: int,
    extra_args: Sequence[str] = (),
    window_hint: str | None = None,
) -> Path:
    """Run (or reuse) one point's search with Snakemake; return its run folder.

    Only what the curve reads is made: the summary, and the truth evaluation of the window that
    holds the injected signal (none without signal), which saves a third of a point's time.
    With ``window_hint`` (the signal window of an earlier point) both are asked of one Snakemake,
    saving its start-up; a point whose own signal window differs gets that one's evaluation too.
    """
    cfg = point_config(config, seed, n_inject)
    run_dir = workdir / "results" / cfg["run"]
    cfg_path = run_dir / "sensitivity_point.yaml"
    ah_config.write_resolved(cfg, cfg_path)
    log.info("point seed %d, %d injected: %s", seed, n_inject, run_dir)

    def evaluation(window: str) -> str:
        return f"results/{cfg['run']}/windows/{window}/evaluation/metrics.json"

    targets = [f"results/{cfg['run']}/summary.json"]
    if n_inject > 0 and window_hint:
        targets.append(evaluation(window_hint))
    proc = _snakemake(cfg_path, targets, snakefile, workdir, cores, extra_args)
    if proc.returncode == 0 and n_inject > 0:
        window = signal_window(json.loads((run_dir / "summary.json").read_text()))
        if window and window != window_hint:
            proc = _snakemake(cfg_path, [evaluation(window)], snakefile, workdir, cores, extra_args)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise AnomalyHuntError(
            f"sensitivity point {cfg['run']} failed (its logs: {run_dir}/logs):\n{tail}"
        )
    return run_dir


def run_points(
    config: dict[str, Any],
    points: Sequence[tuple[int, int]],
    snakefile: Path,
    workdir: Path,
    cores: int,
    extra_args: Sequence[str] = (),
    at_once: int = 1,
) -> dict[tuple[int, int], Path]:
    """Run every (seed, injected) point; return their run folders.

    The first point runs alone, since its summary names the signal window whose evaluation the
    others ask for in the same Snakemake call. The rest run ``at_once`` at a time, each Snakemake
    given all ``cores``: on a cluster many points' jobs then queue together. (On one machine the
    overlap of one point's serial steps with another's training does not pay for the contention.)
    """
    from concurrent.futures import ThreadPoolExecutor

    if not points:
        return {}
    run_dirs: dict[tuple[int, int], Path] = {}

    def one(i: int, seed: int, n: int, hint: str | None) -> Path:
        log.info("[%d/%d] seed %d, %d injected", i, len(points), seed, n)
        return run_point(config, seed, n, snakefile, workdir, cores, extra_args, window_hint=hint)

    (seed, n), rest = points[0], points[1:]
    run_dirs[(seed, n)] = one(1, seed, n, None)
    window = (
        signal_window(json.loads((run_dirs[(seed, n)] / "summary.json").read_text()))
        if n > 0
        else None
    )
    pool = ThreadPoolExecutor(max_workers=max(1, at_once))
    try:
        futures = {p: pool.submit(one, i, *p, window) for i, p in enumerate(rest, 2)}
        for p, future in futures.items():
            run_dirs[p] = future.result()
    finally:
        # a failed point stops the scan: points not yet started are dropped, running ones finish
        pool.shutdown(wait=True, cancel_futures=True)
    return {p: run_dirs[p] for p in points}


def oracle_z(n: float, b: float) -> float:
    """Asymptotic discovery Z of n events over an exactly known background b (no uncertainty)."""
    if b <= 0 or n <= b:
        return 0.0
    return math.sqrt(2.0 * (n * math.log(n / b) - (n - b)))


def signal_window(summary: dict[str, Any]) -> str | None:
    """The window whose SR holds the most injected signal before any cut (None without signal)."""
    rows = [r for r in summary["local"] if r["efficiency"] == 1.0 and r.get("n_signal_sr")]
    if not rows:
        return None
    return max(rows, key=lambda r: r["n_signal_sr"])["window"]


def point_rows(run_dir: Path, window: str, seed: int, n_inject: int) -> list[dict[str, Any]]:
    """Per method: the signal window's best-cut Z with its oracle, Z_global, max SIC, S/B."""
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics_path = run_dir / "windows" / window / "evaluation" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())["scores"] if metrics_path.exists() else {}
    g = summary["global"]
    rows = []
    for method in summary["methods"]:
        local = [r for r in summary["local"] if r["method"] == method and r["window"] == window]
        uncut = [r for r in local if r["efficiency"] == 1.0]
        tested = [r for r in local if r.get("z") is not None and not math.isnan(r["z"])]
        if not uncut or not tested:
            raise AnomalyHuntError(f"{run_dir}: no test of {method} in the signal window {window}")
        s = float(uncut[0].get("n_signal_sr") or 0)
        b = float(uncut[0]["n_obs"]) - s
        best = max(tested, key=lambda r: r["z"])
        s_cut = float(best.get("n_signal_sr") or 0)
        per = g.get("per_method", {}).get(method) or {**g["toys"], "z_local_max": g["z_local_max"]}
        rows.append(
            {
                "method": method,
                "seed": seed,
                "n_inject": n_inject,
                "window": window,
                "s_sr": s,
                "b_sr": b,
                "s_over_b": s / b if b > 0 else float("nan"),
                "s_over_sqrt_b": s / math.sqrt(b) if b > 0 else float("nan"),
                "best_efficiency": best["efficiency"],
                "z_local": float(best["z"]),
                "z_oracle": oracle_z(float(best["n_obs"]), float(best["n_obs"]) - s_cut),
                "z_global": float(per["z_global"]),
                "z_global_is_bound": bool(per.get("is_upper_bound", False)),
                "z_global_gv": float(g.get("gross_vitells", {}).get("z_global", float("nan"))),
                "z_local_max_any_window": float(per["z_local_max"]),
                "max_sic": float(metrics.get(method, {}).get("max_sic") or float("nan")),
            }
        )
    return rows


def collect(run_dirs: dict[tuple[int, int], Path], window: str | None = None) -> pd.DataFrame:
    """One row per (method, seed, injection); the signal window is the one with the most signal."""
    if window is None:
        for key in sorted(run_dirs, key=lambda k: -k[1]):
            window = signal_window(json.loads((run_dirs[key] / "summary.json").read_text()))
            if window:
                break
    if window is None:
        raise AnomalyHuntError(
            "no point has injected signal: the signal window is unknown; "
            "give sensitivity.injections a nonzero count"
        )
    rows = [r for (seed, n), d in sorted(run_dirs.items()) for r in point_rows(d, window, seed, n)]
    return pd.DataFrame(rows)


def medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median and 16/84% spread over seeds, per method and injection."""
    cols = [
        "s_over_b",
        "s_over_sqrt_b",
        "z_local",
        "z_oracle",
        "z_global",
        "z_global_gv",
        "max_sic",
    ]
    grouped = table.groupby(["method", "n_inject"])[cols]
    out = grouped.median().add_suffix("_median")
    out = out.join(grouped.quantile(0.16).add_suffix("_q16")).join(
        grouped.quantile(0.84).add_suffix("_q84")
    )
    out["n_seeds"] = table.groupby(["method", "n_inject"]).size()
    out["z_global_bound_fraction"] = table.groupby(["method", "n_inject"])[
        "z_global_is_bound"
    ].mean()
    return out.reset_index()


def reach(med: pd.DataFrame, threshold: float = 3.0) -> dict[str, int | None]:
    """Per method, the lowest injected count whose median Z_global reaches ``threshold``."""
    out: dict[str, int | None] = {}
    for method, rows in med.groupby("method"):
        hits = rows.loc[rows["z_global_median"] >= threshold, "n_inject"]
        out[str(method)] = int(hits.min()) if len(hits) else None
    return out


def markdown(
    table: pd.DataFrame, med: pd.DataFrame, reached: dict[str, int | None], toys: int
) -> str:
    lines = [
        "# Sensitivity curve",
        "",
        f"Median over seeds (16-84% in brackets); the signal window is {table['window'].iloc[0]}; "
        f"Z_global from {toys} toys per point (a value at the toys' limit is a lower bound).",
        "",
        "| method | injected | S/B (SR) | S/sqrt(B) (SR) | Z local, best cut | oracle Z, same cut "
        "| Z global (toys) | Z global (Gross-Vitells) | max SIC | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: Any, key: str, fmt: str = ".2f") -> str:
        return (
            f"{getattr(r, key + '_median'):{fmt}} ({getattr(r, key + '_q16'):{fmt}}-"
            f"{getattr(r, key + '_q84'):{fmt}})"
        )

    for r in med.itertuples():
        lines.append(
            f"| {r.method} | {r.n_inject} | {r.s_over_b_median:.2e} | {r.s_over_sqrt_b_median:.2f} "
            f"| {cell(r, 'z_local')} | {cell(r, 'z_oracle')} | {cell(r, 'z_global')} "
            f"| {cell(r, 'z_global_gv')} | {cell(r, 'max_sic', '.1f')} | {r.n_seeds} |"
        )
    limit = table.loc[table["z_global_is_bound"], "z_global"]
    if len(limit) and limit.max() < 3:
        lines += [
            "",
            f"The toys cannot show Z_global above {limit.max():.2f}: raise sensitivity.toys.",
        ]
    lines += [
        "",
        "Lowest injected count where the median Z_global (toys) reaches 3: "
        + "; ".join(f"{m}: {n if n is not None else 'not reached'}" for m, n in reached.items()),
        "",
    ]
    return "\n".join(lines)


def write_outputs(table: pd.DataFrame, out_dir: Path, toys: int) -> dict[str, Any]:
    from anomalyhunt import plots

    med = medians(table)
    reached = reach(med)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "points.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_dir / "sensitivity.md") as tmp:
        tmp.write_text(markdown(table, med, reached, toys))
    plots.sensitivity_curves(med, out_dir / "sensitivity.png")
    result = {
        "signal_window": str(table["window"].iloc[0]),
        "toys_per_point": toys,
        "lowest_injection_z_global_3": reached,
        "medians": med.to_dict(orient="records"),
        "points": table.to_dict(orient="records"),
    }
    write_json(result, out_dir / "sensitivity.json")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.sensitivity", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--config", required=True, help="the resolved config (results/<run>/config.yaml)"
    )
    p.add_argument(
        "--out-dir", required=True, help="where sensitivity.{json,md,png} and points.csv go"
    )
    p.add_argument("--snakefile", default="Snakefile", help="the workflow that runs each point")
    p.add_argument("--workdir", default=".", help="the workflow's working directory")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--snakemake-args",
        default="",
        help="extra arguments for each point's Snakemake "
        "(e.g. '--profile profiles/slurm' to send the points' jobs to a cluster)",
    )
    args = p.parse_args(argv)
    config = ah_config.load(args.config)
    sens = config["sensitivity"]
    workdir = Path(args.workdir).resolve()
    # the largest injection first: its summary names the signal window for the later points
    injections = sorted(sens["injections"], reverse=True)
    points = [(seed, n) for n in injections for seed in sens["seeds"]]
    run_dirs = run_points(
        config,
        points,
        Path(args.snakefile).resolve(),
        workdir,
        args.cores,
        shlex.split(args.snakemake_args),
        sens["points_at_once"],
    )
    result = write_outputs(collect(run_dirs), Path(args.out_dir), sens["toys"])
    log.info(
        "lowest injection with median Z_global >= 3: %s", result["lowest_injection_z_global_3"]
    )


if __name__ == "__main__":
    sys.exit(cli.run(main))
