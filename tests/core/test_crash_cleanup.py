"""Crashes leave nothing behind: pool workers die with their parent, staging and service folders of killed
processes are removed by the next run, interrupted sweep / CV cells' half run folders are removed on resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from affectflow.errors import RunError
from affectflow.fsutil import clean_stale_dirs, staged_folder


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_staging_folders_of_killed_imports_are_removed_by_the_next_import(tmp_path):
    dead = tmp_path / f".corpus.staging-{_dead_pid()}-abc123"
    (dead / "features").mkdir(parents=True)
    mine = tmp_path / f".corpus.staging-{os.getpid()}-live"
    mine.mkdir()
    other = tmp_path / f".other.staging-{_dead_pid()}-x"  # another target's: not ours to judge
    other.mkdir()
    legacy = tmp_path / ".corpus.staging-oldformat"  # from an older version: removed once old
    legacy.mkdir()
    with staged_folder(tmp_path / "corpus") as tmp:
        (tmp / "corpus.json").write_text("{}")
        assert tmp.name.startswith(f".corpus.staging-{os.getpid()}-")
    assert not dead.exists() and mine.exists() and other.exists() and legacy.exists()
    os.utime(legacy, (time.time() - 2 * 86400,) * 2)
    assert clean_stale_dirs(tmp_path, ".corpus.staging-") == [legacy]
    assert (tmp_path / "corpus" / "corpus.json").is_file()


def test_service_upload_folders_of_killed_services_are_removed(tmp_path):
    from affectflow.serve.uploads import UploadStore

    dead = tmp_path / f"affectflow-serve-{_dead_pid()}-zz"
    dead.mkdir()
    (dead / "upload.wav").write_bytes(b"x")
    store = UploadStore(tmp_path, 1.0)
    assert not dead.exists() and store.root.name.startswith(f"affectflow-serve-{os.getpid()}-")
    store.close()


def test_pool_workers_die_with_their_parent(tmp_path):
    """SIGKILL the parent of a local process pool running long jobs: its workers are gone within seconds."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from affectflow.execution import get_executor
        from tests.core.test_crash_cleanup import sleepy_job

        if __name__ == "__main__":
            ex = get_executor("local", workers=2, threads=1)
            for _ in ex.map(sleepy_job, [{str(tmp_path)!r}] * 2):
                pass
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        t0 = time.time()
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert time.time() - t0 < 120 and parent.poll() is None, "the workers did not start"
            time.sleep(0.2)
        pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while any(_alive(p) for p in pids):
            assert time.time() - t0 < 5, f"orphaned workers {pids} still run after their parent was killed"
            time.sleep(0.1)
        assert not (tmp_path / "finished").exists()
    finally:
        if parent.poll() is None:
            parent.kill()


def sleepy_job(folder: str) -> None:
    (Path(folder) / f"worker-{os.getpid()}").write_text("")
    time.sleep(30)
    (Path(folder) / "finished").write_text("an orphan finished its job")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_interrupted_cells_half_runs_are_removed_on_resume_failed_ones_kept(tmp_path):
    from affectflow.procedures.sweep import Cell, _discard_half_run
    from affectflow.runs import process_identity

    runs = tmp_path / "sweep" / "runs"
    killed, failed, live, empty = (runs / n for n in ("c000-1", "c001-1", "c002-1", "c003-1"))
    for d in (killed, failed, live, empty):
        d.mkdir(parents=True)
    (killed / "run.json").write_text(json.dumps({"status": "running", "pid": _dead_pid(),
                                                 "host": os.uname().nodename}))
    (failed / "run.json").write_text(json.dumps({"status": "failed: ValueError: x"}))
    (live / "run.json").write_text(json.dumps({"status": "running", **process_identity()}))
    cells = {d: Cell(id=d.name[:4], params={}, config={}, run_dir=str(d)) for d in (killed, failed, live, empty)}
    _discard_half_run(tmp_path / "sweep", cells[killed])
    _discard_half_run(tmp_path / "sweep", cells[empty])  # killed before it wrote run.json
    _discard_half_run(tmp_path / "sweep", cells[failed])
    assert not killed.exists() and not empty.exists() and failed.exists()
    assert cells[killed].run_dir.endswith("(removed: interrupted)")
    with pytest.raises(RunError, match="being trained right now"):
        _discard_half_run(tmp_path / "sweep", cells[live])
    # an edited sweep.json cannot make the resume delete anything outside <sweep>/runs
    victim = tmp_path / "victim"
    victim.mkdir()
    _discard_half_run(tmp_path / "sweep", Cell(id="c9", params={}, config={}, run_dir=str(victim)))
    (runs / "c010-1").symlink_to(victim, target_is_directory=True)
    _discard_half_run(tmp_path / "sweep", Cell(id="c10", params={}, config={}, run_dir=str(runs / "c010-1")))
    assert victim.is_dir()
