"""Score one mjj window with one method, out of fold: ``python -m anomalyhunt.scores``.

Methods that declare ``needs_simulation`` (supervised, idealized) are bound to a
:class:`~anomalyhunt.scores.simulation.Simulation` of the config's toy generator for this window;
with any other data source they stop with a clear error.

With ``--model-dir`` every finished fold is checkpointed there, and a rerun (a preempted or killed
job) resumes the folds whose fingerprint still matches instead of retraining them; ``--no-resume``
retrains every fold regardless. Once the scores are written the fold markers are removed (the models
stay for inspection): checkpoints exist to finish an interrupted job, so a deliberate rerun
(``snakemake --forcerun scores``) trains afresh.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anomalyhunt import cli
from anomalyhunt import config as cfgmod
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_parquet, write_parquet
from anomalyhunt.regions import find_window
from anomalyhunt.scores import available, empty_scores, get_scorer, resolve_device
from anomalyhunt.scores.kfold import score_out_of_fold

log = logging.getLogger("anomalyhunt.scores")


def clear_checkpoints(model_dir: Path) -> None:
    """Remove a finished job's fold checkpoints (models, score files, markers) and their folder.

    Only the files the k-fold driver writes (``fold*``, and ``.fold*`` staging) are removed; the
    folder goes too when nothing else is left in it.
    """
    import shutil

    if not model_dir.is_dir():
        return
    for p in [*model_dir.glob("fold*"), *model_dir.glob(".fold*")]:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    try:
        model_dir.rmdir()
    except OSError:
        log.info("%s keeps files that are not checkpoints; left in place", model_dir)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, score the window and write the scores table."""
    p = argparse.ArgumentParser(
        prog="python -m anomalyhunt.scores", description=__doc__.splitlines()[0]
    )
    p.add_argument("--config", required=True)
    p.add_argument("--events", required=True, help="events.parquet from the regions stage")
    p.add_argument("--windows", required=True, help="windows.json from the regions stage")
    p.add_argument("--window", required=True, help="window id, e.g. w01")
    p.add_argument("--method", required=True, help=f"scoring method ({', '.join(available())})")
    p.add_argument("--out", required=True, help="scores.parquet to write")
    p.add_argument(
        "--model-dir",
        default=None,
        help="keep each fold's trained model and scores here; a rerun resumes finished folds",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="retrain every fold even where --model-dir holds a matching checkpoint",
    )
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the fold checkpoints after success, so that a rerun reuses the folds",
    )
    p.add_argument("--threads", type=int, default=None, help="default: the config's threads")
    args = p.parse_args(argv)

    config = cfgmod.load(args.config)
    scorer_cls = get_scorer(args.method)
    params = config["scores"].get(args.method, {})  # a method without a block: its defaults
    needs_simulation = getattr(scorer_cls, "needs_simulation", False)
    if needs_simulation:
        from anomalyhunt.scores.simulation import require_toy

        require_toy(config, args.method)  # fail before any work when there is no simulator
    threads = args.threads if args.threads is not None else config["threads"]
    if threads < 1:
        raise AnomalyHuntError(f"--threads must be at least 1, got {threads}")

    window, skipped = find_window(args.windows, args.window)
    if skipped:
        log.warning("window %s skipped (%s): writing an empty scores table", args.window, skipped)
        write_parquet(empty_scores(), args.out)
        return

    fingerprint_extra: dict[str, Any] = {}
    if needs_simulation:
        # reference samples drawn with a seed of their own (not the data's), shared by all folds
        from anomalyhunt.scores.simulation import Simulation

        simulation = Simulation.from_config(config, window, args.method)
        scorer_cls = scorer_cls.bound_to(simulation)
        # the reference samples shape the model as much as the params: a checkpoint trained on
        # another simulation must not be resumed
        fingerprint_extra["simulation"] = {
            f.name: getattr(simulation, f.name)
            for f in dataclasses.fields(simulation)
            if not f.name.startswith("_")
        }
    seed = cfgmod.derive_seed(config["seed"], "scores", args.method, args.window)
    # a gradient-boosting method never touches torch: asking it for a GPU would only cost time
    device = resolve_device(config["device"]) if scorer_cls.uses_torch(params) else "cpu"
    events = read_parquet(args.events)
    # the schema gives every method's block a validation_fraction; without a block, the driver's
    split = {k: float(params[k]) for k in ("validation_fraction",) if k in params}
    scores = score_out_of_fold(
        scorer_cls,
        params,
        events,
        window,
        seed=seed,
        device=device,
        threads=threads,
        **split,
        model_dir=args.model_dir,
        resume=not args.no_resume,
        fingerprint_extra=fingerprint_extra,
    )
    write_parquet(scores, args.out)
    if args.model_dir and not args.keep_checkpoints:
        clear_checkpoints(Path(args.model_dir))
    log.info(
        "window %s: %d events scored with %s -> %s", args.window, len(scores), args.method, args.out
    )


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
