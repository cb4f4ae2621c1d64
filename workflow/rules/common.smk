# Shared set-up: validate the config, resolve it to one file every command reads, and name paths.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from anomalyhunt import config as ah_config  # noqa: E402
from anomalyhunt import regions as ah_regions  # noqa: E402
from anomalyhunt.data import pythia as ah_pythia  # noqa: E402
from anomalyhunt.scores.base import gpu_slots  # noqa: E402
from anomalyhunt.errors import AnomalyHuntError  # noqa: E402

# The package's validator first: it names the bad key in one line and adds cross-field checks;
# Snakemake's own validation of the same schema then fills the defaults in place. Snakemake hands
# nested --config values over as strings ("{toys: 5000}" gives '5000'): they are read as YAML
# wherever the schema expects a number, boolean, null or list.
try:
    config.update(ah_config.validate(ah_config.coerce_strings(config), source="config"))
except AnomalyHuntError as exc:
    raise WorkflowError(str(exc))
validate(config, "../schemas/config.schema.yaml")

RUN = f"results/{config['run']}"
LOGS = f"{RUN}/logs"
BENCH = f"{RUN}/benchmarks"
WINDOWS = ah_regions.window_ids(config["regions"])
# report rows say where a window is in mass, not only its id
WINDOW_SR = {
    w.id: f"SR {w.sr[0]:.2f}-{w.sr[1]:.2f} TeV ({w.id})" for w in ah_regions.windows(config["regions"])
}


def window_labels(figure: str):
    """Report labels of a per-window figure: its window as a mass range, and what it shows."""
    return lambda wildcards: {"window": WINDOW_SR[wildcards.window], "figure": figure}
METHODS = config["scores"]["methods"]

# Every command reads the whole resolved config from one file, written only when it changes so
# that its timestamp never triggers reruns; each rule declares the config parts it depends on as
# params, so changing one value reruns only the jobs that use it. A dry run (-n) writes nothing.
CONFIG = f"{RUN}/config.yaml"
DRY_RUN = bool(getattr(workflow.output_settings, "dryrun", False)) or workflow.dryrun
if not DRY_RUN:
    ah_config.write_resolved(config, CONFIG)


# Rules call `python -m anomalyhunt.<stage>`: the interpreter running Snakemake comes first on the
# PATH (a rule's conda env, when used, comes before it), and this checkout's package is importable.
# (These set variables, they require none from the user, so there is no envvars: directive.)
os.environ.update(
    PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
)


def report_front_page() -> str:
    """The report's front page: the run's headline once its summary exists, else the generic one."""
    front = Path(RUN, "report.rst").resolve()
    return str(front) if front.exists() else "workflow/report/workflow.rst"


def events_file() -> str:
    """Events file for the features step; generated sources write it under this run."""
    source = config["data"]["source"]
    if source == "toy":
        return f"{RUN}/data/toy_events.h5"
    if source == "pythia":
        return f"{RUN}/data/pythia_events.h5"
    if source == "lhco":
        return config["data"]["lhco"]["path"]
    if source == "lhco_raw":
        return f"{RUN}/data/lhco_raw_events.h5"
    return config["data"]["file"]["path"]


wildcard_constraints:
    window=r"w\d+",
    method=r"[a-z][a-z0-9_]*",
