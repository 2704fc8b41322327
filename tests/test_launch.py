"""``scripts/run`` as an operator meets it: a worker killed mid-batch, a broker outage, a clean stop.

The launcher runs in a runtime folder of its own (its own embedded
PostgreSQL) with a Redis this module owns, so the test can stop and start
the broker. Times are measured from the moment the failed part is back.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from project.embedded import RedisServer

from .server_helpers import ROOT, call, free_port, stop_group, upload, wait_for_url
from .utils import image_file, scene

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs scripts/run on its own embedded PostgreSQL")

# Every asset is ready within this many seconds of the failed part coming back (issue 14).
RECOVERY_BOUND_SECONDS = 60
BATCH_SIZE = 16


@dataclass
class Launched:
    process: subprocess.Popen[bytes]
    base: str
    env: dict[str, str]
    var: Path
    redis: RedisServer
    log: Path
    token: str = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def child(self, word: str) -> psutil.Process:
        """The launcher's child whose command line has ``word`` (web, worker, beat)."""
        for process in psutil.Process(self.process.pid).children():
            try:
                if word in process.cmdline():
                    return process
            except psutil.Error:  # a dead child the launcher has not reaped yet
                continue
        raise LookupError(word)

    def statuses(self) -> dict[str, int]:
        status, _, body = call("GET", f"{self.base}/api/assets/?limit=100", token=self.token)
        assert status == 200, body
        counts: dict[str, int] = {}
        for asset in body["results"]:
            counts[asset["embedding"]["status"]] = counts.get(asset["embedding"]["status"], 0) + 1
        return counts

    def wait_all_ready(self, total: int, since: float) -> float:
        """Seconds from ``since`` until ``total`` assets are ready; fails past the recovery bound."""
        while True:
            counts = self.statuses()
            if counts.get("ready", 0) == total:
                return time.monotonic() - since
            assert counts.get("failed", 0) == 0, counts
            elapsed = time.monotonic() - since
            assert elapsed < RECOVERY_BOUND_SECONDS, f"not all ready {elapsed:.0f} s after recovery: {counts}\n{self.log.read_text()[-4000:]}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def launched() -> Iterator[Launched]:
    # Short paths: unix sockets allow 107 bytes.
    var = Path(tempfile.mkdtemp(prefix="as-run-"))
    var.chmod(0o755)  # as root, pgserver runs PostgreSQL as another user
    redis = RedisServer(var / "broker").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(ASSETSEARCH_VAR_DIR=str(var), CELERY_BROKER_URL=redis.url, WEB_CONCURRENCY="2",
               ASSETSEARCH_BATCH_SIZE=str(BATCH_SIZE), PYTHONUNBUFFERED="1")
    log = var / "run.log"
    with open(log, "ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "project.launch", "--port", str(port), "--demo-count", "0"],
                                   env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    launched = Launched(process, f"http://127.0.0.1:{port}", env, var, redis, log)
    try:
        wait_for_url(f"{launched.base}/admin/login/", timeout=180, process=process)
        launched.token = re.search(r"Generated token (\w+)", launched.manage("drf_create_token", "admin")).group(1)
        yield launched
    finally:
        if process.poll() is None:
            stop_group(process, timeout=60)
        redis.stop()
        shutil.rmtree(var, ignore_errors=True)


def write_images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "green", "blue", "yellow"]
    for i in range(count):
        (folder / f"{i:03}.png").write_bytes(image_file(scene(colour=colours[i % 4]), seed=i).read())
    return folder


def test_a_worker_killed_mid_batch_is_restarted_while_the_web_answers_and_its_batch_completes(launched, tmp_path):
    before = launched.statuses()
    count = 5 * BATCH_SIZE
    worker = launched.child("worker")
    # Held while the import runs, so that however slow the import is, the worker cannot have
    # finished everything before the kill; let go, it is killed once its first batch is stored.
    worker.suspend()
    launched.manage("assetsearch_import", str(write_images(tmp_path / "import", count)))
    worker.resume()
    deadline = time.monotonic() + 60
    while launched.statuses().get("ready", 0) == before.get("ready", 0):
        assert time.monotonic() < deadline, "the worker embedded nothing"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert launched.statuses().get("pending", 0) > 0  # it died with work in hand

    # The web keeps answering while the worker is down and comes back.
    status, _, _ = call("GET", f"{launched.base}/api/assets/", token=launched.token)
    assert status == 200
    while True:
        try:
            restarted_worker = launched.child("worker")
        except LookupError:
            restarted_worker = None
        if restarted_worker is not None and restarted_worker.pid != worker.pid:
            break
        assert time.monotonic() - killed < 30, "the worker was not restarted"
        assert call("GET", f"{launched.base}/api/assets/", token=launched.token)[0] == 200
        time.sleep(0.2)
    restarted = time.monotonic()
    took = launched.wait_all_ready(sum(before.values()) + count, since=restarted)
    print(f"worker killed mid-batch: restarted after {restarted - killed:.1f} s; all {count} assets ready {took:.1f} s after the restart")


def test_uploads_during_a_broker_outage_are_ready_soon_after_it_returns(launched):
    before = sum(launched.statuses().values())
    launched.redis.stop()
    try:
        for i in range(5):
            status, _, body = upload(launched.base, launched.token, image_file(scene(shape="star"), seed=100 + i).read())
            assert status == 201, body
            assert body["embedding"]["status"] == "pending"
        assert call("GET", f"{launched.base}/api/assets/", token=launched.token)[0] == 200
        time.sleep(3)
    finally:
        launched.redis.start()
    back = time.monotonic()
    took = launched.wait_all_ready(before + 5, since=back)
    print(f"broker outage: all 5 uploads made during it ready {took:.1f} s after it returned")


def test_the_admin_password_is_only_in_its_private_file(launched):
    password_file = launched.var / "admin-password.txt"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 12 and password not in launched.log.read_text()
    assert str(password_file) in launched.log.read_text()  # the log says where it is


def test_stopping_the_launcher_leaves_no_process_behind(launched):
    descendants = psutil.Process(launched.process.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in descendants]
    for part in ("gunicorn", "celery -A project worker", "celery -A project beat"):
        assert any(part in command for command in commands), (part, commands)
    launched.process.send_signal(signal.SIGTERM)  # as a service manager stops it: the launcher alone
    assert launched.process.wait(90) == 0
    time.sleep(1)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [(p.pid, p.cmdline()) for p in alive]
