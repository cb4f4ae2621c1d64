"""Throughput and memory of the simulation paths: Pythia generation and raw LHCO-file clustering.

Prints a Markdown table of events per second on one core for Pythia 8 QCD and W' signal chunks
(generation + FastJet clustering + N-subjettiness) and for processing a particle-level file in
the published LHCO layout (made here, synthetic events), then the peak memory (VmHWM / ru_maxrss) of
raw-file processing for several read batch sizes, each in a fresh process so the peaks do not
mix. About 2-3 minutes on one core.

    .venv/bin/python benchmarks/simulation.py
    .venv/bin/python benchmarks/simulation.py --n-qcd 300 --n-signal 150 --n-raw 3000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anomalyhunt.data import lhco_raw


def _peak_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's VmHWM, which starts afresh at exec; ru_maxrss (the fallback elsewhere) would carry
    over the peak of the parent that forked the process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(path: str, n: int, batch_size: int) -> None:
    """Process ``n`` rows of ``path`` in batches; print timing and memory as JSON."""
    from anomalyhunt.data import jets  # noqa: F401 - load fastjet before the baseline

    base = _peak_mb()
    t = time.perf_counter()
    df = lhco_raw.process(path, 0, n, batch_size=batch_size, progress=False)
    elapsed = time.perf_counter() - t
    print(
        json.dumps(
            {"baseline_mb": base, "peak_mb": _peak_mb(), "seconds": elapsed, "kept": len(df)}
        )
    )


def _pythia(process: str, n: int) -> tuple[float, int]:
    from anomalyhunt.data import pythia

    t = time.perf_counter()
    df = pythia.generate_chunk(process, n, seed=12345)  # type: ignore[arg-type]
    return time.perf_counter() - t, len(df)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-qcd", type=int, default=300, help="Pythia QCD events generated")
    p.add_argument("--n-signal", type=int, default=150, help="Pythia W' events generated")
    p.add_argument("--n-raw", type=int, default=3000, help="events in the test-made raw file")
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[100, 1000, 3000],
        help="read batch sizes for the memory runs (rows read at once)",
    )
    p.add_argument("--child", nargs=3, metavar=("PATH", "N", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    logging.basicConfig(level=logging.WARNING)
    print(
        f"one core (os.sched_getaffinity: {len(os.sched_getaffinity(0))} cores visible, "
        f"load average {os.getloadavg()[0]:.2f})\n"
    )
    print("| step | events | seconds | events/s | kept |")
    print("|---|---|---|---|---|")
    try:
        for process, n in (("qcd", args.n_qcd), ("signal", args.n_signal)):
            if n:
                seconds, kept = _pythia(process, n)
                print(
                    f"| Pythia {process} (generate + cluster) | {n} | {seconds:.1f} | "
                    f"{n / seconds:.0f} | {kept} ({100 * kept / n:.0f}%) |",
                    flush=True,
                )
    except Exception as exc:  # noqa: BLE001 - pythia8mc is an optional extra
        print(f"| Pythia | skipped: {exc} | | | |")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events_raw.h5"
        t = time.perf_counter()
        lhco_raw.write_raw(path, *lhco_raw.synthetic_events(args.n_raw, seed=3))
        write_s = time.perf_counter() - t
        size_mb = path.stat().st_size / 1e6
        runs = []
        for batch in args.batch_sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), str(args.n_raw), str(batch)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append((batch, json.loads(out.stdout.strip().splitlines()[-1])))
        best = min(r["seconds"] for _, r in runs)
        print(
            f"| raw LHCO file (read + cluster, {size_mb:.0f} MB file written in {write_s:.1f} s) | "
            f"{args.n_raw} | {best:.1f} | {args.n_raw / best:.0f} | {runs[0][1]['kept']} |"
        )
        print(
            "\nPeak memory of raw-file processing, fresh process per batch size "
            f"({args.n_raw} events; a batch holds batch x 2101 x 8 bytes of particles):\n"
        )
        print(
            "| read batch (rows) | batch array MB | RSS after imports MB | peak RSS MB | events/s |"
        )
        print("|---|---|---|---|---|")
        for batch, r in runs:
            print(
                f"| {batch} | {batch * 2101 * 8 / 1e6:.0f} | {r['baseline_mb']:.0f} | "
                f"{r['peak_mb']:.0f} | {args.n_raw / r['seconds']:.0f} |"
            )


if __name__ == "__main__":
    main()
