"""Time every stage-6 branch at its default size through Snakemake and print a Markdown table.

    python benchmarks/branches.py                      # the generative family, one after another
    python benchmarks/branches.py --branches showers   # one branch
    python benchmarks/branches.py --cores 2 --set scale=paper   # the paper's sizes

Each branch runs as a user runs it (`snakemake --cores N <branch>`) in a fresh folder with the
default config, so the wall time includes Snakemake's start and the toy's generation. The goal
(issue 15): every branch under 10 minutes on 2 CPU cores. The metrics files stay in
benchmarks/out/branches/<branch>/ for the tables in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GENERATIVE = ["gan_events", "ganplify", "weighted_gan", "showers"]


def run_branch(branch: str, cores: int, sets: list[str], out: Path) -> dict:
    work = out / branch
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    block: dict = {}
    for item in sets:
        key, _, value = item.partition("=")
        block[key] = yaml.safe_load(value)
    config = {"run": "bench", "threads": cores, branch: block}  # one branch, every core
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(work),
        "--configfile",
        str(work / "config.yaml"),
        "--cores",
        str(cores),
        branch,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    metrics_path = work / "results" / "bench" / branch / "metrics.json"
    if proc.returncode != 0 or not metrics_path.exists():
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"branch": branch, "wall_s": wall, "ok": False}
    metrics = json.loads(metrics_path.read_text())
    return {
        "branch": branch,
        "wall_s": wall,
        "ok": True,
        "command_s": metrics["run"]["seconds"],
        "device": metrics["run"]["device"],
        "threads": metrics["run"]["torch_threads"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--branches", nargs="+", default=GENERATIVE)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--set", action="append", default=[], help="key=value of each branch's block")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "branches")
    args = p.parse_args()
    rows = [run_branch(b, args.cores, args.set, args.out) for b in args.branches]
    print("| branch | finished | wall time (s, with Snakemake) | command (s) | device | threads |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['branch']} | {'yes' if r['ok'] else 'no'} | {r['wall_s']:.0f} | "
            f"{r.get('command_s', float('nan')):.0f} | {r.get('device', '')} | "
            f"{r.get('threads', '')} |"
        )


if __name__ == "__main__":
    main()
