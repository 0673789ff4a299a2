#!/usr/bin/env python3
"""ragd beside other engines on the same chunks and queries (issue 7): BM25 against tantivy and bm25s, dense
search against faiss (IndexFlatIP, exact) and hnswlib (HNSW), all from PyPI, in one run.

What it does, in order (one heavy job at a time):
  1. ragd's figures: `dense-bench --index DIR --json` (in process, k = 10, encoder excluded; its normal output
     is shown as it runs), with --warmup. The BM25 and dense top ten of every query come with it.
  2. The data: `dense-bench --index DIR --export EXPORT` (chunks.jsonl, ids.u32, vectors.f32, queries.jsonl,
     queries.f32), reused when EXPORT/export.json matches the index's data.mdb (size and modification time).
  3. ragd's build time (unless --skip-ragd-build): dense-bench builds the same index again (it is deterministic)
     in a temporary folder next to EXPORT, from the SciFact corpus; the folder is removed afterwards.
  4. The peers, pinned (PINS below), in a venv at bench/.venv-peers (created and filled with pip on first use).
     Each peer runs in its own process (so its memory figures are its own): it loads the exported data, builds
     its index (timed), frees its inputs, then runs the same queries one at a time, k = 10, timing each call.
     Every engine first runs the queries once untimed (ragd: each mode's; --no-warmup: none), so that each is
     timed with the pages it reads in the page cache, however long ago it was built or last read.
       tantivy  on-disk index (temporary, next to EXPORT), one text field (heading trail + newline + text, as
                ragd's BM25 indexes it) with tokenizer simple > remove_long(40) > lowercase > stopword(english)
                > stemmer(english), frequencies without positions; BM25 with tantivy's constants (k1 1.2,
                b 0.75). Queries: punctuation replaced by spaces, lower-cased (no query syntax), parsed as a
                disjunction, search(count=False); timed with the fetch of the ten stored documents (id and text,
                as ragd returns the chunk text), and once more without the fetch.
       bm25s    the same text, bm25s.tokenize with stopwords "en" and PyStemmer's English stemmer; BM25 "lucene"
                with ragd's constants (k1 0.9, b 0.4); numpy backend; each query tokenized and retrieved in the
                timed call (n_threads 1).
       faiss    IndexFlatIP over the float32 vectors; timed with --threads OpenMP threads and with 1. Its batch
                search over all queries is the exact float32 top ten that recall@10 is measured against.
       hnswlib  space "ip" (the vectors are unit length, so cosine), M 16, ef_construction 200, built on
                --threads threads; queried on one thread at each ef of --ef.
  5. A table: ragd beside each peer, ratios peer / ragd (above 1: ragd is faster), recall@10, build times, memory;
     the whole as JSON (--out).

The index folder is opened through ragd's Store: an index this dense-bench has opened before is not written to
(data.mdb keeps its checksum; only LMDB's lock.mdb changes). hnswlib has no wheel for this python on PyPI: pip
compiles it on install, for this CPU.

Usage (from the repository root; release dense-bench):
  swift build -c release --product dense-bench
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/peers.py --index /tmp/ix100k --export /tmp/ix100k-export
Options:
  --queries N (1000), --threads N (2: builds, and faiss's search besides 1), --ef 10,20,40,80,160,320,640,1280,2560,
  --peers tantivy,bm25s,faiss,hnswlib, --no-warmup, --skip-install (use the venv as it is), --ragd-json FILE (reuse a
  dense-bench --json result, such as EXPORT/ragd.json from an earlier run, instead of step 1), --skip-ragd-build,
  --corpus / --queries-file (SciFact, for step 3),
  --hnsw-cache (keep the built HNSW graph in EXPORT and load it on later runs; its build time is the one recorded
  when it was built), --out FILE (EXPORT/peers.json).
The script itself needs only the standard library; the peers run under the venv's python (`--worker`).
"""

import argparse
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv-peers")
PINS = {"tantivy": "0.27.0", "bm25s": "0.3.16", "PyStemmer": "3.1.0", "faiss-cpu": "1.15.1", "hnswlib": "0.8.0",
        "numpy": "2.4.6"}
ALL_PEERS = ["tantivy", "bm25s", "faiss", "hnswlib"]
K = 10


# MARK: helpers shared by the driver and the workers

def percentile(values, p):
    """The same nearest-rank percentile as dense-bench (index rounded from p/100 * (n - 1))."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(times, clock=None):
    """Latency figures of one pass; with `clock` (from `cpu_clock()` before the pass), also the process's CPU time
    over the pass's wall time (about 1 for one busy thread, 2 for two)."""
    figures = {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99), "max_ms": max(times),
               "mean_ms": sum(times) / len(times), "queries": len(times)}
    if clock:
        cpu, wall = cpu_clock()
        figures["cpu_per_wall"] = (cpu - clock[0]) / max(wall - clock[1], 1e-9)
    return figures


def cpu_clock():
    return time.process_time(), time.perf_counter()


def status_mb():
    """RSS, its anonymous and file-backed parts, and the peak, in MB (from /proc/self/status)."""
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                fields[name] = int(rest.split()[0]) / 1024
    return {"rss_mb": fields.get("VmRSS", 0), "anonymous_mb": fields.get("RssAnon", 0),
            "file_mb": fields.get("RssFile", 0) + fields.get("RssShmem", 0), "peak_mb": fields.get("VmHWM", 0)}


def load_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(path) for n in names)


# MARK: workers (run under the venv's python, one process per peer)

def load_queries(export, count):
    import numpy as np
    texts = [q["text"] for q in load_jsonl(os.path.join(export, "queries.jsonl"))][:count]
    vectors = np.fromfile(os.path.join(export, "queries.f32"), dtype="<f4")
    with open(os.path.join(export, "export.json")) as handle:
        dims = json.load(handle)["dimensions"]
    return texts, vectors.reshape(-1, dims)[:len(texts)].copy()


class Documents:
    """The chunks as BM25 peers index them: the heading trail and the text, joined by a newline, as ragd's BM25
    analyzes them. Held as one UTF-8 buffer and offsets (not a million Python strings), so that freeing it gives
    the memory back and the RSS measured afterwards is the engine's."""

    def __init__(self, export):
        from array import array
        self.ids, self.offsets, self.buffer = array("q"), array("q", [0]), bytearray()
        with open(os.path.join(export, "chunks.jsonl"), encoding="utf-8") as handle:
            for line in handle:
                chunk = json.loads(line)
                self.ids.append(chunk["id"])
                text = chunk["heading"] + "\n" + chunk["text"] if chunk["heading"] else chunk["text"]
                self.buffer += text.encode("utf-8")
                self.offsets.append(len(self.buffer))

    def __len__(self):
        return len(self.ids)

    def __iter__(self):
        """(chunk id, text) in order."""
        buffer, offsets = self.buffer, self.offsets
        for n, chunk_id in enumerate(self.ids):
            yield chunk_id, buffer[offsets[n]:offsets[n + 1]].decode("utf-8")


def worker_tantivy(args, result):
    import tantivy
    texts_q, _ = load_queries(args.export, args.queries)
    result["memory"] = {"baseline": status_mb()}
    documents = Documents(args.export)
    result["memory"]["after_load"] = status_mb()
    folder = tempfile.mkdtemp(prefix="peers-tantivy-", dir=args.scratch)
    try:
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("id", stored=True)
        builder.add_text_field("body", stored=True, tokenizer_name="en_stem_stop", index_option="freq")
        schema = builder.build()
        index = tantivy.Index(schema, path=folder)
        analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
                    .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stopword("english"))
                    .filter(tantivy.Filter.stemmer("english")).build())
        index.register_tokenizer("en_stem_stop", analyzer)
        started = time.perf_counter()
        writer = index.writer(heap_size=256_000_000 * args.threads, num_threads=args.threads)
        for chunk_id, text in documents:
            writer.add_document(tantivy.Document(id=chunk_id, body=text))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        result["build_s"] = time.perf_counter() - started
        del documents, writer
        gc.collect()
        searcher = index.searcher()
        result["index"] = {"documents": searcher.num_docs, "segments": searcher.num_segments,
                           "disk_mb": folder_bytes(folder) / 2**20}
        result["memory"]["after_build"] = status_mb()
        # Letters and digits only (tantivy's simple tokenizer splits at anything else), so no query syntax.
        clean = re.compile(r"[\W_]+")
        lenient = 0

        def parse(text):
            nonlocal lenient
            try:
                return index.parse_query(clean.sub(" ", text).lower(), ["body"])
            except ValueError:  # a word the tokenizer still splits in two would be a phrase (no positions)
                lenient += 1
                return index.parse_query_lenient(clean.sub(" ", text).lower(), ["body"])[0]

        if args.warmup:
            for text in texts_q:
                for _, address in searcher.search(parse(text), K, count=False).hits:
                    _ = searcher.doc(address)["body"][0]
        runs = {}
        for name, fetch in (("search + fetch", True), ("search only", False)):
            times, top, clock = [], [], cpu_clock()
            for text in texts_q:
                started = time.perf_counter()
                query = parse(text)
                hits = searcher.search(query, K, count=False).hits
                if fetch:
                    found = []
                    for _, address in hits:
                        document = searcher.doc(address)
                        found.append(document["id"][0])
                        _ = document["body"][0]
                times.append((time.perf_counter() - started) * 1000)
                if fetch:
                    top.append(found)
            runs[name] = summary(times, clock)
            if fetch:
                result["top10"] = top
        result["runs"] = runs
        result["lenient_queries"] = lenient
        result["memory"]["after_queries"] = status_mb()
        result["threads"] = {"build": args.threads, "query": 1}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def worker_bm25s(args, result):
    import bm25s
    import numpy as np
    import Stemmer
    texts_q, _ = load_queries(args.export, args.queries)
    result["memory"] = {"baseline": status_mb()}
    documents = Documents(args.export)
    ids = np.asarray(documents.ids, dtype=np.int64)
    result["memory"]["after_load"] = status_mb()
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    tokens = bm25s.tokenize([text for _, text in documents], stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(tokens, show_progress=False)
    result["build_s"] = time.perf_counter() - started
    result["index"] = {"documents": len(documents), "vocabulary": len(retriever.vocab_dict)}
    del documents, tokens
    gc.collect()
    result["memory"]["after_build"] = status_mb()
    for text in texts_q if args.warmup else []:
        query = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
        retriever.retrieve(query, k=K, show_progress=False, n_threads=1)
    times, top, clock = [], [], cpu_clock()
    for text in texts_q:
        started = time.perf_counter()
        query = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, show_progress=False)
        documents, _ = retriever.retrieve(query, k=K, show_progress=False, n_threads=1)
        found = ids[documents[0]].tolist()
        times.append((time.perf_counter() - started) * 1000)
        top.append(found)
    result["runs"] = {"retrieve": summary(times, clock)}
    result["top10"] = top
    result["memory"]["after_queries"] = status_mb()
    result["threads"] = {"build": 1, "query": 1}


def load_vectors(export):
    import numpy as np
    with open(os.path.join(export, "export.json")) as handle:
        dims = json.load(handle)["dimensions"]
    ids = np.fromfile(os.path.join(export, "ids.u32"), dtype="<u4").astype(np.int64)
    vectors = np.fromfile(os.path.join(export, "vectors.f32"), dtype="<f4").reshape(-1, dims)
    return ids, vectors


def worker_faiss(args, result):
    import faiss
    import numpy as np
    _, queries = load_queries(args.export, args.queries)
    result["memory"] = {"baseline": status_mb()}
    ids, vectors = load_vectors(args.export)
    result["memory"]["after_load"] = status_mb()
    faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    result["build_s"] = time.perf_counter() - started
    del vectors
    gc.collect()
    result["memory"]["after_build"] = status_mb()
    for n in range(len(queries)) if args.warmup else []:
        index.search(queries[n:n + 1], K)
    runs, tops = {}, {}
    for threads in sorted({args.threads, 1}, reverse=True):
        faiss.omp_set_num_threads(threads)
        times, top, clock = [], [], cpu_clock()
        for n in range(len(queries)):
            query = queries[n:n + 1]
            started = time.perf_counter()
            _, found = index.search(query, K)
            times.append((time.perf_counter() - started) * 1000)
            top.append(ids[found[0]].tolist())
        runs[f"{threads} thread" + ("s" if threads > 1 else "")] = summary(times, clock)
        tops[threads] = top
    result["runs"] = runs
    result["top10"] = tops[args.threads]
    # The exact float32 top ten: one batch search over all queries (after the timed passes, so that BLAS's
    # threads, which this starts, do not run beside them).
    _, positions = index.search(queries, K)
    result["reference_top10"] = ids[positions].tolist()
    result["memory"]["after_queries"] = status_mb()
    result["threads"] = {"build": args.threads, "query": sorted({args.threads, 1}, reverse=True)}
    result["compile_options"] = faiss.get_compile_options()


def worker_hnswlib(args, result):
    import hnswlib
    import numpy as np
    _, queries = load_queries(args.export, args.queries)
    result["memory"] = {"baseline": status_mb()}
    cache = os.path.join(args.export, f"hnsw-M{args.hnsw_m}-efc{args.hnsw_efc}.bin")
    dims = queries.shape[1]
    index = hnswlib.Index(space="ip", dim=dims)
    if args.hnsw_cache and os.path.exists(cache) and os.path.exists(cache + ".json"):
        started = time.perf_counter()
        index.load_index(cache)
        with open(cache + ".json") as handle:
            saved = json.load(handle)
        result["build_s"] = saved["build_s"]
        result["build_threads"] = saved.get("threads")
        result["loaded_from_cache_s"] = time.perf_counter() - started
        result["memory"]["after_load"] = result["memory"]["baseline"]
    else:
        ids, vectors = load_vectors(args.export)
        result["memory"]["after_load"] = status_mb()
        started = time.perf_counter()
        index.init_index(max_elements=len(ids), ef_construction=args.hnsw_efc, M=args.hnsw_m, random_seed=100)
        index.add_items(vectors, ids, num_threads=args.threads)
        result["build_s"] = time.perf_counter() - started
        result["build_threads"] = args.threads
        del vectors, ids
        gc.collect()
        if args.hnsw_cache:
            index.save_index(cache)
            with open(cache + ".json", "w") as handle:
                json.dump({"build_s": result["build_s"], "threads": args.threads}, handle)
    result["memory"]["after_build"] = status_mb()
    result["index"] = {"M": args.hnsw_m, "ef_construction": args.hnsw_efc, "elements": index.element_count}
    index.set_ef(max(args.ef[0], K))
    for n in range(len(queries)) if args.warmup else []:
        index.knn_query(queries[n:n + 1], k=K, num_threads=1)
    runs, tops = {}, {}
    for ef in args.ef:
        index.set_ef(max(ef, K))
        times, top, clock = [], [], cpu_clock()
        for n in range(len(queries)):
            query = queries[n:n + 1]
            started = time.perf_counter()
            labels, _ = index.knn_query(query, k=K, num_threads=1)
            times.append((time.perf_counter() - started) * 1000)
            top.append(labels[0].astype(np.int64).tolist())
        runs[f"ef={ef}"] = summary(times, clock)
        tops[f"ef={ef}"] = top
    result["runs"] = runs
    result["top10_by_run"] = tops
    result["memory"]["after_queries"] = status_mb()
    result["threads"] = {"build": result.get("build_threads"), "query": 1}


def run_worker(args):
    result = {"peer": args.worker, "load_average_start": load_average()}
    workers = {"tantivy": worker_tantivy, "bm25s": worker_bm25s, "faiss": worker_faiss, "hnswlib": worker_hnswlib}
    workers[args.worker](args, result)
    result["load_average_end"] = load_average()
    with open(args.result, "w") as handle:
        json.dump(result, handle)


# MARK: driver

def venv_python():
    return os.path.join(VENV, "bin", "python")


def peer_versions():
    code = ("import importlib.metadata as m, json, sys; "
            f"print(json.dumps({{'python': sys.version.split()[0], **{{n: m.version(n) for n in {list(PINS)!r}}}}}))")
    output = subprocess.run([venv_python(), "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def ensure_venv(skip_install):
    if not os.path.exists(venv_python()):
        if skip_install:
            sys.exit(f"no venv at {VENV} (drop --skip-install to create it)")
        print(f"creating {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if not skip_install:
        try:
            installed = peer_versions()
        except subprocess.CalledProcessError:
            installed = {}
        if any(installed.get(name) != version for name, version in PINS.items()):
            print("installing " + " ".join(f"{n}=={v}" for n, v in PINS.items()), flush=True)
            subprocess.run([venv_python(), "-m", "pip", "install", "-q"] + [f"{n}=={v}" for n, v in PINS.items()],
                           check=True)
    return peer_versions()


def machine():
    info = {"uname": " ".join(platform.uname()), "cores": os.cpu_count()}
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        info["memory_gib"] = round(int(handle.readline().split()[1]) / 2**20, 1)
    try:
        info["swift"] = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                                        text=True).stdout.strip()
    except OSError:
        pass
    info["openblas_env"] = {name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ}
    return info


def load_average():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def export_is_current(index, export, queries):
    try:
        with open(os.path.join(export, "export.json")) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return False
    data = os.stat(os.path.join(index, "data.mdb"))
    names = ["chunks.jsonl", "ids.u32", "vectors.f32", "queries.jsonl", "queries.f32"]
    return (manifest.get("data_mdb_bytes") == data.st_size and abs(manifest.get("data_mdb_mtime", 0) - data.st_mtime) < 1e-3
            and manifest.get("queries", 0) >= queries and all(os.path.exists(os.path.join(export, n)) for n in names))


def ragd_build_seconds(args, chunks, scratch):
    """Times dense-bench building the same index again (deterministic) in a temporary folder."""
    folder = tempfile.mkdtemp(prefix="peers-ragd-", dir=scratch)
    try:
        command = [args.dense_bench, "--chunks", str(chunks), "--index", folder + "/ix", "--build-only",
                   "--corpus", args.corpus, "--queries-file", args.queries_file]
        print("$ " + " ".join(command), flush=True)
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        match = re.search(r"built (\d+) chunks in (\d+) files with vectors in ([0-9.]+) s", output)
        if not match:
            raise RuntimeError("no 'built' line in dense-bench's output:\n" + output)
        if int(match.group(1)) != chunks:
            raise RuntimeError(f"dense-bench built {match.group(1)} chunks, the index has {chunks}")
        return {"build_s": float(match.group(3)), "disk_mb": os.path.getsize(folder + "/ix/data.mdb") / 2**20,
                "threads": "analysis on all cores, one writer"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def overlap(a, b):
    """Mean share of the first list's top ten that is in the second's."""
    pairs = list(zip(a, b))
    return sum(len(set(x[:K]) & set(y[:K])) for x, y in pairs) / (K * len(pairs)) if pairs else float("nan")


def recall(found, reference):
    return overlap(reference, found)


def table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def ms(x):
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def ratio(peer, ragd):
    return f"{peer / ragd:.2f}x" if ragd > 0 else "-"


def memory_text(memory):
    end, base = memory.get("after_queries") or {}, memory.get("baseline") or {}
    return (f"{end.get('anonymous_mb', 0):.0f} + {end.get('file_mb', 0):.0f} (peak {end.get('peak_mb', 0):.0f}; "
            f"{base.get('rss_mb', 0):.0f} before loading)")


def report(data):
    ragd, peers, versions = data["ragd"], data["peers"], data["versions"]
    queries = ragd["queries"]
    out = []
    m = data["machine"]
    out.append(f"{m.get('cpu', '?')}, {m['cores']} cores, {m['memory_gib']} GiB; {m['uname']}")
    out.append(f"python {versions['python']}; " + ", ".join(f"{n} {versions[n]}" for n in PINS)
               + f"; {m.get('swift', 'swift ?')}; ragd {m.get('commit', '?')}")
    stages = [("ragd", ragd)] + list(peers.items())
    loads = ", ".join(f"{name} {part['load_average_start'][0]:.1f}-{part['load_average_end'][0]:.1f}"
                      for name, part in stages if "load_average_start" in part and "load_average_end" in part)
    warm = "after one untimed pass each" if data["settings"].get("warmup") else "first pass timed (no warm-up)"
    out.append(f"{ragd['chunks']} chunks, {queries} queries one at a time ({warm}), k = {K}; 1-minute load average at the "
               f"start and end of each part: {loads}"
               + (f"; OPENBLAS env set: {m['openblas_env']}" if m["openblas_env"] else ""))
    out.append("ratio = peer / ragd (above 1: ragd is faster); CPU/wall: the peer process's CPU time over the pass's "
               "wall time.\nMemory: process RSS after the queries, anonymous + file-backed MB (peak); each peer runs "
               "in its own process and frees its inputs before querying.")

    def row(label, figures, base, extra):
        cpu = figures.get("cpu_per_wall")
        return [label, ms(figures["p50_ms"]), ms(figures["p99_ms"]), ms(figures["mean_ms"]),
                ratio(figures["p50_ms"], base["p50_ms"]), ratio(figures["p99_ms"], base["p99_ms"]),
                f"{cpu:.2f}" if cpu is not None else "-"] + extra

    bm = ragd["modes"]["bm25"]
    ragd_top = ragd["top10_chunk_ids"]
    rows = [row("ragd BM25 (MaxScore; 1 thread)", bm, bm, ["", ""])]
    if "bm25 exhaustive" in ragd["modes"]:
        rows.append(row("ragd BM25 exhaustive (1 thread)", ragd["modes"]["bm25 exhaustive"], bm, ["", ""]))
    for name, label in (("tantivy", "tantivy {v} ({run}; 1 thread)"), ("bm25s", "bm25s {v} (numpy backend; 1 thread)")):
        if name not in peers:
            continue
        for run, figures in peers[name]["runs"].items():
            agree = f"{overlap(ragd_top['bm25'], peers[name]['top10']):.2f}" if run != "search only" else ""
            rows.append(row(label.format(v=versions[name], run=run), figures, bm, [agree, ""]))
    if "tantivy" in peers and "bm25s" in peers:
        rows[-1][-1] = f"tantivy~bm25s {overlap(peers['tantivy']['top10'], peers['bm25s']['top10']):.2f}"
    out.append("\nBM25")
    out.append(table(rows, ["engine", "p50 ms", "p99 ms", "mean ms", "p50 ratio", "p99 ratio", "CPU/wall",
                            "top-10 overlap with ragd", "note"]))

    de = ragd["modes"]["dense"]
    reference = peers.get("faiss", {}).get("reference_top10")
    # Searcher splits the 4-bit scan over min(4, cores) threads from 65,536 rows on (Searcher.scanThreads).
    scan = min(4, ragd["cores"]) if ragd["vectors"] >= 65_536 else 1
    rows = [row(f"ragd dense (4-bit scan on {scan} thread{'s' if scan > 1 else ''}, float32 re-score)", de, de,
                [f"{recall(ragd_top['dense'], reference):.4f}" if reference else "-"])]
    if "faiss" in peers:
        for run, figures in peers["faiss"]["runs"].items():
            rows.append(row(f"faiss {versions['faiss-cpu']} IndexFlatIP ({run})", figures, de,
                            [f"{recall(peers['faiss']['top10'], reference):.4f}" if run.startswith(f"{data['threads']} ") else ""]))
    if "hnswlib" in peers:
        h = peers["hnswlib"]
        for run, figures in h["runs"].items():
            rows.append(row(f"hnswlib {versions['hnswlib']} M={h['index']['M']} {run} (1 thread)", figures, de,
                            [f"{recall(h['top10_by_run'][run], reference):.4f}" if reference else "-"]))
    out.append("\nDense (encoder excluded; recall@10 against faiss's exact float32 batch search)")
    out.append(table(rows, ["engine", "p50 ms", "p99 ms", "mean ms", "p50 ratio", "p99 ratio", "CPU/wall", "recall@10"]))

    rows = []
    build = data.get("ragd_build")
    start = ragd["startup"]
    rss = ragd["rss_after_queries"]
    rows.append([f"ragd (BM25 + vectors in one LMDB index; analysis on {ragd['cores']} cores)",
                 f"{build['build_s']:.1f}" if build else "-",
                 f"{build['disk_mb']:.0f}" if build else "-",
                 f"open {start['store_open_s']:.2f} + vectors {start['vectors_load_s']:.2f}",
                 f"{rss['anonymous_mb']:.0f} + {rss['index_pages_mb']:.0f} (peak {rss['peak_mb']:.0f}; "
                 f"{start['rss_before_mb']:.0f} before opening)"])
    for name in ALL_PEERS:
        if name not in peers:
            continue
        peer = peers[name]
        threads = peer.get("threads", {}).get("build")
        note = {"tantivy": f"{peer.get('index', {}).get('segments', '?')} segments",
                "hnswlib": "loaded from cache" if "loaded_from_cache_s" in peer else ""}.get(name, "")
        disk = peer.get("index", {}).get("disk_mb")
        rows.append([f"{name} ({threads} thread{'s' if threads != 1 else ''}{'; ' + note if note else ''})",
                     f"{peer['build_s']:.1f}", f"{disk:.0f}" if disk else "-", "-", memory_text(peer["memory"])])
    out.append("\nBuild and memory")
    out.append(table(rows, ["engine", "build s", "on disk MB", "start-up s", "RSS after queries MB: anon + file (peak; at the start)"]))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="a dense-bench index folder (data.mdb, bench-queries.f32)")
    parser.add_argument("--dense-bench", default=os.path.join(ROOT, ".build", "release", "dense-bench"))
    parser.add_argument("--export", help="folder for the exported data (default: INDEX-export next to the index)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="threads for builds and faiss's search (and 1)")
    parser.add_argument("--ef", default="10,20,40,80,160,320,640,1280,2560")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-efc", type=int, default=200)
    parser.add_argument("--hnsw-cache", action="store_true")
    parser.add_argument("--peers", default=",".join(ALL_PEERS))
    parser.add_argument("--skip-install", action="store_true")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="time the first pass over the queries (default: one untimed pass first, every engine)")
    parser.add_argument("--ragd-json", help="use this dense-bench --json result instead of running dense-bench")
    parser.add_argument("--skip-ragd-build", action="store_true")
    parser.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "data", "scifact", "corpus.jsonl"))
    parser.add_argument("--queries-file", default=os.path.join(ROOT, "..", "shared", "data", "scifact", "queries.jsonl"))
    parser.add_argument("--out", help="JSON result (default EXPORT/peers.json)")
    # Internal: run one peer (under the venv's python).
    parser.add_argument("--worker", choices=ALL_PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.ef = [int(x) for x in str(args.ef).split(",") if x]
    if args.worker:
        run_worker(args)
        return
    if not args.index:
        parser.error("--index is required")
    args.index = os.path.abspath(args.index)
    args.export = os.path.abspath(args.export or args.index.rstrip("/") + "-export")
    args.out = args.out or os.path.join(args.export, "peers.json")
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in ALL_PEERS:
            parser.error(f"unknown peer {p}")
    if not os.path.exists(args.dense_bench):
        sys.exit(f"no {args.dense_bench}: swift build -c release --product dense-bench")
    info = machine()
    if info["openblas_env"]:
        print(f"note: {info['openblas_env']} set; benchmark with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`",
              file=sys.stderr)
    data = {"machine": info, "threads": args.threads, "load_average_start": load_average(),
            "settings": {"queries": args.queries, "k": K, "warmup": args.warmup, "ef": args.ef, "hnsw_m": args.hnsw_m,
                         "hnsw_ef_construction": args.hnsw_efc, "index": args.index, "export": args.export}}

    # 1. ragd's figures.
    if args.ragd_json:
        with open(args.ragd_json) as handle:
            data["ragd"] = json.load(handle)
    else:
        os.makedirs(args.export, exist_ok=True)
        ragd_json = os.path.join(args.export, "ragd.json")
        command = [args.dense_bench, "--index", args.index, "--queries", str(args.queries), "--json", ragd_json]
        command += ["--warmup"] if args.warmup else []
        print("$ " + " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
        with open(ragd_json) as handle:
            data["ragd"] = json.load(handle)

    # 2. The exported data.
    if export_is_current(args.index, args.export, args.queries):
        print(f"reusing the export in {args.export}", flush=True)
    else:
        command = [args.dense_bench, "--index", args.index, "--queries", str(args.queries), "--export", args.export]
        print("$ " + " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    with open(os.path.join(args.export, "export.json")) as handle:
        data["export"] = json.load(handle)

    # 3. ragd's build time.
    if not args.skip_ragd_build:
        data["ragd_build"] = ragd_build_seconds(args, data["export"]["chunks"], os.path.dirname(args.export))
        print(f"ragd build: {data['ragd_build']['build_s']:.1f} s", flush=True)

    # 4. The peers.
    data["versions"] = ensure_venv(args.skip_install)
    data["peers"] = {}
    for peer in peers:
        result_path = os.path.join(tempfile.gettempdir(), f"peers-{peer}-{os.getpid()}.json")
        command = [venv_python(), os.path.abspath(__file__), "--worker", peer, "--export", args.export,
                   "--queries", str(args.queries), "--threads", str(args.threads), "--ef", ",".join(map(str, args.ef)),
                   "--hnsw-m", str(args.hnsw_m), "--hnsw-efc", str(args.hnsw_efc), "--result", result_path,
                   "--scratch", os.path.dirname(args.export)] + (["--hnsw-cache"] if args.hnsw_cache else []) \
            + ([] if args.warmup else ["--no-warmup"])
        environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
        print(f"{peer} ...", flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True, env=environment)
        with open(result_path) as handle:
            data["peers"][peer] = json.load(handle)
        os.remove(result_path)
        print(f"{peer}: built in {data['peers'][peer]['build_s']:.1f} s, {time.perf_counter() - started:.0f} s in all",
              flush=True)
    data["load_average_end"] = load_average()

    # 5. The table.
    text = report(data)
    data["table"] = text
    print("\n" + text)
    with open(args.out, "w") as handle:
        json.dump(data, handle, indent=1)
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
