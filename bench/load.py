#!/usr/bin/env python3
"""Load test of a release ragd: concurrent searches while the corpus changes, then the same with thousands of idle
and stalled connections alongside.

  python3 bench/load.py                          # builds .build/release/ragd, SciFact, 64 clients, 2 x 60 s
  python3 bench/load.py --duration 20 --clients 16 --idle 500 --stalled 10 --json

The corpus (../shared/data/scifact/corpus.jsonl) is written out as Markdown files (as ../shared/eval/beir_eval.py
does) and ragd is started on it with the model in models/all-MiniLM-L6-v2; the load starts once `status` reports
`ready` with nothing pending, vectors included. Phase 1: --clients connections, spread over --procs processes,
each sending a search (bm25, dense and hybrid in turn, k 10, text included) and waiting for its reply, for
--duration seconds, while a writer thread edits, creates and deletes files. Phase 2: the same, plus --idle
connections that never send anything and --stalled connections that sent half a request line and stopped.

Reports per phase: requests per second, latency p50/p99/max per mode and overall (client side, round trip),
errors, ragd's RSS before and after, and the CPU seconds used by ragd and by the client processes. Passes when
neither phase has an error and phase 2's overall p99 is within --p99-factor (2) of phase 1's; exits 1 otherwise.

The daemon runs without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (they slow the encoder down on this machine).
"""

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "eval"))
from ragd_client import Client, percentile, stop_daemon, wait_for_socket  # noqa: E402
from beir_eval import load_jsonl, write_corpus  # noqa: E402

MODES = ("bm25", "dense", "hybrid")


# ---------------------------------------------------------------------------------------------------------------
# The daemon

def build_release():
    subprocess.run(["swift", "build", "-c", "release", "--product", "ragd"], cwd=ROOT, check=True)
    return os.path.join(ROOT, ".build", "release", "ragd")


def daemon_environment():
    env = dict(os.environ)
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM"):
        env.pop(name, None)
    return env


def start_ragd(ragd, config, docs, state, sock, model, log_path):
    args = [ragd, "--config", config, "--source", docs, "--state-dir", state, "--socket", sock, "--model", model]
    log = open(log_path, "ab")
    return subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True, env=daemon_environment())


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_embedded(client, timeout):
    deadline = time.monotonic() + timeout
    status = {}
    while time.monotonic() < deadline:
        status = client.call("status")
        embeddings = status.get("embeddings", {})
        if status.get("state") == "ready" and status.get("pending") == 0 and embeddings.get("state") == "ready":
            return status
        if embeddings.get("state") == "unavailable":
            raise SystemExit(f"ragd has no embedding model: {embeddings.get('reason')}")
        time.sleep(0.5)
    raise SystemExit(f"not indexed within {timeout} s; last status: {status}")


# ---------------------------------------------------------------------------------------------------------------
# Client processes (spawned, so that they inherit none of the parent's sockets)

def client_thread(sock_path, queries, seed, connected, go, duration, out):
    rng = random.Random(seed)
    latencies = {mode: [] for mode in MODES}
    errors = []
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(30)
        conn.connect(sock_path)
        reader = conn.makefile("rb")
    except OSError as error:
        out.append((latencies, [f"connect: {error}"]))
        return
    finally:
        connected.wait()
    go.wait()
    deadline = time.monotonic() + duration
    request_id = 0
    turn = rng.randrange(len(MODES))
    try:
        while time.monotonic() < deadline:
            request_id += 1
            mode = MODES[turn % len(MODES)]
            turn += 1
            line = json.dumps({"id": request_id, "op": "search", "query": rng.choice(queries), "k": 10, "mode": mode}).encode() + b"\n"
            started = time.perf_counter()
            conn.sendall(line)
            reply_line = reader.readline()
            elapsed = (time.perf_counter() - started) * 1000
            if not reply_line:
                errors.append("connection closed by ragd")
                break
            reply = json.loads(reply_line)
            if reply.get("id") != request_id:
                errors.append(f"reply id {reply.get('id')!r} for request {request_id}")
                break
            if not reply.get("ok"):
                errors.append(f"{mode}: {reply.get('error')}")
                continue
            latencies[mode].append(elapsed)
    except (OSError, ValueError) as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        conn.close()
    out.append((latencies, errors))


def client_process(index, threads, sock_path, queries, duration, ready, go, results):
    out = []
    connected = threading.Barrier(threads + 1)
    workers = [threading.Thread(target=client_thread, args=(sock_path, queries, index * 1000 + n, connected, go, duration, out))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    connected.wait()
    ready.put(index)
    for worker in workers:
        worker.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    merged = {mode: [] for mode in MODES}
    errors = []
    for latencies, errs in out:
        for mode in MODES:
            merged[mode].extend(latencies[mode])
        errors.extend(errs)
    results.put((merged, errors, usage.ru_utime + usage.ru_stime))


# ---------------------------------------------------------------------------------------------------------------
# The writer: edits, creates and deletes files while the clients search

class Writer(threading.Thread):
    def __init__(self, docs, corpus, rate, seed):
        super().__init__(daemon=True)
        self.docs, self.corpus, self.interval = docs, corpus, 1.0 / rate
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.counts = {"edit": 0, "create": 0, "delete": 0}
        self.files = [os.path.join(d, n) for d, _, names in os.walk(docs) for n in names]
        self.created = []

    def text(self):
        doc = self.rng.choice(self.corpus)
        return f"# {doc.get('title') or 'Untitled'}\n\n{doc.get('text', '')}\n"

    def run(self):
        folder = os.path.join(self.docs, "load-writer")
        os.makedirs(folder, exist_ok=True)
        next_at = time.monotonic()
        while not self.stop.is_set():
            op = self.rng.random()
            if op < 0.4:
                path = self.rng.choice(self.files)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(self.text())
                self.counts["edit"] += 1
            elif op < 0.75 or not self.created:
                path = os.path.join(folder, f"new{self.rng.randrange(10**9)}.md")
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(self.text())
                self.created.append(path)
                self.counts["create"] += 1
            else:
                path = self.created.pop(self.rng.randrange(len(self.created)))
                os.unlink(path)
                self.counts["delete"] += 1
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


# ---------------------------------------------------------------------------------------------------------------
# Idle and stalled connections

def open_extra_connections(sock_path, idle, stalled):
    conns = []
    for n in range(idle + stalled):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(30)
        conn.connect(sock_path)
        if n >= idle:
            conn.sendall(b'{"id":1,"op":"search","query":"stalled half a li')
        conns.append(conn)
    return conns[:idle], conns[idle:]


def still_open(conns):
    """Connections on which ragd has sent nothing and not closed (a refusal or a close would be readable)."""
    count = 0
    for conn in conns:
        conn.setblocking(False)
        try:
            data = conn.recv(1, socket.MSG_PEEK)
            if data:
                continue  # a reply: refused
            continue  # EOF: closed
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


# ---------------------------------------------------------------------------------------------------------------
# One phase

def run_phase(name, args, sock_path, proc, queries, docs, corpus, idle=0, stalled=0):
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per_proc = [args.clients // args.procs + (1 if n < args.clients % args.procs else 0) for n in range(args.procs)]
    workers = [ctx.Process(target=client_process, args=(n, per_proc[n], sock_path, queries, args.duration, ready, go, results))
               for n in range(args.procs) if per_proc[n] > 0]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    rss_start = rss_mb(proc.pid)
    idle_conns, stalled_conns = open_extra_connections(sock_path, idle, stalled)
    # Every worker thread has connected (or failed to) once its process reported ready and the extras are open.
    rss_before = rss_mb(proc.pid)
    cpu_before = cpu_seconds(proc.pid)
    load_before = os.getloadavg()[0]
    writer = Writer(docs, corpus, args.writer_rate, seed=hash(name) & 0xFFFF)
    started = time.monotonic()
    writer.start()
    go.set()
    collected = [results.get(timeout=args.duration + 120) for _ in workers]
    elapsed = time.monotonic() - started
    writer.stop.set()
    writer.join()
    for worker in workers:
        worker.join()
    rss_after = rss_mb(proc.pid)
    cpu_used = cpu_seconds(proc.pid) - cpu_before
    idle_open = still_open(idle_conns)
    stalled_open = still_open(stalled_conns)
    for conn in idle_conns + stalled_conns:
        conn.close()

    latencies = {mode: [] for mode in MODES}
    errors, client_cpu = [], 0.0
    for merged, errs, cpu in collected:
        for mode in MODES:
            latencies[mode].extend(merged[mode])
        errors.extend(errs)
        client_cpu += cpu
    everything = [x for mode in MODES for x in latencies[mode]]

    def summary(values):
        return {"requests": len(values), "per_second": round(len(values) / elapsed, 1),
                "p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2),
                "max_ms": round(max(values), 2) if values else float("nan")}

    return {
        "phase": name, "seconds": round(elapsed, 1), "clients": args.clients, "processes": len(workers),
        "idle_connections": idle, "stalled_connections": stalled,
        "idle_still_open": idle_open, "stalled_still_open": stalled_open,
        "overall": summary(everything), "modes": {mode: summary(latencies[mode]) for mode in MODES},
        "errors": len(errors), "error_samples": sorted(set(errors))[:10],
        "writer_operations": dict(writer.counts),
        "ragd_rss_mb_connected": round(rss_start, 1), "ragd_rss_mb_before": round(rss_before, 1), "ragd_rss_mb_after": round(rss_after, 1),
        "ragd_cpu_s": round(cpu_used, 1), "client_cpu_s": round(client_cpu, 1),
        "cores": os.cpu_count(),
        # The machine's 1-minute load average (other work on the machine shows here), before and after the phase.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def print_phase(result):
    print(f"\n{result['phase']}: {result['clients']} clients in {result['processes']} processes, {result['seconds']} s"
          + (f", plus {result['idle_connections']} idle ({result['idle_still_open']} still open at the end)"
             f" and {result['stalled_connections']} stalled ({result['stalled_still_open']} still open)"
             if result['idle_connections'] or result['stalled_connections'] else ""))
    print(f"  {'mode':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for mode, row in list(result["modes"].items()) + [("overall", result["overall"])]:
        print(f"  {mode:<8} {row['requests']:>9} {row['per_second']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8}")
    w = result["writer_operations"]
    print(f"  errors {result['errors']}" + (f" {result['error_samples']}" if result['errors'] else ""))
    print(f"  writer: {w['edit']} edits, {w['create']} creates, {w['delete']} deletes")
    extras = (f" ({result['ragd_rss_mb_connected']} MB before the idle and stalled connections)"
              if result['idle_connections'] or result['stalled_connections'] else "")
    print(f"  ragd RSS {result['ragd_rss_mb_before']} -> {result['ragd_rss_mb_after']} MB{extras}; CPU: ragd {result['ragd_cpu_s']} s,"
          f" clients {result['client_cpu_s']} s of {round(result['seconds'] * result['cores'], 1)} core-seconds;"
          f" load average {result['load_average'][0]} -> {result['load_average'][1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", help="ragd binary (default: build and use .build/release/ragd)")
    parser.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "data", "scifact"),
                        help="BEIR folder: corpus.jsonl written out, queries.jsonl used")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--duration", type=float, default=60, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=64, help="searching connections")
    parser.add_argument("--procs", type=int, default=8, help="client processes the connections are spread over")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections in phase 2")
    parser.add_argument("--stalled", type=int, default=50, help="half-line stalled connections in phase 2")
    parser.add_argument("--writer-rate", type=float, default=10, help="file operations per second")
    parser.add_argument("--p99-factor", type=float, default=2.0)
    parser.add_argument("--work", help="folder for the corpus and the index, kept between runs (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    parser.add_argument("--json-file", help="also write the JSON object to this file")
    args = parser.parse_args()

    ragd = os.path.abspath(args.ragd) if args.ragd else build_release()
    work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="ragd-load-")
    os.makedirs(work, exist_ok=True)
    docs, state, sock = os.path.join(work, "docs"), os.path.join(work, "state"), os.path.join(work, "ragd.sock")
    corpus = load_jsonl(os.path.join(args.corpus, "corpus.jsonl"))
    queries = [q["text"] for q in load_jsonl(os.path.join(args.corpus, "queries.jsonl"))]
    shutil.rmtree(docs, ignore_errors=True)
    write_corpus(corpus, docs)
    config = os.path.join(work, "ragd.toml")
    extra = args.clients + args.idle + args.stalled + 64
    with open(config, "w") as handle:
        handle.write(f"log_level = \"notice\"\n\n[limits]\nmax_connections = {max(256, extra)}\n")
    os.makedirs(state, exist_ok=True)
    log_path = os.path.join(work, "ragd.log")
    proc = start_ragd(ragd, config, docs, state, sock, os.path.abspath(args.model), log_path)
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ragd": ragd, "command": " ".join(sys.argv)}
    try:
        client = wait_for_socket(sock, proc, timeout=60)
        started = time.monotonic()
        status = wait_until_embedded(client, timeout=3600)
        client.close()
        report["indexed"] = {"files": status["files"], "chunks": status["chunks"], "wait_s": round(time.monotonic() - started, 1),
                             "model": status["embeddings"]["model"]}
        if not args.json:
            print(f"ragd {ragd}: {status['files']} files, {status['chunks']} chunks, vectors ready "
                  f"(waited {report['indexed']['wait_s']} s)")
        phase1 = run_phase("phase 1", args, sock, proc, queries, docs, corpus)
        if not args.json:
            print_phase(phase1)
        phase2 = run_phase("phase 2", args, sock, proc, queries, docs, corpus, idle=args.idle, stalled=args.stalled)
        if not args.json:
            print_phase(phase2)
    finally:
        report["graceful_stop_s"] = stop_daemon(proc)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    ratio = phase2["overall"]["p99_ms"] / phase1["overall"]["p99_ms"] if phase1["overall"]["p99_ms"] else float("inf")
    checks = {
        "no_errors": phase1["errors"] == 0 and phase2["errors"] == 0,
        "p99_ratio": round(ratio, 2),
        "p99_within_factor": ratio <= args.p99_factor,
        "extra_connections_kept": phase2["idle_still_open"] == args.idle and phase2["stalled_still_open"] == args.stalled,
    }
    passed = checks["no_errors"] and checks["p99_within_factor"] and checks["extra_connections_kept"]
    report.update({"phases": [phase1, phase2], "checks": checks, "passed": passed})
    if args.json_file:
        with open(args.json_file, "w") as handle:
            json.dump(report, handle, indent=2)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nphase 2 p99 / phase 1 p99 = {checks['p99_ratio']} (at most {args.p99_factor}); "
              f"errors: {phase1['errors']} + {phase2['errors']}; {'PASS' if passed else 'FAIL'}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
