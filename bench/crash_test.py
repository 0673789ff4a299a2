#!/usr/bin/env python3
"""Crash safety of ragd under load: SIGKILL at random moments, restart, compare with a fresh index.

A folder is seeded with documents (from a BEIR corpus, or generated), then, while a writer thread keeps
creating, editing, renaming, moving and deleting files, ragd is started on one state directory and killed with
SIGKILL after a random delay, over and over (mid-scan, mid-transaction, mid-burst). After every restart the
index must open and answer. At the end the writer stops, ragd is started once more and synced, and its
inventory (path, content hash, chunk count for every file) and the answers to a set of queries must equal those
of a fresh ragd indexing the same folder from scratch.

  python3 bench/crash_test.py --ragd .build/release/ragd --kills 100 --seed ../shared/data/scifact/corpus.jsonl

Exits 0 when every kill was survived and the final index equals the fresh one; prints a JSON summary.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "eval"))
from ragd_client import Client, RagdError, start_daemon, stop_daemon, wait_for_socket  # noqa: E402

WORDS = ("lmdb inotify cursor socket journal watchdog chunk heading posting stemmer query vector index "
         "daemon reload signal folder rename burst overflow kernel").split()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def seed(docs, corpus, count, rng):
    if corpus:
        with open(corpus, encoding="utf-8") as handle:
            for n, line in enumerate(handle):
                if n >= count:
                    break
                doc = json.loads(line)
                write(os.path.join(docs, f"seed{n // 200:02d}", f"{n}.md"), f"# {doc.get('title', '')}\n\n{doc.get('text', '')}\n")
    else:
        for n in range(count):
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 400)))
            write(os.path.join(docs, f"seed{n // 200:02d}", f"{n}.md"), f"# Doc {n}\n\n{body}\n")


class Writer(threading.Thread):
    """Keeps changing the tree: creates, edits, editor-style saves, renames, folder moves, deletes."""

    def __init__(self, docs, rng):
        super().__init__(daemon=True)
        self.docs, self.rng, self.stop, self.ops = docs, rng, threading.Event(), 0

    def files(self):
        out = []
        for folder, _, names in os.walk(self.docs):
            out.extend(os.path.join(folder, n) for n in names if n.endswith(".md"))
        return out

    def run(self):
        rng = self.rng
        while not self.stop.is_set():
            files = self.files()
            op = rng.random()
            try:
                if op < 0.3 or not files:
                    path = os.path.join(self.docs, f"w{rng.randint(0, 9)}", f"new{rng.randint(0, 10**9)}.md")
                    write(path, "# New\n\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 300))) + "\n")
                elif op < 0.55:
                    write(rng.choice(files), "# Edited\n\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 300))) + "\n")
                elif op < 0.65:
                    target = rng.choice(files)
                    temp = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".swp")
                    write(temp, "# Saved\n\n" + " ".join(rng.choice(WORDS) for _ in range(50)) + "\n")
                    os.rename(temp, target)
                elif op < 0.8:
                    source = rng.choice(files)
                    os.makedirs(os.path.join(self.docs, f"w{rng.randint(0, 9)}"), exist_ok=True)
                    os.rename(source, os.path.join(self.docs, f"w{rng.randint(0, 9)}", f"mv{rng.randint(0, 10**9)}.md"))
                elif op < 0.83:
                    folder = os.path.join(self.docs, f"w{rng.randint(0, 9)}")
                    target = os.path.join(self.docs, f"w{rng.randint(0, 9)}")
                    if os.path.isdir(folder) and not os.path.exists(target):
                        os.rename(folder, target)
                else:
                    os.remove(rng.choice(files))
                self.ops += 1
            except OSError:
                pass  # raced with another change; that is the point
            if rng.random() < 0.02:
                time.sleep(0.01)


def inventory(client):
    return {f["path"]: (f["sha256"], f["chunks"]) for f in client.call("files")["files"]}


def answers(client, queries):
    """Every matching chunk of each query with its score, in a tie-independent order (chunk ids differ
    between two indexes of the same files, and equal scores are ordered by chunk id)."""
    out = []
    for q in queries:
        hits = client.call("search", query=q, k=1000, mode="bm25", text=False)["results"]
        ranked = sorted((round(h["score"], 4), h["path"], tuple(h["lines"])) for h in hits)
        if len(hits) == 1000:  # cut at the limit: hits tied with the last one may differ; leave them out
            ranked = [r for r in ranked if r[0] > ranked[0][0]]
        out.append(ranked)
    return out


def fresh_index(ragd, docs, work, queries):
    """Inventory and BM25 answers of a new ragd that indexed `docs` from scratch (state in work/fresh-state)."""
    fresh_state, fresh_sock = os.path.join(work, "fresh-state"), os.path.join(work, "fresh.sock")
    os.makedirs(fresh_state)
    proc = start_daemon(ragd, [docs], fresh_state, fresh_sock, (), os.path.join(work, "fresh.log"))
    try:
        wait_for_socket(fresh_sock, proc, timeout=120).close()
        client = Client(fresh_sock, timeout=700)
        client.call("sync", timeout_ms=600000, vectors=False)
        result = inventory(client), answers(client, queries)
        client.close()
    finally:
        stop_daemon(proc)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", help="BEIR corpus.jsonl for the initial documents (default: generated text)")
    parser.add_argument("--seed-count", type=int, default=2000)
    parser.add_argument("--max-delay", type=float, default=1.5, help="longest run before a kill, seconds")
    parser.add_argument("--random-seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.random_seed)
    work = tempfile.mkdtemp(prefix="ragd-crash-")
    docs, state, sock = (os.path.join(work, n) for n in ("docs", "state", "ragd.sock"))
    os.makedirs(state)
    seed(docs, args.seed, args.seed_count, rng)
    ragd = os.path.abspath(args.ragd)
    log = os.path.join(work, "ragd.log")
    writer = Writer(docs, random.Random(args.random_seed + 1))
    writer.start()
    survived, failures = 0, []
    started = time.monotonic()
    try:
        for kill in range(args.kills):
            proc = start_daemon(ragd, [docs], state, sock, (), log)
            try:
                client = wait_for_socket(sock, proc, timeout=60)
                client.call("status")
                client.call("search", query=rng.choice(WORDS), k=5, mode="bm25")
                client.close()
            except (RagdError, OSError) as error:
                failures.append(f"kill {kill}: did not answer after restart: {error}")
                proc.kill()
                proc.wait()
                break
            time.sleep(rng.uniform(0, args.max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            survived += 1
        writer.stop.set()
        writer.join()
        # Final: the survivor's index, synced with the disk, against a fresh index of the same files.
        proc = start_daemon(ragd, [docs], state, sock, (), log)
        client = wait_for_socket(sock, proc, timeout=60)
        client.call("sync", timeout_ms=600000, vectors=False)
        final_inventory = inventory(client)
        queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(50)]
        final_answers = answers(client, queries)
        client.close()
        stop_daemon(proc)
        fresh_inventory, fresh_answers = fresh_index(ragd, docs, work, queries)
        inventory_equal = final_inventory == fresh_inventory
        answers_equal = final_answers == fresh_answers
        if not inventory_equal:
            only_final = sorted(set(final_inventory.items()) - set(fresh_inventory.items()))[:5]
            only_fresh = sorted(set(fresh_inventory.items()) - set(final_inventory.items()))[:5]
            failures.append(f"inventories differ: only after crashes {only_final}, only fresh {only_fresh}")
        if not answers_equal:
            differing = [(q, a, b) for q, a, b in zip(queries, final_answers, fresh_answers) if a != b]
            q, a, b = differing[0]
            failures.append(f"search answers differ from a fresh index for {len(differing)} of {len(queries)} queries; "
                            f"{q!r}: only after crashes {sorted(set(a) - set(b))[:3]}, only fresh {sorted(set(b) - set(a))[:3]}")
        summary = {"kills": args.kills, "survived": survived, "writer_operations": writer.ops,
                   "files": len(fresh_inventory), "chunks": sum(c for _, c in fresh_inventory.values()),
                   "inventory_equal": inventory_equal, "answers_equal": answers_equal,
                   "seconds": round(time.monotonic() - started, 1), "failures": failures}
        print(json.dumps(summary, indent=2))
        code = 0 if not failures and survived == args.kills else 1
    finally:
        writer.stop.set()
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder kept: {work}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
