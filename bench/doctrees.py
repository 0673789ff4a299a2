#!/usr/bin/env python3
"""Real documentation trees in one ragd: how long until they are searchable, how big the index is, how much memory.

By default the four Debian documentation trees below are indexed together (reST from python3.11-doc and
linux-doc-6.1, HTML from postgresql-doc-15, gzipped Markdown and HTML from nodejs-doc), each as a `--source` of one
fresh ragd with the embedding model. The script

- records the packages' versions (dpkg-query), the kernel, the CPU count and the load average at start and end;
- measures the raw text: the files ragd would index in each tree (the suffixes of RagIngest's DocumentFormat, also
  gzipped, hidden names, editor files and symbolic links left out as ragd's scanner does), `.gz` counted
  decompressed;
- starts ragd and polls `status` every --poll seconds for: the first answer on the socket; the moment every file
  is indexed and BM25-searchable (rule below); the moment every chunk has its vector;
- samples VmRSS, RssAnon and RssFile at each poll and reads VmHWM (peak RSS) at the end;
- compares ragd's per-tree file counts with the files on disk, and counts skipped files (status.skipped and the
  "skipped" lines of ragd's log, by reason);
- measures the index: data.mdb (apparent and allocated size) and LMDB's used pages (`mdb_stat -ef`, run after ragd
  stopped), each against the raw text size;
- spot-checks answers per format with `ragctl search` (human output printed, `--json` verified: every cited path
  exists and the cited lines of the file, decompressed for `.gz`, contain a query term);
- stops ragd with SIGTERM and requires exit status 0.

"BM25-searchable" rule: the first status with `scans >= 1` (the start-up reconciliation pass finished, so `state`
has left `starting`) and `pending - embeddings.pending == 0` (no file or folder waiting or in flight; all that is
left is vectors). A chunk is searchable by BM25 as soon as its file's batch is committed (docs/protocol.md), so this
is when the last file became searchable. "Embeddings done": `state == "ready"`, `pending == 0` and
`embeddings.state == "ready"`.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/doctrees.py \\
      --ragd .build/release/ragd --model models/all-MiniLM-L6-v2 --json doctrees.json

With --bm25-only the run stops once everything is BM25-searchable (a quick check of a tree; vectors not timed).
Exits 0 when ragd indexed every file, every spot check passed and ragd stopped with status 0.
"""

import argparse
import gzip
import html
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
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "..", "shared", "eval"))
from ragd_client import start_daemon, stop_daemon, wait_for_socket  # noqa: E402
from soak import rss_mb  # noqa: E402

# (Debian package, tree, what it holds)
TREES = [
    ("python3.11-doc", "/usr/share/doc/python3.11/html/_sources", "reST (.rst.txt)"),
    ("linux-doc-6.1", "/usr/share/doc/linux-doc-6.1/html/_sources", "reST (.rst.txt), deep tree"),
    ("postgresql-doc-15", "/usr/share/doc/postgresql-doc-15/html", "HTML"),
    ("nodejs-doc", "/usr/share/doc/nodejs/api", "Markdown (.md.gz) and HTML"),
]

# Spot checks: a natural query per format, limited to its tree and format.
SPOT_CHECKS = [
    ("python reST", "/usr/share/doc/python3.11/html/_sources", "rst", "how to create a virtual environment"),
    ("python reST", "/usr/share/doc/python3.11/html/_sources", "rst", "asyncio wait for a task with a timeout"),
    ("linux reST", "/usr/share/doc/linux-doc-6.1/html/_sources", "rst", "spinlock irq save"),
    ("linux reST", "/usr/share/doc/linux-doc-6.1/html/_sources", "rst", "kernel module parameters"),
    ("postgres HTML", "/usr/share/doc/postgresql-doc-15/html", "html", "vacuum full lock table"),
    ("postgres HTML", "/usr/share/doc/postgresql-doc-15/html", "html", "create index concurrently"),
    ("node md.gz", "/usr/share/doc/nodejs/api", "md", "readable stream backpressure"),
    ("node md.gz", "/usr/share/doc/nodejs/api", "md", "read a file with promises"),
    ("node HTML", "/usr/share/doc/nodejs/api", "html", "readable stream backpressure"),
]

# DocumentFormat.suffixes (Sources/RagIngest/DocumentFormat.swift), in its order, and its compressed suffix.
SUFFIXES = [(".md", "markdown"), (".markdown", "markdown"), (".rst.txt", "rst"), (".rst", "rst"),
            (".txt", "text"), (".html", "html"), (".htm", "html")]
MAX_FILE_BYTES = 16 * 2**20  # [limits] max_file_bytes default

STOP_WORDS = set("""a an and are as at be by for from has have how i in is it its of on or that the this to was
what when where which who why will with do does can my me we you your""".split())


def document_format(name):
    """The format ragd reads a file name as (DocumentFormat.detect), or None."""
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in SUFFIXES:
        if name.endswith(suffix):
            return fmt
    return None


def is_editor_file(name):
    """SourceScanner's editor swap, backup and temporary files, never indexed."""
    return (name.endswith(("~", ".swp", ".swx", ".tmp")) or (name.startswith("#") and name.endswith("#"))
            or name.startswith(".#") or name == "4913")


def text_size(path):
    if not path.endswith(".gz") and not path.endswith(".GZ"):
        return os.path.getsize(path)
    total = 0
    with gzip.open(path, "rb") as handle:
        while True:
            block = handle.read(1 << 20)
            if not block:
                return total
            total += len(block)


def survey(tree):
    """The files ragd would index below `tree`, as its scanner walks (hidden names skipped, links not followed)."""
    files, by_format, other = {}, {}, 0
    symlinks = too_large = 0
    for folder, dirs, names in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.startswith(".") or is_editor_file(name):
                continue
            fmt = document_format(name)
            if fmt is None:
                other += 1
                continue
            if os.path.islink(path):
                symlinks += 1
                continue
            if not os.path.isfile(path):
                continue
            size = text_size(path)
            if size > MAX_FILE_BYTES or os.path.getsize(path) > MAX_FILE_BYTES:
                too_large += 1
            key = fmt + (".gz" if name.lower().endswith(".gz") else "")
            entry = by_format.setdefault(key, {"files": 0, "bytes_on_disk": 0, "text_bytes": 0})
            entry["files"] += 1
            entry["bytes_on_disk"] += os.path.getsize(path)
            entry["text_bytes"] += size
            files[path] = size
    return {"files": len(files), "text_bytes": sum(files.values()),
            "bytes_on_disk": sum(e["bytes_on_disk"] for e in by_format.values()),
            "by_format": by_format, "not_indexed_other_files": other, "symlinks_not_followed": symlinks,
            "over_size_cap": too_large}, files


def run(args, check=False):
    return subprocess.run(args, capture_output=True, text=True, check=check)


def package_versions(packages):
    versions = {}
    for package in packages:
        result = run(["dpkg-query", "-W", "-f", "${Version}", package])
        versions[package] = result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None
    return versions


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def lmdb_stats(index_dir):
    """`mdb_stat -ef` of the index (ragd stopped): page size, pages used, free pages, and used bytes."""
    if shutil.which("mdb_stat") is None:
        return {"available": False, "note": "mdb_stat not installed (apt-get install lmdb-utils)"}
    result = run(["mdb_stat", "-ef", index_dir])
    if result.returncode != 0:
        return {"available": False, "note": f"mdb_stat failed: {result.stderr.strip()}"}
    stats = {"available": True}
    for key, pattern in (("page_size", r"Page size:\s*(\d+)"), ("pages_used", r"Number of pages used:\s*(\d+)"),
                         ("free_pages", r"Free pages:\s*(\d+)"), ("map_size", r"Map size:\s*(\d+)")):
        match = re.search(pattern, result.stdout)
        stats[key] = int(match.group(1)) if match else None
    if stats["page_size"] and stats["pages_used"] is not None:
        used = stats["pages_used"] - (stats["free_pages"] or 0)
        stats["live_pages"] = used
        stats["live_bytes"] = used * stats["page_size"]
        stats["high_water_bytes"] = stats["pages_used"] * stats["page_size"]
    return stats


def query_terms(query):
    return [t for t in re.findall(r"[a-z0-9]+", query.lower()) if t not in STOP_WORDS and len(t) > 1]


def term_variants(term):
    """The term and the term less a common English ending: "substring of a term" without a stemmer."""
    variants = {term}
    for ending in ("ing", "es", "ed", "s"):
        if term.endswith(ending) and len(term) - len(ending) >= 3:
            variants.add(term[: -len(ending)])
    return variants


def read_lines(path):
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace").split("\n")


def plain(text):
    """HTML markup removed and entities decoded, whitespace squeezed: what the words of a cited HTML range are."""
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text))


def verify_hit(hit, terms, sources):
    """Checks one search hit against the file on disk."""
    path, (first, last) = hit["path"], hit["lines"]
    report = {"path": path, "lines": [first, last], "heading": hit.get("heading", ""),
              "bm25": hit.get("bm25"), "dense": hit.get("dense")}
    report["under_source"] = any(path.startswith(s.rstrip("/") + "/") for s in sources)
    report["exists"] = os.path.isfile(path)
    if not report["exists"]:
        report["ok"] = False
        return report
    lines = read_lines(path)
    report["total_lines"] = len(lines)
    report["range_valid"] = 1 <= first <= last <= len(lines)
    cited = "\n".join(lines[first - 1:last]).lower()
    words = plain(cited) if document_format(path) == "html" else cited
    found = sorted(t for t in terms if any(v in cited or v in words for v in term_variants(t)))
    report["terms_in_cited_lines"] = found
    # How much of the chunk's own text is in the cited lines: a wrong line range shows up here.
    chunk_words = set(re.findall(r"[a-z0-9]{4,}", (hit.get("text") or "").lower()))
    if chunk_words:
        present = sum(1 for w in chunk_words if w in words or w in cited)
        report["chunk_words_in_cited_lines"] = round(present / len(chunk_words), 3)
    # A hit that BM25 did not score (dense only, in hybrid mode) need not contain a query term.
    needs_term = hit.get("bm25") is not None
    report["ok"] = report["under_source"] and report["range_valid"] and (bool(found) or not needs_term)
    return report


def spot_check(ragctl, sock, name, tree, ext, query, modes, k, sources):
    terms = query_terms(query)
    base = [ragctl, "search", query, "--k", str(k), "--path-prefix", tree, "--ext", ext, "--socket", sock]
    env = dict(os.environ, NO_COLOR="1")
    check = {"format": name, "tree": tree, "ext": ext, "query": query, "terms": terms, "modes": {}}
    human = subprocess.run(base + ["--mode", modes[0]], capture_output=True, text=True, env=env)
    check["command"] = " ".join(base[:2]) + f" {json.dumps(query)} " + " ".join(base[3:-2] + ["--mode", modes[0]])
    check["human_output"] = human.stdout + (f"[stderr] {human.stderr}" if human.stderr else "")
    check["human_exit"] = human.returncode
    ok = human.returncode == 0
    for mode in modes:
        result = subprocess.run(base + ["--mode", mode, "--json"], capture_output=True, text=True, env=env)
        entry = {"exit": result.returncode}
        if result.returncode != 0:
            entry.update(ok=False, error=(result.stderr or result.stdout).strip())
        else:
            reply = json.loads(result.stdout)
            hits = [verify_hit(hit, terms, sources) for hit in reply.get("results", [])]
            entry.update(took_ms=reply.get("took_ms"), hits=hits, ok=bool(hits) and all(h["ok"] for h in hits))
            if not hits:
                entry["error"] = "no results"
        check["modes"][mode] = entry
        ok = ok and entry["ok"]
    check["ok"] = ok
    return check


def log_summary(log_path, limit=8):
    """ragd's log by level, and its skipped/unreadable/invalid file lines grouped by reason."""
    levels, skipped, notable = {}, {}, []
    if not os.path.exists(log_path):
        return {}
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.split(" ", 2)
            level = parts[1] if len(parts) > 2 else "?"
            levels[level] = levels.get(level, 0) + 1
            if "skipped" in line or "unreadable" in line or "invalid UTF-8" in line or "binary" in line:
                reason = re.search(r'reason=("[^"]*"|\S+)', line)
                key = reason.group(1).strip('"') if reason else parts[-1].split(" file.path=")[0].strip()
                group = skipped.setdefault(key, {"count": 0, "examples": []})
                group["count"] += 1
                path = re.search(r'file\.path=("[^"]*"|\S+)', line)
                if path and len(group["examples"]) < 3:
                    group["examples"].append(path.group(1).strip('"'))
            elif level in ("WARNING", "ERROR", "CRITICAL") and len(notable) < limit:
                notable.append(line.rstrip())
    return {"lines_by_level": levels, "skipped_by_reason": skipped, "warnings_and_errors": notable}


def indexed_files(client, tree):
    reply = client.call("files", path_prefix=tree)
    return {f["path"]: f for f in reply["files"]}


def mb(n):
    return None if n is None else round(n / 2**20, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ragd", default=os.path.join(REPO, ".build", "release", "ragd"))
    parser.add_argument("--ragctl", help="default: ragctl next to --ragd")
    parser.add_argument("--model", default=os.environ.get("RAGD_MODEL") or os.path.join(REPO, "models", "all-MiniLM-L6-v2"),
                        help="sentence-transformers folder (default: $RAGD_MODEL, else the repository's models/all-MiniLM-L6-v2)")
    parser.add_argument("--source", action="append", help="a tree to index (repeatable; default: the four Debian trees)")
    parser.add_argument("--state-dir", help="ragd's state folder (default: a fresh temporary one, deleted at the end)")
    parser.add_argument("--json", help="write the full result here")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between status polls")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="give up after this many seconds of indexing")
    parser.add_argument("--k", type=int, default=3, help="hits per spot check")
    parser.add_argument("--spot-modes", default="hybrid,bm25",
                        help="modes of the spot checks; the human output is shown for the first (default: hybrid,bm25)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (index, log)")
    parser.add_argument("--bm25-only", action="store_true",
                        help="a quick check: stop waiting once everything is BM25-searchable (embeddings not timed), "
                             "spot-check in bm25 mode, then stop ragd while it is still embedding")
    args = parser.parse_args()

    ragd = os.path.abspath(args.ragd)
    ragctl = os.path.abspath(args.ragctl or os.path.join(os.path.dirname(ragd), "ragctl"))
    model = os.path.abspath(args.model)
    for label, path in (("ragd", ragd), ("ragctl", ragctl)):
        if not os.access(path, os.X_OK):
            parser.error(f"{label} not found or not executable: {path}")
    if not os.path.isfile(os.path.join(model, "model.safetensors")):
        parser.error(f"no model.safetensors in {model} (give --model)")
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    if openblas:
        print(f"warning: ragd inherits {openblas}; benchmark runs should use env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE",
              file=sys.stderr)

    requested = [os.path.abspath(s) for s in args.source] if args.source else [t[1] for t in TREES]
    sources, missing = [], []
    for tree in requested:
        if os.path.isdir(tree):
            sources.append(os.path.realpath(tree))
        else:
            missing.append(tree)
            package = next((p for p, t, _ in TREES if t == tree), None)
            print(f"skipping {tree}: not a folder" + (f" (is {package} installed?)" if package else ""), file=sys.stderr)
    if not sources:
        parser.error("no source tree exists")

    work = tempfile.mkdtemp(prefix="ragd-doctrees-")
    state = os.path.abspath(args.state_dir) if args.state_dir else os.path.join(work, "state")
    if os.path.exists(os.path.join(state, "index", "data.mdb")):
        parser.error(f"{state} already holds an index; give an empty or new --state-dir (this measures a fresh start)")
    os.makedirs(state, exist_ok=True)
    sock, log = os.path.join(work, "ragd.sock"), os.path.join(work, "ragd.log")

    result = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"uname": " ".join(platform.uname()), "cpus": os.cpu_count(),
                    "sched_affinity_cpus": len(os.sched_getaffinity(0)), "loadavg_start": loadavg(),
                    "openblas_env": openblas},
        "packages": package_versions([p for p, _, _ in TREES]),
        "bm25_only": args.bm25_only, "ragd": ragd, "ragctl": ragctl, "model": model, "sources": sources, "missing_sources": missing,
    }
    print(f"surveying {len(sources)} trees…", file=sys.stderr)
    trees, on_disk = {}, {}
    for tree in sources:
        trees[tree], on_disk[tree] = survey(tree)
    raw_bytes = sum(t["text_bytes"] for t in trees.values())
    result["raw"] = {"files": sum(t["files"] for t in trees.values()), "text_bytes": raw_bytes,
                     "bytes_on_disk": sum(t["bytes_on_disk"] for t in trees.values()), "trees": trees}

    failures = []
    samples, peaks = [], {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    events, snapshots = {}, {}
    started = time.monotonic()
    proc = start_daemon(ragd, sources, state, sock, ("--model", model), log)
    exit_code = None
    try:
        client = wait_for_socket(sock, proc, timeout=120)
        events["socket_answers_s"] = round(time.monotonic() - started, 3)
        last_print = last_sample = 0.0
        status = {}
        while True:
            if proc.poll() is not None:
                failures.append(f"ragd exited with status {proc.returncode} while indexing")
                break
            status = client.call("status")
            now = time.monotonic() - started
            memory = {field: rss_mb(proc.pid, field) for field in peaks}
            for field, value in memory.items():
                peaks[field] = max(peaks[field], value)
            embeddings = status["embeddings"]
            file_pending = status["pending"] - embeddings["pending"]
            if "model_loaded_s" not in events and embeddings["state"] != "loading":
                events["model_loaded_s"] = round(now, 3)
                events["model_state_after_load"] = embeddings["state"]
            if "first_scan_done_s" not in events and status["scans"] >= 1:
                events["first_scan_done_s"] = round(now, 3)
            if "bm25_searchable_s" not in events and status["scans"] >= 1 and file_pending == 0:
                events["bm25_searchable_s"] = round(now, 3)
                snapshots["bm25_searchable"] = status
            if now - last_sample >= 5 or not samples:
                last_sample = now
                samples.append({"t_s": round(now, 1), "state": status["state"], "files": status["files"],
                                "chunks": status["chunks"], "file_pending": file_pending,
                                "embedded": embeddings["embedded"], "vectors_pending": embeddings["pending"],
                                "embed_rate": embeddings["rate"], "used_mb": status["index_map"]["used_mb"],
                                **{k.lower() + "_mb": round(v, 1) for k, v in memory.items()}})
            if now - last_print >= 15:
                last_print = now
                progress = status["progress"]
                print(f"  {now:7.1f}s {status['state']:9} files {status['files']:5} chunks {status['chunks']:6} "
                      f"pass {progress['done']}/{progress['total']} ({progress['phase']}) "
                      f"vectors {embeddings['embedded']}/{embeddings['total']} ({embeddings['state']}, rate {embeddings['rate']}) "
                      f"rss {memory['VmRSS']:.0f} MB", file=sys.stderr)
            if args.bm25_only and "bm25_searchable_s" in events:
                break
            if status["state"] == "ready" and status["pending"] == 0 and embeddings["state"] == "ready":
                events["embeddings_done_s"] = round(now, 3)
                break
            if embeddings["state"] == "unavailable" and "bm25_searchable_s" in events:
                failures.append(f"embeddings unavailable: {embeddings['reason']}")
                break
            if now > args.timeout:
                failures.append(f"not indexed within {args.timeout} s")
                break
            time.sleep(args.poll)
        final = status
        snapshots["end"] = final
        if proc.poll() is None:
            peaks["VmHWM"] = rss_mb(proc.pid, "VmHWM")
            # Every file on disk indexed? Compare per tree.
            coverage = {}
            for tree in sources:
                indexed = indexed_files(client, tree)
                absent = sorted(set(on_disk[tree]) - set(indexed))
                extra = sorted(set(indexed) - set(on_disk[tree]))
                coverage[tree] = {"on_disk": len(on_disk[tree]), "indexed": len(indexed),
                                  "chunks": sum(f["chunks"] for f in indexed.values()),
                                  "not_indexed": absent[:20], "not_indexed_count": len(absent),
                                  "indexed_not_expected": extra[:20],
                                  "zero_chunk_files": sorted(p for p, f in indexed.items() if f["chunks"] == 0)[:20],
                                  "zero_chunk_count": sum(1 for f in indexed.values() if f["chunks"] == 0)}
                if absent:
                    failures.append(f"{len(absent)} files of {tree} not indexed, e.g. {absent[:3]}")
            result["coverage"] = coverage
            checks = []
            modes = ["bm25"] if args.bm25_only else [m.strip() for m in args.spot_modes.split(",") if m.strip()]
            for name, tree, ext, query in SPOT_CHECKS:
                if tree in sources:
                    checks.append(spot_check(ragctl, sock, name, tree, ext, query, modes, args.k, sources))
            result["spot_checks"] = checks
            failures += [f"spot check failed: {c['format']}: {c['query']!r}" for c in checks if not c["ok"]]
        client.close()
    finally:
        stop_s = stop_daemon(proc, timeout=60)  # SIGTERM, then SIGKILL after the timeout
        result["stop_s"] = None if stop_s is None else round(stop_s, 2)
        if stop_s is None:
            failures.append("ragd did not stop within 60 s of SIGTERM (killed)")
        exit_code = proc.returncode
    if exit_code != 0:
        failures.append(f"ragd exited with status {exit_code} after SIGTERM")

    data = os.path.join(state, "index", "data.mdb")
    index = {"data_mdb": data}
    if os.path.exists(data):
        st = os.stat(data)
        index.update(apparent_bytes=st.st_size, allocated_bytes=st.st_blocks * 512)
    index["lmdb"] = lmdb_stats(os.path.join(state, "index"))
    index["status_used_mb"] = snapshots.get("end", {}).get("index_map", {}).get("used_mb")
    for key, value in (("apparent_bytes", index.get("apparent_bytes")), ("allocated_bytes", index.get("allocated_bytes")),
                       ("live_bytes", index["lmdb"].get("live_bytes"))):
        if value and raw_bytes:
            index["ratio_" + key.replace("_bytes", "")] = round(value / raw_bytes, 3)
    result["index"] = index
    end = snapshots.get("end", {})
    result.update({
        "events": events, "ragd_exit_status": exit_code, "peaks_mb": {k: round(v, 1) for k, v in peaks.items()},
        "end": {k: end.get(k) for k in ("state", "files", "chunks", "skipped", "scans", "last_scan_s", "since_start",
                                         "embeddings", "index_map", "watch", "version", "last_error")},
        "bm25_searchable_status": {k: snapshots.get("bm25_searchable", {}).get(k)
                                   for k in ("files", "chunks", "pending", "progress", "embeddings", "skipped")},
        "log": log_summary(log), "samples": samples, "failures": failures,
    })
    result["machine"]["loadavg_end"] = loadavg()
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    print_summary(result)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"\nfull result: {args.json}")
    if args.keep or failures:
        print(f"work folder kept: {work} (ragd.log, state)", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
        if args.state_dir:
            print(f"index kept in {state}", file=sys.stderr)
    sys.exit(1 if failures else 0)


def print_summary(r):
    m = r["machine"]
    print(f"machine: {m['uname']}; {m['cpus']} CPUs; load {m['loadavg_start']} -> {m['loadavg_end']}")
    print("packages: " + ", ".join(f"{p} {v or 'not installed'}" for p, v in r["packages"].items()))
    print(f"ragd {r['end'].get('version')}  model {r['model']}")
    print("\nraw text (files ragd indexes; .gz decompressed):")
    for tree, t in r["raw"]["trees"].items():
        formats = ", ".join(f"{k} {v['files']} files {mb(v['text_bytes'])} MB" for k, v in sorted(t["by_format"].items()))
        print(f"  {tree}: {t['files']} files, {mb(t['text_bytes'])} MB text ({formats})")
    print(f"  total: {r['raw']['files']} files, {mb(r['raw']['text_bytes'])} MB text, {mb(r['raw']['bytes_on_disk'])} MB on disk")
    e = r["events"]
    print("\ntimes (from starting ragd):")
    print(f"  socket answers:        {e.get('socket_answers_s')} s")
    print(f"  model loaded:          {e.get('model_loaded_s')} s ({e.get('model_state_after_load')})")
    print(f"  all BM25-searchable:   {e.get('bm25_searchable_s')} s   (scans >= 1 and pending - embeddings.pending == 0)")
    done = "not measured (--bm25-only)" if r["bm25_only"] else f"{e.get('embeddings_done_s')} s"
    print(f"  all embeddings done:   {done}   (state ready, pending 0, embeddings.state ready)")
    end = r["end"]
    emb = end.get("embeddings") or {}
    print(f"\nat the end: {end.get('files')} files, {end.get('chunks')} chunks, {emb.get('embedded')} vectors; "
          f"skipped {end.get('skipped')}; last pass {end.get('last_scan_s')} s")
    for tree, c in r.get("coverage", {}).items():
        print(f"  {tree}: {c['indexed']}/{c['on_disk']} files indexed, {c['chunks']} chunks"
              + (f", NOT INDEXED {c['not_indexed_count']}: {c['not_indexed'][:3]}" if c["not_indexed_count"] else "")
              + (f", {c['zero_chunk_count']} files with 0 chunks: {c['zero_chunk_files'][:3]}" if c["zero_chunk_count"] else ""))
    skipped = r["log"].get("skipped_by_reason") or {}
    for reason, group in skipped.items():
        print(f"  log: {group['count']} x {reason}: {group['examples']}")
    p = r["peaks_mb"]
    print(f"\nmemory: peak RSS (VmHWM) {p.get('VmHWM')} MB; sampled maxima VmRSS {p['VmRSS']} MB, "
          f"RssAnon {p['RssAnon']} MB, RssFile {p['RssFile']} MB")
    i = r["index"]
    lm = i["lmdb"]
    raw = r["raw"]["text_bytes"]
    print(f"index: data.mdb {mb(i.get('apparent_bytes'))} MB apparent, {mb(i.get('allocated_bytes'))} MB allocated "
          f"(x{i.get('ratio_apparent')} / x{i.get('ratio_allocated')} the raw text {mb(raw)} MB)")
    if lm.get("available"):
        print(f"  LMDB: {lm['pages_used']} pages used of {lm['page_size']} B, {lm['free_pages']} free -> "
              f"{mb(lm.get('live_bytes'))} MB live (x{i.get('ratio_live')} the raw text); status used_mb {i['status_used_mb']}")
    else:
        print(f"  LMDB: {lm.get('note')}; status used_mb {i['status_used_mb']}")
    print(f"ragd stopped with status {r['ragd_exit_status']} after SIGTERM ({r.get('stop_s')} s)")
    for check in r.get("spot_checks", []):
        print(f"\n--- spot check [{check['format']}] {check['query']!r}: {'PASS' if check['ok'] else 'FAIL'}")
        print(f"$ {check['command']}")
        print(check["human_output"].rstrip())
        for mode, entry in check["modes"].items():
            print(f"  verify --json --mode {mode}: {'ok' if entry['ok'] else 'FAIL'}"
                  + (f" ({entry['error']})" if entry.get("error") else ""))
            for hit in entry.get("hits", []):
                print(f"    {'ok  ' if hit['ok'] else 'FAIL'} {hit['path']}:{hit['lines'][0]}-{hit['lines'][1]} "
                      f"terms {hit.get('terms_in_cited_lines')} chunk words in lines {hit.get('chunk_words_in_cited_lines')} "
                      f"bm25 {hit['bm25']} dense {hit['dense']}")
    print("\n" + ("FAILURES:\n  " + "\n  ".join(r["failures"]) if r["failures"] else "all checks passed"))


if __name__ == "__main__":
    main()
