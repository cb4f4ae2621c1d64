"""What every workflow branch's command shares (stage 6: generative, unfolding, adversarial).

A branch command is ``python -m anomalyhunt.<branch> --config results/<run>/config.yaml
--out-dir results/<run>/<branch>``, optionally with ``--set key=value`` overrides of its own
block (handy outside Snakemake). :func:`start` parses that, loads and validates the config once,
resolves the device and makes the output folder; :meth:`Branch.finish` writes ``metrics.json``
last, atomically, so a folder with a metrics file is a finished run.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomalyhunt import __version__
from anomalyhunt import config as ah_config
from anomalyhunt.io import write_json

log = logging.getLogger("anomalyhunt.branch")


@dataclass
class Branch:
    """One run of a branch: its validated config block, device, seeds and output folder."""

    name: str
    config: dict[str, Any]
    device: str
    threads: int
    out_dir: Path
    started: float = field(default_factory=time.perf_counter)

    @property
    def block(self) -> dict[str, Any]:
        """The branch's own config block (defaults filled by the schema)."""
        return self.config[self.name]

    def seed(self, *labels: object) -> int:
        """A seed for one random step of this branch, derived from the run's master seed."""
        return ah_config.derive_seed(self.config["seed"], self.name, *labels)

    def path(self, name: str) -> Path:
        """A file in the branch's output folder."""
        return self.out_dir / name

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Write ``metrics.json`` (the branch's numbers plus how they were made); call it last."""
        import torch

        out = {
            "branch": self.name,
            **metrics,
            "run": {
                "seconds": round(time.perf_counter() - self.started, 2),
                "device": self.device,
                "threads": self.threads,
                "torch_threads": torch.get_num_threads(),
                "seed": self.config["seed"],
                "anomalyhunt": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "config": self.block,
            },
        }
        write_json(out, self.path("metrics.json"))
        log.info("%s: wrote %s", self.name, self.path("metrics.json"))
        return out


def start(name: str, argv: Sequence[str] | None, doc: str | None = None) -> Branch:
    """Parse a branch command's arguments, load the config once and prepare the output folder."""
    import torch

    from anomalyhunt.scores.base import resolve_device

    parser = argparse.ArgumentParser(prog=f"python -m anomalyhunt.{name}", description=doc)
    parser.add_argument(
        "--config", required=True, help="resolved config (results/<run>/config.yaml)"
    )
    parser.add_argument(
        "--out-dir", required=True, help="output folder (results/<run>/" + name + ")"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a key of the {name} block (e.g. --set epochs=5); repeatable",
    )
    args = parser.parse_args(argv)
    overrides = ah_config.parse_assignments(args.set)
    config = ah_config.load(args.config, {name: overrides} if overrides else None)
    device = resolve_device(config["device"])
    threads = int(config["threads"])
    torch.set_num_threads(threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s: device %s, %d thread(s), output %s", name, device, threads, out_dir)
    return Branch(name=name, config=config, device=device, threads=threads, out_dir=out_dir)
