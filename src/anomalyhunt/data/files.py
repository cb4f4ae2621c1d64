"""Reading a user's own events (pandas HDF5 or ROOT) in the LHCO layout, and writing ROOT files.

Users bring files from many tools, so every way a file can fail to fit (wrong extension, no such
tree, a missing branch) is reported as one line naming the file and what to change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyhunt.data.features import LHCO_COLUMNS
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import atomic_path

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


def read_hdf_events(path: str | os.PathLike, key: str | None = None) -> pd.DataFrame:
    """LHCO columns (+label) of a pandas HDF5 file: table ``key``, else 'df', else the only one."""
    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = [k.lstrip("/") for k in store.keys()]
            if key is None:
                if "df" in keys:
                    key = "df"
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise AnomalyHuntError(
                        f"{path}: {len(keys)} tables {keys} and none is called 'df'; "
                        "store the events under key 'df'"
                    )
            if key not in keys:
                raise AnomalyHuntError(f"{path}: no table '{key}' (tables: {keys})")
            df = store[key]
    except AnomalyHuntError:
        raise
    except Exception as exc:  # tables/HDF5 raise many types for a file that is not pandas HDF5
        raise AnomalyHuntError(
            f"{path}: cannot read it as a pandas HDF5 file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no details'})"
        ) from exc
    if not isinstance(df, pd.DataFrame):
        raise AnomalyHuntError(f"{path}: table '{key}' is not a DataFrame")
    cols = _wanted(list(df.columns), path, "columns")
    return df[cols].reset_index(drop=True)


def _trees(file: object) -> list[str]:
    names = []
    for name, cls in file.classnames().items():  # type: ignore[attr-defined]
        base = name.rsplit(";", 1)[0]
        if cls in _TREE_CLASSES and "/" not in base and base not in names:
            names.append(base)
    return names


def read_root_events(path: str | os.PathLike, tree: str | None = None) -> pd.DataFrame:
    """LHCO branches (+label) of TTree ``tree``, or of the only TTree in the file."""
    import uproot

    path = Path(path)
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    try:
        file = uproot.open(path)
    except Exception as exc:
        raise AnomalyHuntError(f"{path}: cannot open it as a ROOT file ({exc})") from exc
    with file:
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
        ttree = file[tree]
        cols = _wanted(list(ttree.keys()), path, f"branches of tree '{tree}'")
        arrays = ttree.arrays(cols, library="np")
    return pd.DataFrame({c: np.asarray(arrays[c]) for c in cols})


def read_events(path: str | os.PathLike, tree: str | None = None) -> pd.DataFrame:
    """The user's events in the LHCO layout, from .h5/.hdf5 (pandas) or .root (uproot)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    if suffix in HDF_SUFFIXES:
        return read_hdf_events(path)
    if suffix in ROOT_SUFFIXES:
        return read_root_events(path, tree)
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
