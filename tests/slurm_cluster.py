"""A real single-node Slurm cluster on this machine, started and stopped by the SLURM tests.

The workflow's SLURM profile is only worth something if jobs really go through sbatch, so the
tests run munged, slurmctld and slurmd here (as root, installing the Debian packages if needed)
instead of mocking the plugin. Everything this module starts it stops again by pid, and every
file it writes outside its state directory is restored on exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
# The plugin strips SLURM_CONF before its inner srun, so only the default paths work.
SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
MUNGE_PID = MUNGE_RUN / "munged.pid"
SLURMCTLD_PORT = 6817


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the test cluster; the message is the reason to skip."""


def _run(
    args: list[str], timeout: float, check: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    """subprocess.run with captured text output and a hard timeout (no call here may hang)."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}"
        )
    return proc


def _alive(pid: int, name: str) -> bool:
    """True when pid runs the program `name`, so a recycled pid is never signalled."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name[:15]
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    """The pid in a daemon's pid file, or None while the file is missing or half written."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_pid(pid: int, name: str, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout` s, the one process `pid` if it still runs `name`."""
    if not _alive(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, name):
            return
        time.sleep(0.2)
    if _alive(pid, name):
        os.kill(pid, signal.SIGKILL)


def _port_open(port: int) -> bool:
    """True when something listens on the loopback `port` (another cluster's daemon)."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def node_topology() -> dict[str, str]:
    """The node line `slurmd -C` prints (NodeName, CPUs, sockets, cores, ...), as key=value."""
    out = _run(["slurmd", "-C"], timeout=30).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
    return dict(item.split("=", 1) for item in line.split())


def mem_total_mb() -> int:
    """MemTotal in MiB: RealMemory must stay below it or slurmctld drains the node."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """Context manager: a one-node cluster whose partition is `partition`.

    `fake_gpu` declares one GPU in the node's GRES (/dev/null behind it) so that jobs asking for
    `--gpus=1`, as the profile's training jobs do, are scheduled as on a GPU cluster; nothing in
    them can use a GPU (CUDA sees none), and two such jobs never run at once.
    """

    def __init__(
        self,
        state_dir: Path,
        partition: str = "main",
        fake_gpu: bool = True,
        install_timeout: float = 300,
        start_timeout: float = 60,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.partition = partition
        self.gpus = int(fake_gpu)
        self.install_timeout = install_timeout
        self.start_timeout = start_timeout
        self.node = ""
        self.start_seconds = 0.0
        self._backups: dict[Path, Path | None] = {}
        self._started: list[tuple[Path, str]] = []  # (pid file, program name), in start order
        self._created_munge_run = False

    # -- prerequisites ---------------------------------------------------------------------------

    def check_prerequisites(self) -> None:
        """Raise ClusterUnavailable unless this machine can install and run Slurm as root."""
        if os.geteuid() != 0:
            raise ClusterUnavailable("the SLURM tests need root (they install and run slurmctld)")
        if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
            raise ClusterUnavailable("slurmctld is not installed and there is no apt-get")
        if _port_open(SLURMCTLD_PORT):
            raise ClusterUnavailable(
                f"a slurmctld already listens on port {SLURMCTLD_PORT}; not replacing that cluster"
            )

    def install(self) -> None:
        """apt-get install the Slurm and munge packages when slurmctld is missing."""
        if all(shutil.which(p) for p in ("slurmctld", "slurmd", "sbatch", "munged")):
            return
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        try:
            proc = _run(cmd, timeout=self.install_timeout, check=False, env=env)
            if proc.returncode != 0:  # stale or missing package lists: refresh once and retry
                _run(
                    ["apt-get", "update", "-q"], timeout=self.install_timeout, check=False, env=env
                )
                proc = _run(cmd, timeout=self.install_timeout, check=False, env=env)
        except subprocess.TimeoutExpired as exc:
            raise ClusterUnavailable(
                f"apt-get install timed out after {exc.timeout:.0f} s"
            ) from exc
        if proc.returncode != 0:
            raise ClusterUnavailable(
                f"apt-get install {' '.join(PACKAGES)} failed: "
                f"{(proc.stdout + proc.stderr)[-1000:]}"
            )

    # -- configuration ---------------------------------------------------------------------------

    def _backup(self, path: Path) -> None:
        """Keep a copy of `path` (or remember it was absent) before this module writes it."""
        if path in self._backups:
            return
        if path.exists():
            saved = self.state_dir / "backup" / path.name
            saved.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, saved)
            self._backups[path] = saved
        else:
            self._backups[path] = None

    def slurm_conf(self) -> str:
        """slurm.conf for this node: no cgroups, no accounting, finished jobs kept 10 min."""
        topo = node_topology()
        self.node = topo["NodeName"]
        real_memory = max(1024, mem_total_mb() - 1024)
        node = " ".join(
            f"{k}={topo[k]}"
            for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
            if k in topo
        )
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        s = self.state_dir
        return "\n".join(
            [
                "# Written by tests/slurm_cluster.py for the SLURM tests; restored when they end.",
                "ClusterName=anomalyhunt-test",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                "SlurmUser=root",
                "AuthType=auth/munge",
                f"SlurmctldPort={SLURMCTLD_PORT}",
                "SlurmdPort=6818",
                f"StateSaveLocation={s}/ctld",
                f"SlurmdSpoolDir={s}/slurmd",
                f"SlurmctldPidFile={s}/slurmctld.pid",
                f"SlurmdPidFile={s}/slurmd.pid",
                f"SlurmctldLogFile={s}/slurmctld.log",
                f"SlurmdLogFile={s}/slurmd.log",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "SchedulerType=sched/backfill",
                "MailProg=/bin/true",
                "MpiDefault=none",
                "ReturnToService=2",
                # squeue must still list finished jobs when the plugin polls (>= 3 x its first wait)
                "MinJobAge=600",
                "SlurmdTimeout=60",
                "InactiveLimit=0",
                "KillWait=5",
                *(["GresTypes=gpu"] if self.gpus else []),
                f"NodeName={self.node} NodeAddr=127.0.0.1 {node} RealMemory={real_memory}{gres} "
                "State=UNKNOWN",
                # without DefMemPerCPU a job without --mem takes the whole node's memory
                f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE "
                "DefMemPerCPU=1024 State=UP",
                "",
            ]
        )

    def write_config(self) -> None:
        for sub in ("ctld", "slurmd"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        text = self.slurm_conf()
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        self._backup(SLURM_CONF)
        self._backup(GRES_CONF)
        SLURM_CONF.write_text(text)
        if self.gpus:
            # /dev/null stands in for the device file: without a File slurmd counts no GPU
            GRES_CONF.write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n")
        elif GRES_CONF.exists():
            GRES_CONF.unlink()

    def restore_config(self) -> None:
        for path, saved in self._backups.items():
            if saved is None:
                path.unlink(missing_ok=True)
            else:
                shutil.copy2(saved, path)
        self._backups.clear()

    # -- daemons ---------------------------------------------------------------------------------

    def _munge_works(self) -> bool:
        try:
            cred = _run(["munge", "-n"], timeout=10, check=False)
            return (
                cred.returncode == 0
                and _run(["unmunge"], timeout=10, check=False, input=cred.stdout).returncode == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start_munge(self) -> None:
        """Start munged as the munge user, unless one already answers (then leave it alone)."""
        if self._munge_works():
            return
        if not MUNGE_KEY.exists():
            raise ClusterUnavailable(f"{MUNGE_KEY} is missing (the munge package creates it)")
        if not MUNGE_RUN.exists():
            MUNGE_RUN.mkdir(mode=0o755)
            self._created_munge_run = True
        shutil.chown(MUNGE_RUN, "munge", "munge")
        _run(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", f"--pid-file={MUNGE_PID}"],
            timeout=30,
        )
        self._started.append((MUNGE_PID, "munged"))
        self._wait(self._munge_works, "munged to answer")

    def _start_daemon(self, program: str) -> None:
        """Start a Slurm daemon (it forks into the background) and remember its pid file."""
        pid_file = self.state_dir / f"{program}.pid"
        proc = _run([program, "-f", str(SLURM_CONF)], timeout=30, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed: {proc.stderr}\n{self.logs()}")
        # the pid file may lag the fork a little: wait for it before the next step
        self._wait(lambda: _read_pid(pid_file) is not None, f"{pid_file}")
        self._started.append((pid_file, program))

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float | None = None) -> None:
        """Poll `ready` until true; raise with the daemons' logs after `timeout` s."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def _node_idle(self) -> bool:
        """True once the node is idle; raise at once if slurmctld rejected it (drain, inval)."""
        state = self.node_state()
        if "drain" in state or "inval" in state:
            reason = _run(["sinfo", "-R", "-h"], timeout=10, check=False).stdout
            raise RuntimeError(f"node {self.node} is {state}: {reason}\n{self.logs()}")
        return state == "idle"

    def node_state(self) -> str:
        proc = _run(["sinfo", "-h", "-N", "-o", "%T"], timeout=10, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def logs(self, tail: int = 20) -> str:
        """The last lines of the daemons' logs, for error messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.state_dir / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SlurmCluster:
        """Install if needed, configure, start the daemons, and wait for an idle node."""
        t0 = time.monotonic()
        self.check_prerequisites()
        self.install()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.write_config()
            self.start_munge()
            self._start_daemon("slurmctld")
            self._start_daemon("slurmd")
            self._wait(self._node_idle, f"node {self.node} to be idle")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Cancel this cluster's jobs, stop the daemons this object started, restore files."""
        if any(
            name == "slurmctld" and _alive(_read_pid(pf) or -1, name) for pf, name in self._started
        ):
            _run(["scancel", "--partition", self.partition], timeout=30, check=False)
        for pid_file, name in reversed(self._started):
            pid = _read_pid(pid_file)
            if pid is not None:
                _stop_pid(pid, name)
        self._started.clear()
        self.restore_config()
        if self._created_munge_run:
            shutil.rmtree(MUNGE_RUN, ignore_errors=True)
            self._created_munge_run = False

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- queries for the tests -------------------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge): id, name, state, ..."""
        proc = _run(["scontrol", "show", "job", "-o"], timeout=30)
        jobs = []
        for line in proc.stdout.splitlines():
            if line.startswith("JobId="):
                fields = {}
                for item in line.split():
                    if "=" in item:
                        key, value = item.split("=", 1)
                        fields[key] = value
                jobs.append(fields)
        return jobs


if __name__ == "__main__":  # manual check: start, report, stop
    import tempfile

    with tempfile.TemporaryDirectory(prefix="slurm-") as tmp, SlurmCluster(Path(tmp)) as cluster:
        print(f"node {cluster.node} idle after {cluster.start_seconds:.1f} s")
        print(_run(["sinfo"], timeout=10).stdout)
