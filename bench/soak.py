#!/usr/bin/env python3
"""Soak: ragd under steady random edits, moves and deletes plus queries for a long time.

A folder is seeded (from a BEIR corpus, or generated text); ragd indexes it with the embedding model; then for
--minutes a writer changes the tree at a steady rate (creates, edits, editor-style saves, renames, folder moves,
deletes, keeping the file count near the seed count) while query threads search in every mode. ragd's RSS is
sampled throughout. At the end the writer stops, ragd syncs (vectors included), and its inventory (path, content
hash, chunk count of every file) and BM25 answers must equal those of a fresh ragd indexing the same folder; RSS
must be flat over the last --flat-minutes (growth at most max(--rss-slack-mb, 5 %)).

  python3 bench/soak.py --ragd .build/release/ragd --minutes 30 --seed ../shared/data/scifact/corpus.jsonl

Exits 0 when every check passes; prints a JSON summary (and the RSS samples with --samples).
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "eval"))
from crash_test import WORDS, answers, fresh_index, inventory, seed, write  # noqa: E402
from ragd_client import Client, RagdError, start_daemon, stop_daemon, wait_for_socket  # noqa: E402


def rss_mb(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in MiB: VmRSS (all), RssAnon (heap and stacks) or RssFile (mapped
    files, mostly LMDB's data file: page cache that the kernel can reclaim)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def body(rng, low=5, high=300):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


class SteadyWriter(threading.Thread):
    """Changes the tree at `rate` operations per second, keeping the file count near `target`."""

    def __init__(self, docs, rng, rate, target):
        super().__init__(daemon=True)
        self.docs, self.rng, self.rate, self.target = docs, rng, rate, target
        self.stop = threading.Event()
        self.ops = {"create": 0, "edit": 0, "save": 0, "move": 0, "folder_move": 0, "delete": 0, "raced": 0}
        self.files = []
        for folder, _, names in os.walk(docs):
            self.files.extend(os.path.join(folder, n) for n in names if n.endswith(".md"))

    def run(self):
        rng = self.rng
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            grow = len(self.files) < self.target
            op = rng.random()
            try:
                if op < 0.15 and (grow or not self.files):
                    path = os.path.join(self.docs, f"w{rng.randint(0, 9)}", f"new{rng.randint(0, 10**9)}.md")
                    write(path, "# New\n\n" + body(rng) + "\n")
                    self.files.append(path)
                    self.ops["create"] += 1
                elif op < 0.3 and not grow and self.files:
                    path = self.files.pop(rng.randrange(len(self.files)))
                    os.remove(path)
                    self.ops["delete"] += 1
                elif op < 0.6 and self.files:
                    write(rng.choice(self.files), "# Edited\n\n" + body(rng) + "\n")
                    self.ops["edit"] += 1
                elif op < 0.75 and self.files:
                    target = rng.choice(self.files)
                    temp = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".swp")
                    write(temp, "# Saved\n\n" + body(rng, 50, 50) + "\n")
                    os.rename(temp, target)
                    self.ops["save"] += 1
                elif op < 0.97 and self.files:
                    n = rng.randrange(len(self.files))
                    folder = os.path.join(self.docs, f"w{rng.randint(0, 9)}")
                    os.makedirs(folder, exist_ok=True)
                    destination = os.path.join(folder, f"mv{rng.randint(0, 10**9)}.md")
                    os.rename(self.files[n], destination)
                    self.files[n] = destination
                    self.ops["move"] += 1
                else:
                    folder = os.path.join(self.docs, f"w{rng.randint(0, 9)}")
                    target = os.path.join(self.docs, f"w{rng.randint(10, 19)}")
                    if os.path.isdir(folder) and not os.path.exists(target):
                        os.rename(folder, target)
                        self.files = [target + f[len(folder):] if f.startswith(folder + "/") else f for f in self.files]
                        self.ops["folder_move"] += 1
            except OSError:
                self.ops["raced"] += 1


class Querier(threading.Thread):
    """Searches in every mode at `rate` queries per second; counts errors and keeps latencies."""

    def __init__(self, sock, rng, rate):
        super().__init__(daemon=True)
        self.sock, self.rng, self.rate = sock, rng, rate
        self.stop = threading.Event()
        self.latencies, self.errors = [], []

    def run(self):
        client = Client(self.sock, timeout=60)
        modes = ["bm25", "dense", "hybrid"]
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            query = " ".join(self.rng.sample(WORDS, self.rng.randint(1, 4)))
            started = time.monotonic()
            try:
                client.call("search", query=query, k=10, mode=modes[n % 3])
                self.latencies.append((time.monotonic() - started) * 1000)
            except (RagdError, OSError) as error:
                self.errors.append(str(error))
                client = Client(self.sock, timeout=60)
            n += 1
        client.close()


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--flat-minutes", type=float, default=20, help="RSS must be flat over this last part of the run")
    parser.add_argument("--rss-slack-mb", type=float, default=16)
    parser.add_argument("--seed", help="BEIR corpus.jsonl for the initial documents (default: generated text)")
    parser.add_argument("--seed-count", type=int, default=2000)
    parser.add_argument("--write-rate", type=float, default=20, help="writer operations per second")
    parser.add_argument("--query-rate", type=float, default=20, help="queries per second (over all query threads)")
    parser.add_argument("--query-threads", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--random-seed", type=int, default=7)
    parser.add_argument("--samples", action="store_true", help="include every RSS sample in the summary")
    args = parser.parse_args()

    rng = random.Random(args.random_seed)
    work = tempfile.mkdtemp(prefix="ragd-soak-")
    docs, state, sock = (os.path.join(work, n) for n in ("docs", "state", "ragd.sock"))
    os.makedirs(state)
    seed(docs, args.seed, args.seed_count, rng)
    ragd = os.path.abspath(args.ragd)
    failures = []
    code = 1
    proc = start_daemon(ragd, [docs], state, sock, (), os.path.join(work, "ragd.log"))
    try:
        wait_for_socket(sock, proc, timeout=120).close()
        client = Client(sock, timeout=700)
        index_started = time.monotonic()
        client.call("sync", timeout_ms=600000, vectors=True)
        initial = {"seconds": round(time.monotonic() - index_started, 1), "rss_mb": round(rss_mb(proc.pid), 1),
                   "status": {k: client.call("status")[k] for k in ("files", "chunks")}}
        writer = SteadyWriter(docs, random.Random(args.random_seed + 1), args.write_rate, args.seed_count)
        queriers = [Querier(sock, random.Random(args.random_seed + 2 + n), args.query_rate / args.query_threads)
                    for n in range(args.query_threads)]
        writer.start()
        for q in queriers:
            q.start()
        samples = []
        started = time.monotonic()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            if proc.poll() is not None:
                failures.append(f"ragd exited with {proc.returncode} during the soak")
                break
            status = client.call("status")
            samples.append({"t_min": round((time.monotonic() - started) / 60, 2), "rss_mb": round(rss_mb(proc.pid), 1),
                            "anon_mb": round(rss_mb(proc.pid, "RssAnon"), 1), "file_mb": round(rss_mb(proc.pid, "RssFile"), 1),
                            "files": status["files"], "chunks": status["chunks"], "pending": status["pending"]})
            time.sleep(min(args.sample_seconds, max(0, end - time.monotonic())))
        writer.stop.set()
        for q in queriers:
            q.stop.set()
        writer.join()
        for q in queriers:
            q.join()
        latencies = [x for q in queriers for x in q.latencies]
        errors = [e for q in queriers for e in q.errors]
        if errors:
            failures.append(f"{len(errors)} query errors, first: {errors[0]}")

        # RSS over the last flat-minutes: first sample of the window against the rest.
        window = [s for s in samples if s["t_min"] >= args.minutes - args.flat_minutes]
        rss = {"start_of_window_mb": window[0]["rss_mb"] if window else None,
               "max_in_window_mb": max(s["rss_mb"] for s in window) if window else None,
               "end_mb": samples[-1]["rss_mb"] if samples else None}
        if window:
            growth = rss["max_in_window_mb"] - rss["start_of_window_mb"]
            rss["growth_in_window_mb"] = round(growth, 1)
            allowed = max(args.rss_slack_mb, 0.05 * rss["start_of_window_mb"])
            rss["allowed_growth_mb"] = round(allowed, 1)
            if growth > allowed:
                failures.append(f"RSS grew {growth:.1f} MB over the last {args.flat_minutes} minutes (allowed {allowed:.1f})")

        sync_started = time.monotonic()
        client.call("sync", timeout_ms=600000, vectors=True)
        sync_seconds = round(time.monotonic() - sync_started, 1)
        final_status = client.call("status")
        final_inventory = inventory(client)
        queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(50)]
        final_answers = answers(client, queries)
        client.close()
        stop_daemon(proc)

        fresh_inventory, fresh_answers = fresh_index(ragd, docs, work, queries)
        if final_inventory != fresh_inventory:
            only_final = sorted(set(final_inventory.items()) - set(fresh_inventory.items()))[:5]
            only_fresh = sorted(set(fresh_inventory.items()) - set(final_inventory.items()))[:5]
            failures.append(f"inventories differ: only after the soak {only_final}, only fresh {only_fresh}")
        if final_answers != fresh_answers:
            failures.append("BM25 answers differ from a fresh index")
        embedded = final_status["embeddings"]["embedded"]
        if final_status["pending"] != 0 or embedded < final_status["chunks"]:
            failures.append(f"not caught up after sync: pending {final_status['pending']}, {embedded}/{final_status['chunks']} embedded")

        summary = {
            "minutes": args.minutes, "initial_index": initial, "writer_operations": writer.ops,
            "queries": len(latencies), "query_errors": len(errors),
            "query_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": round(max(latencies), 2) if latencies else None},
            "rss": rss, "final_sync_seconds": sync_seconds,
            "files": len(fresh_inventory), "chunks": sum(c for _, c in fresh_inventory.values()),
            "inventory_equal": final_inventory == fresh_inventory, "answers_equal": final_answers == fresh_answers,
            "failures": failures,
        }
        if args.samples:
            summary["samples"] = samples
        print(json.dumps(summary, indent=2))
        code = 0 if not failures else 1
    finally:
        if proc.poll() is None:
            proc.kill()
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder kept: {work}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
