"""The LHC Olympics 2020 R&D features file from Zenodo, fetched robustly (resume, retry, md5).

A 74 MB download over a flaky connection must not restart from zero, and a truncated or corrupt
file must never be left where the workflow would take it for the real thing.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from anomalyhunt.errors import AnomalyHuntError

log = logging.getLogger(__name__)

LHCO_RECORD = 4536377
LHCO_FILENAME = "events_anomalydetection_v2.features.h5"
LHCO_URL = f"https://zenodo.org/records/{LHCO_RECORD}/files/{LHCO_FILENAME}?download=1"
LHCO_MD5 = "271cf5e71fc756b2a8d2b32730689bdb"
LHCO_SIZE_MB = 74.3
#: Rows of the file: QCD dijets first, then W' -> X(500 GeV) Y(100 GeV) signal.
LHCO_N_BACKGROUND, LHCO_N_SIGNAL = 1_000_000, 100_000

_CHUNK = 1 << 20


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in chunks so large files need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class _Restart(Exception):
    """The partial file cannot be continued (server ignored the Range or refused it)."""


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: continue ``part`` from its current size, or restart it if the server insists."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "anomalyhunt"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part may already be complete
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        if offset and status != 206:
            log.info(
                "server ignored the resume request (HTTP %s): downloading from the start", status
            )
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                file=sys.stderr,
                disable=not progress,
            ) as bar,
        ):
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                fh.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise ConnectionError(f"connection closed after {size} of {total} bytes")


def _by_hand(url: str, dest: Path, md5: str | None) -> str:
    checksum = f" (md5 {md5})" if md5 else ""
    return f"download it by hand from {url} and put it at {dest}{checksum}"


def download(
    url: str,
    dest: Path | str,
    md5: str | None,
    retries: int = 3,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Fetch ``url`` to ``dest`` (no-op if it is already there with the right md5).

    The data go to ``dest.part`` first, which a later call resumes with an HTTP Range request;
    only a complete file with the right checksum is renamed onto ``dest``. ``retries`` is the
    number of further attempts after the first, with a short growing pause between them.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None or md5sum(dest) == md5:
            log.info("%s already present", dest)
            return dest
        log.warning("%s has the wrong md5: downloading it again", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            _fetch_once(url, part, timeout, progress)
            last_error = None
            break
        except urllib.error.HTTPError as exc:
            last_error = exc
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # the URL is wrong: retrying will not help
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last_error = exc
        log.warning("download attempt %d of %d failed: %s", attempt + 1, retries + 1, last_error)
    if last_error is not None:
        if isinstance(last_error, urllib.error.HTTPError):
            reason: object = f"HTTP {last_error.code} {last_error.reason}"
        else:
            reason = getattr(last_error, "reason", None) or last_error
        raise AnomalyHuntError(f"could not download {url} ({reason}); {_by_hand(url, dest, md5)}")
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise AnomalyHuntError(
                f"the file downloaded from {url} has md5 {got}, expected {md5} (removed it); "
                f"try again, or {_by_hand(url, dest, md5)}"
            )
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes)", dest, dest.stat().st_size)
    return dest


def zenodo_md5(record_url: str, filename: str, timeout: float = 20) -> str:
    """The md5 a Zenodo record lists for ``filename``, read from the record's REST API.

    The particle-level files ship no checksum of their own; the record's metadata
    (``https://zenodo.org/api/records/<id>``) holds one per file as ``"checksum": "md5:..."``.
    Both the legacy layout (``files`` a list) and InvenioRDM's (``files.entries``) are read.
    """
    request = urllib.request.Request(
        record_url, headers={"User-Agent": "anomalyhunt", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            record = json.loads(response.read())
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AnomalyHuntError(f"could not read the Zenodo record {record_url} ({reason})") from exc
    files = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict):
        files = files.get("entries", files)
    if isinstance(files, dict):
        files = list(files.values())
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and filename in (entry.get("key"), entry.get("filename")):
            checksum = str(entry.get("checksum", ""))
            md5 = checksum.removeprefix("md5:")
            if not checksum.startswith("md5:") or len(md5) != 32:
                raise AnomalyHuntError(
                    f"the Zenodo record {record_url} gives {filename} no md5 (checksum {checksum!r})"
                )
            return md5.lower()
    raise AnomalyHuntError(f"the Zenodo record {record_url} lists no file {filename}")


def read_features_h5(path: str | os.PathLike) -> pd.DataFrame:
    """The LHCO features table (pandas HDF5, key 'df'), checked for the columns the search needs."""
    from anomalyhunt.data.files import read_hdf_events

    df = read_hdf_events(path, key="df")
    if "label" not in df.columns:
        raise AnomalyHuntError(
            f"{path}: no 'label' column; is this the LHCO R&D features file ({LHCO_FILENAME})?"
        )
    return df
