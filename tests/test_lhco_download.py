"""download() against a local HTTP server: resume, servers ignoring Range, md5, dead servers."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalyhunt.data import toy
from anomalyhunt.data.lhco import download, read_features_h5
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import write_hdf


class _Server:
    """Serves one payload at /file.h5, honouring Range unless told not to; logs what was asked."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.honour_range = True
        self.requests: list[str | None] = []
        self.bytes_sent = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                owner.requests.append(rng)
                data, start = owner.payload, 0
                if rng and owner.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                owner.bytes_sent += len(body)  # counted before the client can see any of it
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.h5?download=1"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small file in the LHCO features layout (key 'df', label column)."""
    path = tmp_path_factory.mktemp("src") / "small.features.h5"
    write_hdf(toy.generate(2000, 200, seed=5), path)
    return path.read_bytes()


@pytest.fixture
def server(payload: bytes) -> Iterator[_Server]:
    srv = _Server(payload)
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_then_read(server: _Server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "lhco" / "events.h5"
    got = download(server.url, dest, _md5(payload), retries=0, timeout=5, progress=False)
    assert got == dest and dest.read_bytes() == payload
    assert not dest.with_name("events.h5.part").exists()
    df = read_features_h5(dest)
    assert len(df) == 2200 and (df["label"] == 1).sum() == 200
    # already there with the right md5: nothing is requested again
    download(server.url, dest, _md5(payload), retries=0, timeout=5, progress=False)
    assert len(server.requests) == 1


def test_resume_requests_only_the_rest(server: _Server, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "events.h5"
    cut = len(payload) // 3
    dest.with_name("events.h5.part").write_bytes(payload[:cut])
    download(server.url, dest, _md5(payload), retries=0, timeout=5, progress=False)
    assert dest.read_bytes() == payload
    assert server.requests == [f"bytes={cut}-"]
    assert server.bytes_sent == len(payload) - cut


def test_server_ignoring_range_restarts(server: _Server, payload: bytes, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "events.h5"
    dest.with_name("events.h5.part").write_bytes(b"garbage that must not survive")
    download(server.url, dest, _md5(payload), retries=0, timeout=5, progress=False)
    assert dest.read_bytes() == payload


def test_bad_md5_leaves_no_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "events.h5"
    with pytest.raises(AnomalyHuntError, match=r"expected 0{32}.*by hand.*events\.h5"):
        download(server.url, dest, "0" * 32, retries=0, timeout=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.h5"
    dest = tmp_path / "x.h5"
    start = time.monotonic()
    with pytest.raises(AnomalyHuntError, match=rf"could not download {url}.*put it at"):
        download(url, dest, None, retries=1, timeout=2, progress=False)
    assert time.monotonic() - start < 5
    assert not dest.exists()


def test_not_hdf5_and_missing_label_are_clear(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("<html>not found</html>")
    with pytest.raises(AnomalyHuntError, match="cannot read it as a pandas HDF5 file"):
        read_features_h5(junk)
    nolabel = tmp_path / "nolabel.h5"
    write_hdf(toy.generate(1000, 0, seed=1).drop(columns="label"), nolabel)
    with pytest.raises(AnomalyHuntError, match="no 'label' column"):
        read_features_h5(nolabel)
    few = tmp_path / "few.h5"
    write_hdf(pd.DataFrame({"pxj1": np.zeros(3)}), few)
    with pytest.raises(AnomalyHuntError, match="missing columns"):
        read_features_h5(few)
