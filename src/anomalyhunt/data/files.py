"""Reading a user's own events (pandas HDF5 or ROOT) in the LHCO layout, and writing ROOT files.

Users bring files from many tools, so every way a file can fail to fit (wrong extension, no such
tree, a missing branch) is reported as one line naming the file and what to change.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path

log = logging.getLogger(__name__)

HDF_SUFFIXES = (".h5", ".hdf5", ".hdf")
ROOT_SUFFIXES = (".root",)
#: Flat tables uproot can read as columns (RNTuple is ROOT's successor of TTree).
_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple")


def _wanted(available: list[str], path: Path, what: str) -> list[str]:
    missing = [c for c in LHCO_COLUMNS if c not in available]
    if missing:
        raise AnomalyHuntError(
            f"{path}: missing {what} {missing}; the events need the LHCO layout {LHCO_COLUMNS} "
            "(plus an optional 'label')"
        )
    return LHCO_COLUMNS + (["label"] if "label" in available else [])


def read_hdf_events(
    path: str | os.PathLike, key: str | None = None, renames: dict[str, str] | None = None
) -> pd.DataFrame:
    """LHCO columns (+label) of a pandas HDF5 file: table ``key``, else 'df', else the only one.

    ``renames`` maps LHCO column names to the file's column names where they differ. Nothing in
    the file is ever unpickled (:mod:`anomalyhunt.data.safe_hdf`): a file with pickled (object)
    columns is refused with one line naming them.
    """
    from anomalyhunt.data import safe_hdf

    renames = dict(renames or {})
    # the file is inspected without unpickling anything, and only the numeric columns are read
    lay, stored = safe_hdf.stored_columns(path, key)
    available = [c for c in [*LHCO_COLUMNS, "label"] if renames.get(c, c) in stored]
    cols = _wanted(available, Path(path), "columns")
    return safe_hdf.read_frame(path, lay.key, columns=cols, renames=renames)


def _trees(file: object) -> list[str]:
    names = []
    for name, cls in file.classnames().items():  # type: ignore[attr-defined]
        base = name.rsplit(";", 1)[0]
        if cls in _TREE_CLASSES and "/" not in base and base not in names:
            names.append(base)
    return names


#: Per-jet branches ``data.file.jets`` can name (jagged, one entry per jet); tau3 is optional.
JET_FIELDS = ("pt", "eta", "phi", "mass", "tau1", "tau2", "tau3")
_REQUIRED_JET_FIELDS = JET_FIELDS[:-1]


def _open_tree(file: object, path: Path, tree: str | None) -> tuple[str, object]:
    trees = _trees(file)
    if tree is None:
        if len(trees) != 1:
            raise AnomalyHuntError(
                f"{path}: {len(trees)} trees {trees}; name the one to read "
                "(data.file.tree in the config, or --tree)"
            )
        tree = trees[0]
    elif tree not in trees:
        raise AnomalyHuntError(f"{path}: no tree '{tree}' (trees: {trees})")
    return tree, file[tree]  # type: ignore[index]


def _flat_chunk(chunk: dict[str, np.ndarray], names: dict[str, str], path: Path) -> pd.DataFrame:
    out = {}
    for col, branch in names.items():
        values = chunk[branch]
        if values.dtype == object:  # jagged: one array per event
            raise AnomalyHuntError(
                f"{path}: branch '{branch}' (for {col}) has a variable number of entries per "
                "event; name per-jet branches under data.file.jets instead"
            )
        out[col] = np.asarray(values)
    return pd.DataFrame(out)


def _leading_jets_chunk(
    chunk: object, jets: dict[str, str | None], label: str | None
) -> tuple[pd.DataFrame, int]:
    """LHCO columns of the two leading-pT jets of each event with at least two; and how many had fewer."""
    import awkward as ak

    pt = chunk[jets["pt"]]  # type: ignore[index]
    order = ak.argsort(pt, axis=1, ascending=False)
    ok = ak.to_numpy(ak.num(pt, axis=1) >= 2)

    def lead(branch: str | None, k: int) -> np.ndarray:
        if branch is None:  # tau3 not given: 0, which the features (tau21 only) never use
            return np.zeros(int(ok.sum()))
        values = chunk[branch][order][ok]  # type: ignore[index]
        return ak.to_numpy(values[:, k]).astype(np.float64)

    out: dict[str, np.ndarray] = {}
    for k, tag in ((0, "j1"), (1, "j2")):
        j_pt, j_eta, j_phi = lead(jets["pt"], k), lead(jets["eta"], k), lead(jets["phi"], k)
        out[f"px{tag}"] = j_pt * np.cos(j_phi)
        out[f"py{tag}"] = j_pt * np.sin(j_phi)
        out[f"pz{tag}"] = j_pt * np.sinh(j_eta)
        out[f"m{tag}"] = lead(jets["mass"], k)
        for n in (1, 2, 3):
            out[f"tau{n}{tag}"] = lead(jets.get(f"tau{n}"), k)
    df = pd.DataFrame({c: out[c] for c in LHCO_COLUMNS})
    if label is not None:
        df["label"] = ak.to_numpy(chunk[label])[ok]  # type: ignore[index]
    return df, int((~ok).sum())


def read_root_events(
    path: str | os.PathLike,
    tree: str | None = None,
    branches: dict[str, str] | None = None,
    jets: dict[str, str | None] | None = None,
    step_size: str | int = "100 MB",
) -> pd.DataFrame:
    """LHCO columns (+label) of TTree ``tree`` (or the file's only one), read in chunks.

    ``branches`` maps LHCO column names (and 'label') to the file's branch names where they
    differ. ``jets`` instead names jagged per-jet branches (pt, eta, phi, mass, tau1, tau2 and
    optionally tau3; GeV): each event's two leading-pT jets become j1 and j2, and events with
    fewer than two jets are dropped (logged). ``step_size`` bounds the memory of one chunk of
    ``uproot.iterate``, so large ntuples are read piece by piece and only the 15 numbers per
    event are kept.
    """
    import uproot

    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    branches = dict(branches or {})
    try:
        file = uproot.open(path)
    except Exception as exc:
        raise AnomalyHuntError(f"{path}: cannot open it as a ROOT file ({exc})") from exc
    with file:
        tree, ttree = _open_tree(file, path, tree)
        available = list(ttree.keys())  # type: ignore[attr-defined]
        label = branches.get("label") or ("label" if "label" in available else None)
        if label is not None and label not in available:
            raise AnomalyHuntError(f"{path}: no label branch '{label}' in tree '{tree}'")
        source = f"{path}:{tree}"
        if jets:
            need = [f for f in _REQUIRED_JET_FIELDS if not jets.get(f)]
            if need:
                raise AnomalyHuntError(f"data.file.jets: name the branches for {need} too")
            wanted = [b for f in JET_FIELDS if (b := jets.get(f))]
            missing = [b for b in wanted if b not in available]
            if missing:
                raise AnomalyHuntError(
                    f"{path}: tree '{tree}' has no branches {missing} (named in data.file.jets)"
                )
            parts, dropped = [], 0
            for chunk in uproot.iterate(
                {str(path): tree},
                wanted + ([label] if label else []),
                step_size=step_size,
                library="ak",
            ):
                df, n_drop = _leading_jets_chunk(chunk, jets, label)
                parts.append(df)
                dropped += n_drop
            if dropped:
                log.warning("%s: %d events with fewer than two jets dropped", source, dropped)
        else:
            names = {c: branches.get(c, c) for c in LHCO_COLUMNS}
            missing = [b for b in names.values() if b not in available]
            if missing:
                renamed = {c: b for c, b in names.items() if b != c}
                raise AnomalyHuntError(
                    f"{path}: missing branches of tree '{tree}' {missing}; the events need the "
                    f"LHCO layout {LHCO_COLUMNS} (plus an optional 'label')"
                    + (f" under the names in data.file.branches {renamed}" if renamed else "")
                    + ", or per-jet branches named in data.file.jets"
                )
            if label:
                names["label"] = label
            parts = [
                _flat_chunk(chunk, names, path)
                for chunk in uproot.iterate(
                    {str(path): tree},
                    sorted(set(names.values())),
                    step_size=step_size,
                    library="np",
                )
            ]
    columns = LHCO_COLUMNS + (["label"] if label else [])
    if not parts:
        return pd.DataFrame({c: np.zeros(0) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def read_events(
    path: str | os.PathLike,
    tree: str | None = None,
    branches: dict[str, str] | None = None,
    jets: dict[str, str | None] | None = None,
) -> pd.DataFrame:
    """The user's events in the LHCO layout, from .h5/.hdf5 (pandas) or .root (uproot).

    ``branches`` renames columns/branches for both formats; ``jets`` (ROOT only) builds the
    layout from jagged per-jet branches (see :func:`read_root_events`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    if suffix in HDF_SUFFIXES:
        if jets:
            raise AnomalyHuntError(f"{path}: data.file.jets applies to ROOT files only")
        return read_hdf_events(path, renames=branches)
    if suffix in ROOT_SUFFIXES:
        return read_root_events(path, tree, branches=branches, jets=jets)
    raise AnomalyHuntError(
        f"{path}: unknown file type '{suffix}'; use a pandas HDF5 file (.h5, key 'df') or a "
        "ROOT file (.root) with the LHCO columns"
    )


def write_events_root(df: pd.DataFrame, path: str | os.PathLike, tree: str = "events") -> None:
    """Write the columns of ``df`` as branches of one flat TTree, atomically."""
    import uproot

    branches = {str(c): np.ascontiguousarray(df[c].to_numpy()) for c in df.columns}
    with atomic_path(path) as tmp, uproot.recreate(tmp) as file:
        # mktree: a classic TTree, which every ROOT version reads (plain assignment may write RNTuple)
        ttree = file.mktree(tree, {name: values.dtype for name, values in branches.items()})
        ttree.extend(branches)
