"""Start and stop a real PostgreSQL server (initdb + pg_ctl in a temporary data folder), for the
tests and the benchmarks.

PostgreSQL refuses to run as root, so when the tests run as root (CI on a fresh Debian machine) the
server runs as the `postgres` user that Debian's package creates, via runuser, and owns its folder.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pool.sim.redis_server import free_port

SERVICE_USER = "postgres"


def postgres_bindir() -> Path:
    """The newest installed server's bin folder (Debian keeps them off PATH, per major version)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists() and re.fullmatch(r"\d+", p.parent.name)),
        key=lambda p: int(p.parent.name),
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server is not installed (the README's set-up command installs it)")


@dataclass
class PostgresProcess:
    """One PostgreSQL server on 127.0.0.1; start()/stop()/kill() act only on the postmaster it started."""

    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gs-pg-")))
    database: str = "postgres"
    user: str = "postgres"
    # Tests skip fsync (a crash of the server process keeps committed data either way: the OS holds it);
    # a benchmark turns it on so a commit costs what it costs in production.
    fsync: bool = False
    pid: int | None = None

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", SERVICE_USER, "--", *argv]

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(self._as_owner(argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()[-400:]}")

    def start(self, timeout: float = 30.0) -> None:
        bindir = postgres_bindir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVICE_USER)
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
        if not (self.datadir / "PG_VERSION").exists():
            self._run([str(bindir / "initdb"), "-D", str(self.datadir), "-U", self.user, "-A", "trust",
                       "-E", "UTF8", "--no-locale", "--no-sync"])
        # Loopback TCP only; the Unix socket goes in the data folder so it never collides with a
        # system server or another test's server.
        durability = "-c fsync=on -c full_page_writes=on" if self.fsync else "-c fsync=off -c full_page_writes=off"
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir} "
                   f"-c synchronous_commit=on {durability}")
        self._run([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.workdir / "server.log"),
                   "-o", options, "-w", "-t", str(int(timeout)), "start"])
        self.pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"postgres (pid {self.pid}) did not exit after {sig.name}")
        self.pid = None

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the postmaster): open sessions are rolled back, the data stays."""
        self._signal(signal.SIGINT, timeout)

    def kill(self, timeout: float = 30.0) -> None:
        """Immediate shutdown (SIGQUIT), as a crash would: recovery runs at the next start."""
        self._signal(signal.SIGQUIT, timeout)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
