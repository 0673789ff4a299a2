#!/usr/bin/env python3
"""Chooses ragd's default hybrid fusion on a BEIR data set's TRAIN qrels (never the test qrels).

Indexes the corpus once in a reusable work folder (vectors are cached there, so re-runs are quick), then asks a
real ragd for hybrid results of every train query under each candidate fusion (reciprocal rank with several
constants, weighted sums with several dense weights) and prints nDCG@10 for each, best first.

  python3 bench/tune_fusion.py --ragd .build/release/ragd --data ../shared/data/scifact
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "eval"))
from ragd_client import start_daemon, stop_daemon, wait_for_socket, wait_until_indexed  # noqa: E402
from beir_eval import load_jsonl, load_qrels, ndcg_at, write_corpus  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--work", default="/tmp/ragd-tune")
    args = parser.parse_args()
    assert args.split != "test", "tune on train qrels only"

    qrels = load_qrels(os.path.join(args.data, "qrels", f"{args.split}.tsv"))
    queries = [q for q in load_jsonl(os.path.join(args.data, "queries.jsonl")) if q["_id"] in qrels]
    name = os.path.basename(os.path.normpath(args.data))
    docs = os.path.join(args.work, name, "docs")
    state = os.path.join(args.work, name, "state")
    sock = os.path.join(args.work, name, "ragd.sock")
    os.makedirs(state, exist_ok=True)
    corpus = load_jsonl(os.path.join(args.data, "corpus.jsonl"))
    path_to_id = write_corpus(corpus, docs)
    proc = start_daemon(os.path.abspath(args.ragd), [docs], state, sock, (), os.path.join(args.work, name, "ragd.log"))
    try:
        client = wait_for_socket(sock, proc, timeout=120)
        wait_until_indexed(client, timeout=3600, poll=0.5)
        candidates = [("rrf", {"fusion": "rrf"})]
        candidates += [(f"weighted w={w}", {"fusion": "weighted", "dense_weight": w}) for w in
                       (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
        candidates += [("bm25 only", {"mode": "bm25"}), ("dense only", {"mode": "dense"})]
        rows = []
        for label, extra in candidates:
            scores = []
            for query in queries:
                params = {"query": query["text"], "k": 10, "mode": "hybrid", "text": False}
                params.update(extra)
                reply = client.call("search", **params)
                ranked, seen = [], set()
                for hit in reply["results"]:
                    doc = path_to_id.get(os.path.realpath(hit["path"]))
                    if doc is not None and doc not in seen:
                        seen.add(doc)
                        ranked.append(doc)
                scores.append(ndcg_at(ranked, qrels[query["_id"]], 10))
            rows.append((sum(scores) / len(scores), label))
        client.close()
    finally:
        stop_daemon(proc)
    print(f"{name} {args.split} split, {len(queries)} queries: nDCG@10 by fusion")
    for score, label in sorted(rows, reverse=True):
        print(f"  {label:16s} {score:.4f}")


if __name__ == "__main__":
    main()
