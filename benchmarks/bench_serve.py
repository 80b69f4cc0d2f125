"""Load test of ``affectflow serve`` on loopback: concurrent uploads of 30 s clips and live WebSocket audio streams.

What it does
    1. Makes (or takes with ``--run``) a trained run: a small causal GRU on eGeMAPS functionals (2 Hz) extracted
       from synthetic speech (:func:`affectflow.synthetic.media.generate_media_corpus`, 4 speakers x 30 s), and
       a ``--clip-s`` long synthetic speech clip of a new speaker (16 kHz mono wav).
    2. Starts ``affectflow serve RUN`` as a child process on ``127.0.0.1`` and a free port (loopback only; nothing
       else is contacted), with ``max_concurrent_jobs = --workers`` and ``threads = 1``.
    3. Warm-up: one upload and one short stream (so that lazily loaded libraries are in memory).
    4. ``--rounds`` rounds of load, each all at once:

       - ``--clients`` (N) upload loops, each posting the clip ``--requests`` times to ``POST /predict`` (JSON
         answer awaited; the next upload starts when the answer is in);
       - ``--streams`` (M) WebSocket streams, each sending the clip's audio as float32 chunks of ``--chunk-s``
         seconds **paced in real time** (a live microphone), then ``end``.

       Every round is bounded: it stops by itself after ``--max-seconds`` (unfinished work counts as errors).

       With ``--hostile``, every round is run twice on the same server, first as above (baseline), then with two
       hostile clients among the normal ones:

       - a **cancelled long job**: ``POST /jobs`` of a ``--long-s`` seconds FLAC (the clip repeated), ``DELETE``
         after 0.5 s, wait until the job reports ``cancelled`` (the time from DELETE to that is reported), pause
         2 s, again, until the normal clients are done;
       - a **slow-headers client**: opens a connection and sends one header byte every 0.5 s without ever
         finishing the headers, again and again (the time until the server closes it is reported).

       The normal uploads' p99 of both phases is printed side by side.
    5. Reports

       - uploads: latency per request (upload + extraction + prediction; p50 / p99 / max), throughput
         (requests/s and seconds of audio predicted per second), errors;
       - streams: the lag of each prediction behind real time, ``arrival − (stream start + step time)``: it
         includes the model's algorithmic look-ahead (a step at ``t`` needs audio up to about
         ``t + win_dur/2 + 2.1 s``, the eGeMAPS context), so the unloaded lag is measured first (one stream
         alone) and the extra lag under load is reported too; steps received vs expected, errors;
       - memory: the server's resident set size (with its children) sampled every 0.25 s: after warm-up, after
         each round, peak, end, and the slope of a line fitted over the load phase (MiB/min). Flat memory means
         the later rounds end where the first one did.

Usage::

    python benchmarks/bench_serve.py                                  # 3 rounds: N=4 uploaders x 2, M=4 streams
    python benchmarks/bench_serve.py --clients 2 --requests 1 --streams 2 --rounds 2 --max-seconds 90
    python benchmarks/bench_serve.py --run RUN --clip speech.wav
    python benchmarks/bench_serve.py --clients 2 --requests 3 --streams 0 --rounds 2 --clip-s 10 --hostile

Numbers depend on the machine's load (other processes share the cores): say so when you quote them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_run(root: Path) -> Path:
    """A small causal GRU on eGeMAPS of synthetic speech (as the service tests use)."""
    import torch

    from affectflow.config import load_config
    from affectflow.experiment import train
    from affectflow.features.pipeline import extract
    from affectflow.synthetic.media import generate_media_corpus

    torch.set_num_threads(1)
    corpus = generate_media_corpus(root / "corpus", n_subjects=4, duration_s=30.0, seed=5, video=False,
                                   physio=False, transcript=False, partitions=(0.5, 0.25, 0.25))
    summary = extract(corpus, {"defaults": {"rate_hz": 2.0}, "features": {"egemaps": {}}}, workers=1, progress=False)
    assert summary.ok, summary.format()
    cfg = load_config(None, [
        f"data.corpus={corpus.path}", f"output.runs_dir={root / 'runs'}", "data.features=[egemaps]",
        "data.window.size=20", "data.window.hop=10", "training.batch_size=8", "training.epochs=5",
        "training.patience=5", "training.seeds=[1]", "training.device=cpu",
    ])
    return train(cfg, progress=False)


def make_clip(root: Path, seconds: float) -> Path:
    from affectflow.synthetic.media import generate_media_corpus

    c = generate_media_corpus(root / f"clip-{seconds:g}s", n_subjects=1, duration_s=seconds, seed=11, video=False, physio=False,
                              transcript=False)
    return next((c.path / "media").glob("*.wav"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MemorySampler:
    """Resident set size of a process (and its children) every ``period`` s, in a thread."""

    def __init__(self, pid: int, period: float = 0.25) -> None:
        import threading

        import psutil

        self.proc = psutil.Process(pid)
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mib(self) -> float:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a child that just ended
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.rss_mib()))
            self._stop.wait(self.period)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def upload_loop(client, url: str, data: bytes, requests: int, deadline: float, out: dict) -> None:
    for _ in range(requests):
        if time.perf_counter() > deadline:
            out["errors"].append("deadline reached before the request")
            continue
        t0 = time.perf_counter()
        try:
            r = await client.post(url + "/predict", files={"file": ("clip.wav", data, "audio/wav")},
                                  timeout=max(1.0, deadline - t0))
            dt = time.perf_counter() - t0
            if r.status_code == 200 and r.json().get("n_steps", 0) > 0:
                out["latency"].append(dt)
            else:
                out["errors"].append(f"HTTP {r.status_code}: {r.text[:200]}")
        except Exception as e:  # noqa: BLE001 - counted and reported
            out["errors"].append(f"{type(e).__name__}: {e}")


async def stream_one(ws_url: str, audio: np.ndarray, sr: int, chunk_s: float, deadline: float, out: dict,
                     label_rate: float) -> None:
    import websockets

    n = int(round(chunk_s * sr))
    expected = int(np.floor(len(audio) / sr * label_rate))
    got = 0
    try:
        async with websockets.connect(ws_url, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "input": "audio", "sample_rate": sr, "encoding": "f32le"}))
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                out["errors"].append(f"no ready: {ready}")
                return
            start = time.perf_counter()

            async def reader():
                nonlocal got
                async for msg in ws:
                    m = json.loads(msg)
                    if m["type"] == "prediction":
                        got += 1
                        out["lag"].append(time.perf_counter() - (start + m["time"]))
                    elif m["type"] == "end":
                        return
                    else:
                        out["errors"].append(f"stream message: {m}")
                        return

            task = asyncio.create_task(reader())
            for k, i in enumerate(range(0, len(audio), n)):
                wait = start + k * chunk_s - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if time.perf_counter() > deadline:
                    out["errors"].append("deadline reached while streaming")
                    task.cancel()
                    return
                await ws.send(audio[i:i + n].astype("<f4").tobytes())
            # the clip has been "spoken"; the rest arrives after end (edge steps)
            await asyncio.sleep(max(0.0, start + len(audio) / sr - time.perf_counter()))
            t_end = time.perf_counter()
            await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(task, timeout=max(1.0, deadline - time.perf_counter()))
            out["end_latency"].append(time.perf_counter() - t_end)
    except Exception as e:  # noqa: BLE001 - counted and reported
        out["errors"].append(f"{type(e).__name__}: {e}")
        return
    if got != expected:
        out["errors"].append(f"stream got {got} predictions, expected {expected}")
    out["steps"] += got


async def cancel_loop(client, url: str, long_data: bytes, done: asyncio.Event, deadline: float, out: dict) -> None:
    """Upload a long file as a job, cancel it after 0.5 s, wait until it is cancelled; repeat until ``done``."""
    while not done.is_set() and time.perf_counter() < deadline:
        try:
            r = await client.post(url + "/jobs", files={"file": ("long.flac", long_data, "audio/flac")}, timeout=60)
            if r.status_code != 202:
                out["errors"].append(f"long job: HTTP {r.status_code}: {r.text[:200]}")
                return
            jid = r.json()["id"]
            await asyncio.sleep(0.5)
            t0 = time.perf_counter()
            await client.delete(url + f"/jobs/{jid}", timeout=10)
            while True:
                j = (await client.get(url + f"/jobs/{jid}", timeout=10)).json()
                if j["status"] in ("cancelled", "failed", "done"):
                    break
                if time.perf_counter() - t0 > 60:
                    out["errors"].append("a cancelled job was still running after 60 s")
                    return
                await asyncio.sleep(0.05)
            out["cancel_s"].append(time.perf_counter() - t0)
            if j["status"] != "cancelled":
                out["errors"].append(f"long job ended {j['status']}, not cancelled")
        except Exception as e:  # noqa: BLE001 - counted and reported
            out["errors"].append(f"long job: {type(e).__name__}: {e}")
        try:
            await asyncio.wait_for(done.wait(), 2.0)
        except asyncio.TimeoutError:
            pass


async def slow_headers_loop(url: str, done: asyncio.Event, deadline: float, out: dict) -> None:
    """Open a connection, send a header byte every 0.5 s and never finish; time until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    while not done.is_set() and time.perf_counter() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            t0 = time.perf_counter()
            writer.write(b"POST /predict HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
            await writer.drain()
            closed = False
            while (not closed and not done.is_set() and time.perf_counter() < deadline
                   and time.perf_counter() - t0 < 120):
                try:
                    got = await asyncio.wait_for(reader.read(100), 0.5)
                    closed = got == b""
                except asyncio.TimeoutError:
                    try:
                        writer.write(b"X")
                        await writer.drain()
                    except (ConnectionError, OSError):
                        closed = True
            if closed:
                out["slow_closed_s"].append(time.perf_counter() - t0)
            elif not done.is_set():
                out["errors"].append("a slow-headers connection was still open after 120 s")
            writer.close()
        except Exception as e:  # noqa: BLE001 - counted and reported
            out["errors"].append(f"slow headers: {type(e).__name__}: {e}")
            await asyncio.sleep(0.5)


async def load(url: str, data: bytes, audio: np.ndarray, sr: int, args, label_rate: float,
               long_data: bytes | None = None) -> dict:
    import httpx

    deadline = time.perf_counter() + args.max_seconds
    up = {"latency": [], "errors": []}
    st = {"lag": [], "errors": [], "steps": 0, "end_latency": []}
    hostile = {"cancel_s": [], "slow_closed_s": [], "errors": []}
    ws_url = url.replace("http://", "ws://") + "/stream"
    t0 = time.perf_counter()
    async with httpx.AsyncClient() as client:
        tasks = [upload_loop(client, url, data, args.requests, deadline, up) for _ in range(args.clients)]
        tasks += [stream_one(ws_url, audio, sr, args.chunk_s, deadline, st, label_rate) for _ in range(args.streams)]
        if long_data is None:
            await asyncio.gather(*tasks)
        else:
            done = asyncio.Event()
            side = [asyncio.create_task(cancel_loop(client, url, long_data, done, deadline, hostile)),
                    asyncio.create_task(slow_headers_loop(url, done, deadline, hostile))]
            await asyncio.gather(*tasks)
            done.set()
            await asyncio.gather(*side)
    return {"uploads": up, "streams": st, "hostile": hostile, "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="run directory (default: train a small one)")
    p.add_argument("--clip", help="speech file to upload and stream (default: a synthetic --clip-s clip)")
    p.add_argument("--clip-s", type=float, default=30.0, help="length of the synthetic clip (s, default 30)")
    p.add_argument("--clients", type=int, default=4, help="concurrent upload loops N (default 4)")
    p.add_argument("--requests", type=int, default=2, help="uploads per loop and round (default 2)")
    p.add_argument("--streams", type=int, default=4, help="concurrent WebSocket audio streams M (default 4)")
    p.add_argument("--chunk-s", type=float, default=0.25, help="audio per WebSocket message (s, default 0.25)")
    p.add_argument("--workers", type=int, default=2, help="server's max_concurrent_jobs (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="load rounds, memory read after each (default 3)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="hard limit of one round (s, default 120)")
    p.add_argument("--out", help="folder for the run and clip (default: a temporary folder)")
    p.add_argument("--server-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra serve setting, e.g. isolate_jobs=false (repeatable)")
    p.add_argument("--hostile", action="store_true",
                   help="run every round twice: plain, then with a cancelled long job and a slow-headers client")
    p.add_argument("--long-s", type=float, default=600.0, help="length of the cancelled long upload (s, default 600)")
    args = p.parse_args(argv)
    if min(args.clients, args.requests, args.workers, args.rounds) < 1 or args.streams < 0 or args.max_seconds <= 0:
        p.error("--clients, --requests, --workers must be >= 1, --streams >= 0, --max-seconds > 0")

    import soundfile as sf

    tmp = tempfile.TemporaryDirectory(prefix="affectflow-bench-serve-")
    root = Path(args.out or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    old_runs = sorted((root / "runs").glob("*/metrics.json"))  # a run and clip left by an earlier --out run
    old_clips = sorted((root / f"clip-{args.clip_s:g}s" / "media").glob("*.wav"))
    run = Path(args.run) if args.run else (old_runs[-1].parent if old_runs else make_run(root))
    clip = Path(args.clip) if args.clip else (old_clips[0] if old_clips else make_clip(root, args.clip_s))
    print(f"run {run} (made or found in {time.perf_counter() - t:.1f} s); clip {clip}")
    audio, sr = sf.read(clip, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    data = clip.read_bytes()
    label_rate = 2.0

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "affectflow.cli.main", "serve", str(run), "--host", "127.0.0.1", "--port", str(port),
           "-q", "--log-level", "warning", "--set", f"max_concurrent_jobs={args.workers}", "--set", "threads=1",
           "--set", f"max_queued_jobs={args.clients + 4}", "--set", f"max_streams={args.streams + 4}",
           "--set", f"request_timeout_s={args.max_seconds}"]
    for kv in args.server_set:
        cmd += ["--set", kv]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import httpx

        t0 = time.perf_counter()
        while True:
            try:
                info = httpx.get(url + "/info", timeout=1).json()
                label_rate = float(info["label_rate_hz"])
                break
            except Exception:  # noqa: BLE001 - not up yet
                if server.poll() is not None or time.perf_counter() - t0 > 60:
                    print(server.stdout.read() if server.stdout else "")
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
        print(f"server pid {server.pid} on {url} (started in {time.perf_counter() - t0:.1f} s); "
              f"{os.cpu_count()} CPU cores on this machine")
        mem = MemorySampler(server.pid)
        mem.start()
        # warm-up and the unloaded stream lag
        warm = asyncio.run(load(url, data, audio[: sr * 8], sr,
                                argparse.Namespace(**{**vars(args), "clients": 1, "requests": 1,
                                                   "streams": min(1, args.streams)}),
                                label_rate))
        if warm["uploads"]["errors"] or warm["streams"]["errors"]:
            print("warm-up errors:", warm["uploads"]["errors"], warm["streams"]["errors"])
        base_lag = float("nan")
        if args.streams:
            alone = asyncio.run(load(url, data, audio, sr, argparse.Namespace(
                **{**vars(args), "clients": 0, "requests": 0, "streams": 1}), label_rate))
            base_lag = pct(alone["streams"]["lag"], 50)
        t_load = time.perf_counter()
        rss_before = mem.rss_mib()
        rounds, rss_rounds = [], []
        long_data = None
        if args.hostile:
            import io

            import soundfile as sf

            reps = int(np.ceil(args.long_s * sr / len(audio)))
            buf = io.BytesIO()
            sf.write(buf, np.tile(audio, reps)[: int(args.long_s * sr)], sr, format="FLAC")
            long_data = buf.getvalue()
            print(f"long upload: {args.long_s:g} s of audio in {len(long_data) / 2**20:.1f} MiB of FLAC")
        hrounds = []
        for k in range(args.rounds):
            rounds.append(asyncio.run(load(url, data, audio, sr, args, label_rate)))
            time.sleep(0.5)
            rss_rounds.append(mem.rss_mib())
            print(f"round {k + 1}/{args.rounds}: {rounds[-1]['wall_s']:.1f} s, server RSS {rss_rounds[-1]:.0f} MiB",
                  flush=True)
            if args.hostile:
                hrounds.append(asyncio.run(load(url, data, audio, sr, args, label_rate, long_data)))
                time.sleep(0.5)
                h = hrounds[-1]
                print(f"round {k + 1}/{args.rounds} with hostile clients: {h['wall_s']:.1f} s; normal p99 "
                      f"{pct(h['uploads']['latency'], 99):.2f} s vs {pct(rounds[-1]['uploads']['latency'], 99):.2f} s "
                      f"plain; cancels {len(h['hostile']['cancel_s'])}, slow-header connections closed "
                      f"{len(h['hostile']['slow_closed_s'])}", flush=True)
        res = {"wall_s": sum(r["wall_s"] for r in rounds),
               "uploads": {key: sum((r["uploads"][key] for r in rounds), []) for key in ("latency", "errors")},
               "streams": {key: sum((r["streams"][key] for r in rounds), []) for key in ("lag", "errors", "end_latency")}}
        res["streams"]["steps"] = sum(r["streams"]["steps"] for r in rounds)
        t_done = time.perf_counter()
        time.sleep(1.0)
        mem.stop()
        health = httpx.get(url + "/health", timeout=5).json()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    up, st = res["uploads"], res["streams"]
    during = [(t, m) for t, m in mem.samples if t_load <= t <= t_done]
    slope = float("nan")
    if len(during) > 4:
        tt = np.array([t for t, _ in during]) - during[0][0]
        slope = float(np.polyfit(tt / 60.0, [m for _, m in during], 1)[0])
    clip_s = len(audio) / sr
    n_ok = len(up["latency"])
    print(f"\nload: {args.rounds} rounds of N={args.clients} upload loops x {args.requests} requests of a "
          f"{clip_s:.1f} s clip + M={args.streams} real-time audio streams ({args.chunk_s:g} s chunks), server "
          f"workers={args.workers}, wall {res['wall_s']:.1f} s (limit {args.max_seconds:g} s per round)")
    print(f"uploads  : {n_ok}/{args.clients * args.requests * args.rounds} ok, errors {len(up['errors'])}; latency p50 "
          f"{pct(up['latency'], 50):.2f} s, p99 {pct(up['latency'], 99):.2f} s, max {max(up['latency'] or [float('nan')]):.2f} s; "
          f"throughput {n_ok / res['wall_s']:.2f} req/s = {n_ok * clip_s / res['wall_s']:.1f} s of audio per s")
    print(f"streams  : {st['steps']} predictions, errors {len(st['errors'])}; lag behind real time p50 "
          f"{pct(st['lag'], 50):.2f} s, p99 {pct(st['lag'], 99):.2f} s, max {max(st['lag'] or [float('nan')]):.2f} s "
          f"(one stream alone: p50 {base_lag:.2f} s, i.e. extra under load p50 {pct(st['lag'], 50) - base_lag:+.2f} s, "
          f"p99 {pct(st['lag'], 99) - base_lag:+.2f} s); end-of-stream latency p50 {pct(st['end_latency'], 50):.2f} s")
    print(f"memory   : server RSS after warm-up {rss_before:.0f} MiB, peak {max(m for _, m in mem.samples):.0f} MiB, "
          f"end {mem.samples[-1][1]:.0f} MiB, after each round {[round(m) for m in rss_rounds]} MiB, "
          f"slope during load {slope:+.1f} MiB/min")
    print(f"server   : jobs {health['jobs']}, open streams {health['streams']}")
    hostile_result = None
    if args.hostile:
        hl = sum((r["uploads"]["latency"] for r in hrounds), [])
        herr = sum((r["uploads"]["errors"] for r in hrounds), [])
        hh = {key: sum((r["hostile"][key] for r in hrounds), []) for key in ("cancel_s", "slow_closed_s", "errors")}
        p_plain, p_host = pct(up["latency"], 99), pct(hl, 99)
        print(f"hostile  : normal uploads p99 {p_host:.2f} s with a cancelled long job and a slow-headers client vs "
              f"{p_plain:.2f} s without ({100 * (p_host / p_plain - 1):+.0f} %), p50 {pct(hl, 50):.2f} vs "
              f"{pct(up['latency'], 50):.2f} s; {len(hl)} ok, errors {len(herr)}; DELETE -> cancelled in p50 "
              f"{pct(hh['cancel_s'], 50):.2f} s, max {max(hh['cancel_s'] or [float('nan')]):.2f} s "
              f"({len(hh['cancel_s'])} cancels); slow-header connections closed after p50 "
              f"{pct(hh['slow_closed_s'], 50):.1f} s ({len(hh['slow_closed_s'])}); hostile-side errors {hh['errors'][:3]}")
        hostile_result = {"normal_p99_plain": p_plain, "normal_p99_hostile": p_host,
                          "normal_p50_plain": pct(up["latency"], 50), "normal_p50_hostile": pct(hl, 50),
                          "upload_errors": herr, "cancel_s": hh["cancel_s"], "slow_closed_s": hh["slow_closed_s"],
                          "errors": hh["errors"]}
    for e in (up["errors"] + st["errors"])[:10]:
        print("error:", e)
    result = {"args": vars(args), "clip_s": clip_s, "wall_s": res["wall_s"], "uploads_ok": n_ok,
              "upload_errors": up["errors"], "upload_latency_s": {"p50": pct(up["latency"], 50),
                                                                 "p99": pct(up["latency"], 99)},
              "stream_steps": st["steps"], "stream_errors": st["errors"],
              "stream_lag_s": {"p50": pct(st["lag"], 50), "p99": pct(st["lag"], 99), "alone_p50": base_lag},
              "rss_mib": {"after_warmup": rss_before, "peak": max(m for _, m in mem.samples),
                          "end": mem.samples[-1][1], "after_rounds": rss_rounds,
                          "slope_mib_per_min": slope}, "hostile": hostile_result}
    (root / "bench_serve.json").write_text(json.dumps(result, indent=2))
    tmp.cleanup() if not args.out else None
    return 0 if not (up["errors"] or st["errors"]) else 1


if __name__ == "__main__":
    sys.exit(main())
