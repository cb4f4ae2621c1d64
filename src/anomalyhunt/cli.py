"""Shared plumbing of the stage commands: logging and turning user errors into one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from anomalyhunt.errors import AnomalyHuntError

log = logging.getLogger("anomalyhunt")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a stage's ``main``; an AnomalyHuntError becomes ``anomalyhunt: error: ...`` and exit 2."""
    setup_logging()
    try:
        main(argv)
    except AnomalyHuntError as exc:
        print(f"anomalyhunt: error: {exc}", file=sys.stderr)
        return 2
    return 0
