"""Reading pandas HDF5 files from strangers without ever running code from them.

pandas stores object columns of 'fixed' frames as pickles (a PyTables VLArray of ObjectAtom), and
PyTables unpickles every string attribute that looks like a pickle as soon as a node's attributes
are touched. A black-box file from the internet could therefore run code the moment pandas or
PyTables read it. So every file is first inspected with h5py, which never unpickles anything:

- every attribute PyTables would unpickle must be plain data (lists, tuples, strings, numbers),
  checked with an unpickler that refuses every global (so it cannot build or call anything);
- a table holding Python objects (pickled columns) is refused with one line naming the columns.

Only then are the numeric blocks of a 'fixed' frame read, as plain arrays, with PyTables (which
decodes any compression the file uses); 'table' frames, which hold no pickles, are read by pandas.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyhunt.errors import AnomalyHuntError


class _PlainData(pickle.Unpickler):
    """Loads only pickles of plain data: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: ANN401
        raise pickle.UnpicklingError(f"refers to {module}.{name}")


def _plain(raw: bytes) -> Any:  # noqa: ANN401
    return _PlainData(io.BytesIO(raw)).load()


def _text(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _pytables_would_unpickle(value: Any) -> bool:  # noqa: ANN401
    """The test PyTables applies to an attribute before it calls pickle.loads on it."""
    return isinstance(value, bytes) and value.endswith(b".") and value not in (b"0", b"0.")


@dataclass(frozen=True)
class Block:
    """One value block of a 'fixed' frame: its node, its columns, how it is stored."""

    node: str
    items: tuple[str, ...]
    dtype: np.dtype
    is_object: bool
    transposed: bool
    empty: bool


@dataclass(frozen=True)
class Layout:
    key: str
    keys: tuple[str, ...]
    fmt: str  # "fixed" or "table"
    columns: dict[str, np.dtype]  # stored column -> its dtype (object for pickled columns)
    blocks: tuple[Block, ...]
    n_rows: int


def _check_attributes(h5: Any, path: Path) -> None:  # noqa: ANN401
    import h5py

    def check(name: str, obj: Any) -> None:  # noqa: ANN401
        for attr in obj.attrs:
            try:
                value = obj.attrs[attr]
            except (OSError, TypeError, ValueError):
                continue  # a type h5py cannot read is one PyTables cannot unpickle either
            if _pytables_would_unpickle(value):
                try:
                    _plain(bytes(value))
                except Exception as exc:  # noqa: BLE001 - any failure: not plain data
                    raise AnomalyHuntError(
                        f"{path}: attribute '{attr}' of /{name} is a Python pickle that is not plain "
                        f"data ({exc}); refused, because loading it could run code"
                    ) from None

    check("", h5)
    h5.visititems(lambda name, obj: check(name, obj) if isinstance(obj, h5py.HLObject) else None)


def _pandas_keys(h5: Any) -> list[str]:  # noqa: ANN401
    import h5py

    keys: list[str] = []

    def visit(name: str, obj: Any) -> None:  # noqa: ANN401
        if isinstance(obj, h5py.Group) and "pandas_type" in obj.attrs:
            keys.append(name)

    h5.visititems(visit)
    return keys


def _is_object(ds: Any) -> bool:  # noqa: ANN401
    import h5py

    pseudo = ds.attrs.get("PSEUDOATOM")
    if pseudo is not None and _text(pseudo) == "object":
        return True
    return ds.dtype.kind == "O" or h5py.check_vlen_dtype(ds.dtype) is not None


def _open(path: Path, what: str, details: bool = False):
    """The file opened read-only by h5py (which never unpickles), or one line saying why not."""
    import h5py

    if not path.exists():
        raise AnomalyHuntError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError and others for non-HDF5 files
        why = type(exc).__name__
        if details:
            why += f": {str(exc).splitlines()[0] if str(exc) else 'no details'}"
        raise AnomalyHuntError(f"{path}: {what} ({why})") from exc


def check_file(path: str | os.PathLike) -> None:
    """Refuse a file with an attribute that PyTables would unpickle into anything but plain data."""
    path = Path(path)
    with _open(path, "cannot open it as HDF5") as h5:
        _check_attributes(h5, path)


def describe(path: str | os.PathLike, key: str | None = None) -> Layout:
    """Check the whole file for pickles and describe table ``key`` ('df', else the only one)."""
    path = Path(path)
    with _open(path, "cannot read it as a pandas HDF5 file", details=True) as h5:
        _check_attributes(h5, path)
        keys = _pandas_keys(h5)
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
        key = key.strip("/")
        if key not in keys:
            raise AnomalyHuntError(f"{path}: no table '{key}' (tables: {keys})")
        group = h5[key]
        kind = _text(group.attrs["pandas_type"])
        if kind == "frame":
            return _fixed_layout(group, key, tuple(keys), path)
        if kind == "frame_table" and "table" in group:
            table = group["table"]
            return Layout(key, tuple(keys), "table", {}, (), int(table.shape[0]))
        raise AnomalyHuntError(f"{path}: table '{key}' is a pandas '{kind}', not a DataFrame")


def _fixed_layout(group: Any, key: str, keys: tuple[str, ...], path: Path) -> Layout:  # noqa: ANN401
    blocks, columns, objects = [], {}, []
    i = 0
    while f"block{i}_values" in group:
        ds, items_ds = group[f"block{i}_values"], group.get(f"block{i}_items")
        if items_ds is None or _is_object(items_ds):
            raise AnomalyHuntError(
                f"{path}: block {i} of table '{key}' has no readable column names"
            )
        items = tuple(_text(c) for c in items_ds[()])
        is_object = _is_object(ds)
        empty = "shape" in ds.attrs and "value_type" in ds.attrs
        transposed = bool(ds.attrs.get("transposed", False))
        dtype = np.dtype(object) if is_object else ds.dtype
        if not is_object and not empty:
            expect = len(items)
            got = ds.shape[1] if (transposed and ds.ndim == 2) else ds.shape[0]
            if ds.ndim != 2 or got != expect:
                raise AnomalyHuntError(
                    f"{path}: block {i} of table '{key}' has shape {ds.shape} for {expect} columns"
                )
        blocks.append(Block(ds.name, items, dtype, is_object, transposed, empty))
        for c in items:
            columns[c] = dtype
        if is_object:
            objects += items
        i += 1
    if objects:
        raise AnomalyHuntError(
            f"{path}: column(s) {objects} of table '{key}' hold Python objects, which pandas stores "
            "as pickles; they are not read, because unpickling a file can run code: store only "
            "numeric columns (e.g. df.drop(columns=[...]) or df.astype(float))"
        )
    if "axis0" in group and not _is_object(group["axis0"]):  # the frame's own column order
        order = [_text(c) for c in group["axis0"][()]]
        columns = {c: columns[c] for c in order if c in columns} | columns
    lengths = {
        0
        if b.empty
        else (group.file[b.node].shape[0] if b.transposed else group.file[b.node].shape[1])
        for b in blocks
    }
    if len(lengths) > 1:
        raise AnomalyHuntError(
            f"{path}: the blocks of table '{key}' have different lengths {sorted(lengths)}"
        )
    return Layout(key, keys, "fixed", columns, tuple(blocks), lengths.pop() if lengths else 0)


def stored_columns(
    path: str | os.PathLike, key: str | None = None
) -> tuple[Layout, dict[str, np.dtype]]:
    """The table's layout and its stored columns with their dtypes, nothing unpickled."""
    lay = describe(path, key)
    if lay.fmt == "fixed":
        return lay, dict(lay.columns)
    with pd.HDFStore(path, mode="r") as store:  # safe: attributes checked, tables hold no pickles
        return lay, {str(c): np.dtype(t) for c, t in store.select(lay.key, stop=0).dtypes.items()}


def read_frame(
    path: str | os.PathLike,
    key: str | None = None,
    columns: list[str] | None = None,
    renames: dict[str, str] | None = None,
    what: str = "columns",
) -> pd.DataFrame:
    """Numeric ``columns`` (all if None) of a pandas HDF5 table, read without unpickling.

    ``renames`` maps wanted names to the file's names. A wanted column that is missing or not
    numeric is one clear error naming it.
    """
    path = Path(path)
    lay, stored = stored_columns(path, key)
    renames = dict(renames or {})
    wanted = list(stored) if columns is None else columns
    file_names = {c: renames.get(c, c) for c in wanted}
    missing = [f for f in file_names.values() if f not in stored]
    if missing:
        raise AnomalyHuntError(f"{path}: missing {what} {missing} in table '{lay.key}'")
    for ours, theirs in file_names.items():
        dtype = np.dtype(stored[theirs])
        if dtype.kind not in "biuf":
            raise AnomalyHuntError(
                f"{path}: column '{theirs}'"
                + (f" (for {ours})" if ours != theirs else "")
                + f" holds {dtype} values, not numbers"
            )
    if lay.fmt == "table":
        with pd.HDFStore(path, mode="r") as store:
            df = store.select(lay.key, columns=list(dict.fromkeys(file_names.values())))
        return pd.DataFrame({ours: df[theirs].to_numpy() for ours, theirs in file_names.items()})
    return pd.DataFrame(_read_fixed(path, lay, file_names))


def _read_fixed(path: Path, lay: Layout, file_names: dict[str, str]) -> dict[str, np.ndarray]:
    import tables

    where = {c: (b, b.items.index(c)) for b in lay.blocks for c in b.items}
    out: dict[str, np.ndarray] = {}
    with tables.open_file(str(path), mode="r") as h5:  # safe: every attribute checked above
        cache: dict[str, np.ndarray] = {}
        for ours, theirs in file_names.items():
            block, j = where[theirs]
            if block.empty:
                out[ours] = np.zeros(0, dtype=block.dtype)
                continue
            if block.node not in cache:
                node = h5.get_node(block.node)
                if not isinstance(node, tables.Array) or isinstance(node, tables.VLArray):
                    raise AnomalyHuntError(f"{path}: {block.node} is not a numeric array")
                cache[block.node] = node.read()
            values = cache[block.node]
            out[ours] = np.ascontiguousarray(values[:, j] if block.transposed else values[j])
    return out
