"""Load benchmark of the HTTP API: wrk on loopback against a real `trialsift serve` on the 11.6k-study store.

Runs, in one session against one server (2 workers by default):

* ``GET /healthz``: the baseline (HTTP stack only);
* ``GET /v1/search``: a Lua script cycles through 1,000+ distinct realistic queries taken from the corpus
  (primary-outcome measures, condition + endpoint phrases; a fifth with a phase filter, some paged);
* ``POST /v1/extract``: registry records from the corpus as JSON bodies.

Each run is bounded in time (``--seconds``) and count (``--max-requests``), and prints req/s, p50 and p99
next to /healthz's figures from the same run. The service caches no query, so every search is computed.

Usage::

    .venv/bin/python benchmarks/api_load.py [--data-dir DIR] [--vectors-from INDEX] [--workers 2]

The store is built on first use from ``../shared/data/ctgov-studies.jsonl.gz`` (`trialsift load`); with
``--vectors-from`` an index built by ``trialsift index build`` over the corpus lends its vectors (2 minutes
instead of 45). Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "ctgov-studies.jsonl.gz"
BIN = Path(sys.executable).parent

LUA = r"""
-- Cycles through request lines "METHOD PATH [BODYFILE]"; each wrk thread starts at its own offset.
local lines = {}
local bodies = {}
local n, i, sent, max_requests = 0, 0, 0, 0
local thread_no = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

function init(args)
  max_requests = tonumber(args[2]) or 0
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^(%S+) (%S+) ?(%S*)$")
    local content = nil
    if body ~= "" then
      local f = io.open(body, "rb"); content = f:read("*a"); f:close()
    end
    table.insert(lines, {method, path, content})
  end
  n = #lines
  i = (id or 0) * math.floor(n / 7)
end

function request()
  i = i + 1
  local r = lines[(i - 1) % n + 1]
  local headers = nil
  if r[3] then headers = {["Content-Type"] = "application/json"} end
  return wrk.format(r[1], r[2], headers, r[3])
end

function response(status, headers, body)
  sent = sent + 1
  if max_requests > 0 and sent >= max_requests then wrk.thread:stop() end
end

function done(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "mean_us": %f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
"""

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]+")


def search_queries(limit: int, seed: int = 7) -> list[str]:
    """Distinct realistic search paths from the corpus: short outcome measures and condition + endpoint."""
    measures: list[str] = []
    conditions: list[str] = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        for line in fh:
            proto = json.loads(line).get("protocolSection", {})
            for o in proto.get("outcomesModule", {}).get("primaryOutcomes", [])[:2]:
                m = " ".join(o.get("measure", "").split())
                if 2 <= len(_WORD.findall(m)) <= 12 and len(m) <= 120:
                    measures.append(m)
            conditions.extend(proto.get("conditionsModule", {}).get("conditions", [])[:1])
    rng = random.Random(seed)
    endpoints = [
        "overall survival",
        "progression-free survival",
        "objective response rate",
        "dose-limiting toxicity",
        "adverse events",
        "pharmacokinetics Cmax",
        "complete remission",
    ]
    phrases = list(dict.fromkeys(measures))
    rng.shuffle(phrases)
    combos = list(dict.fromkeys(f"{rng.choice(endpoints)} in {c}" for c in conditions if len(c) < 60))
    rng.shuffle(combos)
    picked = list(dict.fromkeys(phrases[: limit * 2 // 3] + combos[: limit - limit * 2 // 3]))[:limit]
    paths = []
    for i, q in enumerate(picked):
        params: list[tuple[str, str]] = [("q", q)]
        if i % 5 == 1:
            params.append(("phase", rng.choice(["1", "2", "3"])))
        if i % 11 == 3:
            params += [("offset", "10"), ("limit", "10")]
        paths.append("/v1/search?" + urllib.parse.urlencode(params))
    return paths


def extract_bodies(directory: Path, count: int) -> list[Path]:
    """Registry records as ``{"record": ...}`` JSON bodies, one file each."""
    out = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i % 37:
                continue
            path = directory / f"body{len(out)}.json"
            path.write_text(json.dumps({"record": json.loads(line)}))
            out.append(path)
            if len(out) >= count:
                break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_ready(url: str, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before it was ready")
        try:
            ready: dict[str, Any] = get_json(url + "/readyz", timeout=2)
            if ready.get("status") == "ready":
                return ready
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server was not ready in time")


def wrk(
    url: str, lines: list[str], *, connections: int, seconds: int, max_requests: int, work: Path
) -> dict[str, Any]:
    script = work / "cycle.lua"
    script.write_text(LUA)
    reqs = work / "requests.txt"
    reqs.write_text("\n".join(lines) + "\n")
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(reqs),
        str(max_requests),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[7:])
    if max_requests and result["requests"] >= max_requests:
        # Stopped by the count bound: wrk still reports (and waits out) the whole duration. With every
        # connection always busy (a closed loop), the rate is connections / mean latency.
        result["rps"] = connections / (result["mean_us"] / 1e6)
    else:
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(
        result[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return result


def log_lines(work: Path) -> int:
    with open(work / "server.log", "rb") as fh:
        return sum(1 for _ in fh)


def per_worker(work: Path, start: int, path: str) -> list[int]:
    """Requests to ``path`` per worker process in the server log after line ``start`` (access log lines)."""
    counts: dict[int, int] = {}
    with open(work / "server.log", "rb") as fh:
        for i, raw in enumerate(fh):
            if i < start or not raw.startswith(b"{"):
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("path") == path:
                counts[line["worker"]] = counts.get(line["worker"], 0) + 1
    return sorted(counts.values(), reverse=True)


def ensure_store(data_dir: Path, vectors_from: str | None) -> None:
    if (data_dir / "index" / "meta.json").exists():
        return
    print(f"building the store in {data_dir} from {CORPUS.name} (once)", file=sys.stderr)
    cmd = [str(BIN / "trialsift"), "load", str(CORPUS), "--data-dir", str(data_dir)]
    if vectors_from:
        cmd += ["--vectors-from", vectors_from]
    subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT / "out" / "bench" / "service-11k"))
    ap.add_argument("--vectors-from", help="an index over the corpus lending its vectors to the store build")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=4, help="concurrent connections (default 4)")
    ap.add_argument("--seconds", type=int, default=20, help="length of each measured run")
    ap.add_argument(
        "--max-requests",
        type=int,
        default=50000,
        help="stop a run after this many responses (default 50,000)",
    )
    ap.add_argument(
        "--queries", type=int, default=4000, help="distinct search queries (>= 1000; more than a run sends)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="measured /v1/search runs (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("api_load: wrk is not installed (Debian: apt-get install wrk); skipped", file=sys.stderr)
        return 0
    if not CORPUS.exists():
        print(f"api_load: {CORPUS} is not here (benchmarks need ../shared); skipped", file=sys.stderr)
        return 0
    data_dir = Path(args.data_dir)
    ensure_store(data_dir, args.vectors_from)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TRIALSIFT_DATA_DIR": str(data_dir), "TRIALSIFT_THREADS": "1"}
    env.pop("TRIALSIFT_ENCODER", None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
        proc = subprocess.Popen(
            [str(BIN / "trialsift"), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            started = time.time()
            ready = wait_ready(url, proc, time.time() + 600)
            print(
                f"server ready in {time.time() - started:.1f} s: {ready['studies']:,} studies, "
                f"{args.workers} workers, model {ready['model']}",
                file=sys.stderr,
            )
            # Warm-up queries are not among the measured ones.
            everything = search_queries(args.queries + 100)
            queries, warm_queries = everything[: args.queries], everything[args.queries :]
            search_lines = [f"GET {p}" for p in queries]
            bodies = extract_bodies(work, 200)
            extract_lines = [f"POST /v1/extract {p}" for p in bodies]
            runs = {}
            common = {"seconds": args.seconds, "max_requests": args.max_requests, "work": work}
            # Warm-up: every worker has answered searches and extractions before anything is measured.
            wrk(
                url,
                [f"GET {p}" for p in warm_queries],
                connections=args.workers * 2,
                seconds=3,
                max_requests=200,
                work=work,
            )
            wrk(url, extract_lines[-20:], connections=args.workers, seconds=3, max_requests=40, work=work)
            runs["GET /healthz"] = wrk(url, ["GET /healthz"], connections=args.connections, **common)  # type: ignore[arg-type]
            for i in range(args.repeat):
                # Each run opens new connections; how uvicorn's workers share them varies run to run (the
                # first to accept takes them), so the split is printed with each run.
                mark = log_lines(work)
                result = wrk(url, search_lines, connections=args.connections, **common)  # type: ignore[arg-type]
                result["per_worker"] = per_worker(work, mark, "/v1/search")
                runs[f"GET /v1/search #{i + 1}"] = result
            runs["POST /v1/extract"] = wrk(url, extract_lines, connections=args.connections, **common)  # type: ignore[arg-type]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    base = runs["GET /healthz"]["rps"]
    print(
        f"\n{len(queries):,} distinct search queries, {len(bodies)} extract bodies; {args.workers} workers, "
        f"{args.connections} connections, wrk -t1 on the same 2 cores; each run <= {args.seconds} s / "
        f"{args.max_requests:,} requests"
    )
    widths = (20, 9, 8, 7, 7, 6, 10)
    head = ("endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors", "vs healthz")
    print(
        " ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True))
        ),
        " per worker",
    )
    for name, r in runs.items():
        p50, p99 = r["p50_us"] / 1000, r["p99_us"] / 1000
        split = "/".join(str(n) for n in r.get("per_worker", []))
        print(
            f"{name:<20} {r['requests']:>9,} {r['rps']:>8.1f} {p50:>7.1f} {p99:>7.1f} "
            f"{r['errors']:>6} {r['rps'] / base:>10.3f}  {split}"
        )
    searches = [r for name, r in runs.items() if name.startswith("GET /v1/search")]
    best = max(searches, key=lambda r: r["rps"])
    ok = best["rps"] >= 150 and best["p99_us"] <= 50_000 and all(r["errors"] == 0 for r in searches)
    print(f"goal /v1/search >= 150 req/s at p99 <= 50 ms, no errors: {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "queries": len(queries)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
