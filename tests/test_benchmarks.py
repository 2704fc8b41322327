"""``benchmarks/run --quick`` works from this checkout: a smoke test, no figure asserted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmarks_run_and_report_every_answer() -> None:
    # Its own scratch database: a benchmark run beside the tests is not disturbed.
    # Its own TMPDIR, to show that the benchmarks leave no scratch folder behind
    # (short: Redis's unix socket lives under it, and its path may not pass 107 bytes).
    scratch = Path(tempfile.mkdtemp(prefix="asb-"))
    env = {
        **os.environ, "ASSETSEARCH_VENV": str(Path(sys.executable).parent.parent), "ASSETSEARCH_BENCH_DB": "assetsearch_bench_smoke",
        "TMPDIR": str(scratch),
    }
    # Its own session, so a timeout stops the whole tree (servers, workers), not just the script.
    process = subprocess.Popen(
        [str(ROOT / "benchmarks" / "run"), "--quick"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=570)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"benchmarks/run --quick ran past 570 s:\n{(stdout + stderr)[-4000:]}")
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for heading in ("### Storage", "### Search latency and recall", "### Ingest (bundled model)", "### Host models (search)", "### API",
                    "## done in"):
        assert heading in result.stdout, output[-4000:]
    assert "| recall@10 |" in result.stdout and "upload -> searchable" in result.stdout, result.stdout[-3000:]
    # The host-model cases: the backfill against the import, Photo against Asset through the same index.
    assert "| backfill / import |" in result.stdout and "| photo, beside the assets |" in result.stdout, result.stdout[-3000:]
    assert "| recall@10 photo |" in result.stdout, result.stdout[-3000:]
    assert "NOT ALL ANSWERS WERE 200" not in result.stdout, result.stdout[-3000:]
    left = sorted(path.name for path in scratch.glob("assetsearch-*"))
    shutil.rmtree(scratch, ignore_errors=True)
    assert left == []
