#!/usr/bin/env python3
"""Cold-start indexing time, query latency and peak RSS of a real ragd.

  python3 bench/index_bench.py --ragd .build/release/ragd --docs /usr/share/doc/python3.11/html/_sources
  python3 bench/index_bench.py --ragd .build/release/ragd --beir ../shared/data/scifact

With --beir, the corpus is written out as Markdown files the way ../shared/eval/beir_eval.py does and the
data set's queries are used; with --docs, a folder is indexed in place and queries are taken from --queries
(one per line) or from the data set given by --beir-queries. Prints one JSON object.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "eval"))
from ragd_client import percentile, start_daemon, stop_daemon, wait_for_socket, wait_until_indexed  # noqa: E402
from beir_eval import load_jsonl, write_corpus  # noqa: E402


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--docs", help="folder to index in place")
    parser.add_argument("--beir", help="BEIR folder: corpus written out, its queries used")
    parser.add_argument("--beir-queries", help="BEIR folder whose queries.jsonl to use with --docs")
    parser.add_argument("--mode", default="bm25")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="ragd-bench-")
    try:
        if args.beir:
            docs = os.path.join(work, "docs")
            write_corpus(load_jsonl(os.path.join(args.beir, "corpus.jsonl")), docs)
            queries = [q["text"] for q in load_jsonl(os.path.join(args.beir, "queries.jsonl"))]
        else:
            docs = os.path.realpath(args.docs)
            source = args.beir_queries
            queries = [q["text"] for q in load_jsonl(os.path.join(source, "queries.jsonl"))] if source else \
                ["how to read a file", "socket timeout", "sort a dictionary by value", "asyncio event loop",
                 "regular expression groups", "datetime timezone", "subprocess output", "json dump indent"]
        files = sum(len(names) for _, _, names in os.walk(docs))
        state, sock = os.path.join(work, "state"), os.path.join(work, "ragd.sock")
        os.makedirs(state)
        log = os.path.join(work, "ragd.log")
        started = time.monotonic()
        proc = start_daemon(os.path.abspath(args.ragd), [docs], state, sock, (), log)
        try:
            client = wait_for_socket(sock, proc, timeout=60)
            socket_s = time.monotonic() - started
            status = wait_until_indexed(client, timeout=3600, poll=0.02)
            index_s = time.monotonic() - started
            latencies, server_ms = [], []
            for _ in range(args.rounds):
                for query in queries:
                    t = time.perf_counter()
                    reply = client.call("search", query=query, k=args.k, mode=args.mode)
                    latencies.append((time.perf_counter() - t) * 1000)
                    server_ms.append(reply["took_ms"])
            rss = peak_rss_mb(proc.pid)
            client.close()
        finally:
            stop_s = stop_daemon(proc)
        index_bytes = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(state) for n in ns)
        data_bytes = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(docs) for n in ns)
        print(json.dumps({
            "docs": args.docs or args.beir, "files_on_disk": files, "files": status["files"], "chunks": status["chunks"],
            "socket_ready_s": round(socket_s, 3), "indexed_s": round(index_s, 3),
            "queries": len(latencies), "mode": args.mode, "k": args.k,
            "client_ms_p50": round(percentile(latencies, 50), 3), "client_ms_p99": round(percentile(latencies, 99), 3),
            "server_ms_p50": round(percentile(server_ms, 50), 3), "server_ms_p99": round(percentile(server_ms, 99), 3),
            "peak_rss_mb": round(rss, 1), "text_mb": round(data_bytes / 2**20, 2),
            "state_dir_mb": round(index_bytes / 2**20, 2), "graceful_stop_s": stop_s,
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
