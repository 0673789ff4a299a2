"""Regenerates the RagEmbed test fixtures (run from anywhere; needs numpy, safetensors, tokenizers):

    python3 Tests/RagEmbedTests/Fixtures/make_fixtures.py [MINILM_FOLDER]

- tiny-bert/: a 2-layer random BERT (hidden 32, 4 heads) with a ~250-token vocabulary, as a
  sentence-transformers folder, so the model code is tested without the real weights.
- tiny_reference.json: its token ids and numpy (float64) embeddings for mean, CLS and max pooling and
  for the erf and tanh GELU.
- tokenizer_cases.json: tricky strings with the ids HuggingFace `tokenizers` gives for the tiny vocabulary
  (lower-cased and cased) and, when MINILM_FOLDER (default models/all-MiniLM-L6-v2) exists, for MiniLM.
- minilm_reference.json: numpy embeddings of a few sentences by the real all-MiniLM-L6-v2 (only when the
  model folder exists; the weights themselves are never committed).
- minilm_tokens.json: over 1,000 varied strings (corpus.tokenizer_strings: scripts, CJK, emoji, combining and
  zero-width characters, code, URLs, numbers, punctuation, long words, whitespace and controls, literal special
  tokens, real documentation lines and paragraphs) with the ids `tokenizers` gives from MiniLM's
  tokenizer.json, truncated at 256, and the untruncated count (only when the model folder exists).
- minilm_encoder_reference.json + .f32: 255 texts of 2 to 256 tokens and past 256 (corpus.encoder_texts)
  with their ids, and their numpy float64 embeddings as float32 little-endian, 384 per text in order.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file
from tokenizers import BertWordPieceTokenizer, Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
from reference_bert import ReferenceBert  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TINY = os.path.join(HERE, "tiny-bert")
MINILM = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "models", "all-MiniLM-L6-v2")
TINY_MAX_SEQ = 24


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=True, indent=1)
        f.write("\n")


def dump_compact(path, obj):
    """One line per top-level list item, no indentation: small files that still diff line by line."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        items = [(k, v) for k, v in obj.items() if k != "cases"]
        for k, v in items:
            f.write(json.dumps(k) + ": " + json.dumps(v, ensure_ascii=False) + ",\n")
        f.write('"cases": [\n')
        cases = obj["cases"]
        for i, case in enumerate(cases):
            f.write(json.dumps(case, ensure_ascii=False, separators=(",", ":")) + (",\n" if i + 1 < len(cases) else "\n"))
        f.write("]}\n")


def rounded(v):
    return [float("%.8g" % x) for x in v]


# ---------------------------------------------------------------------------------------------- tiny vocab
def tiny_vocab():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for c in range(33, 127):
        vocab.append(chr(c))
    for c in range(33, 127):
        if chr(c).isalnum():
            vocab.append("##" + chr(c))
    words = ["the", "man", "is", "eat", "##ing", "food", "piece", "of", "bread", "sd", "notify", "max",
             "user", "watch", "##es", "http", "##s", "example", "com", "cafe", "deja", "vu", "naive",
             "##ade", "call", "after", "bind", "init", "self", "dict", "word", "##er", "##ed", "hello",
             "world", "super", "##cal", "##if", "un", "##able", "The", "Man", "Hello", "World", "##ll",
             "中", "文", "测", "试", "é", "ç", "ü", "σ", "##σ", "ο", "##ο", "δ", "##δ", "€", "£", "—", "…",
             "“", "”", "«", "»", "¿", "¡", "ß", "ﬁ", "##é", "ab", "##b", "é", "x86", "##_", "cpp"]
    for w in words:
        if w not in vocab:
            vocab.append(w)
    return vocab


def write_tiny_model(vocab):
    os.makedirs(os.path.join(TINY, "1_Pooling"), exist_ok=True)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": 32,
        "intermediate_size": 64, "layer_norm_eps": 1e-12, "max_position_embeddings": 32,
        "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
        "vocab_size": len(vocab),
    }
    dump(os.path.join(TINY, "config.json"), config)
    dump(os.path.join(TINY, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    dump(os.path.join(TINY, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    dump(os.path.join(TINY, "sentence_bert_config.json"), {"max_seq_length": TINY_MAX_SEQ, "do_lower_case": False})
    dump(os.path.join(TINY, "tokenizer_config.json"), {
        "do_lower_case": True, "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]", "tokenize_chinese_chars": True, "strip_accents": None,
        "tokenizer_class": "BertTokenizer"})
    with open(os.path.join(TINY, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")

    rng = np.random.default_rng(20240611)
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    f32 = lambda *shape, scale=0.3: (rng.standard_normal(shape) * scale).astype(np.float32)
    t = {
        "bert.embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None, :],
        "bert.embeddings.word_embeddings.weight": f32(len(vocab), h, scale=1.0),
        "bert.embeddings.position_embeddings.weight": f32(config["max_position_embeddings"], h, scale=0.5),
        "bert.embeddings.token_type_embeddings.weight": f32(2, h, scale=0.5),
        "bert.embeddings.LayerNorm.weight": (1 + f32(h, scale=0.1)),
        "bert.embeddings.LayerNorm.bias": f32(h, scale=0.1),
    }
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            t[p + f"attention.self.{name}.weight"] = f32(h, h)
            t[p + f"attention.self.{name}.bias"] = f32(h, scale=0.1)
        t[p + "attention.output.dense.weight"] = f32(h, h)
        t[p + "attention.output.dense.bias"] = f32(h, scale=0.1)
        t[p + "attention.output.LayerNorm.weight"] = 1 + f32(h, scale=0.1)
        t[p + "attention.output.LayerNorm.bias"] = f32(h, scale=0.1)
        t[p + "intermediate.dense.weight"] = f32(inter, h)
        t[p + "intermediate.dense.bias"] = f32(inter, scale=0.1)
        t[p + "output.dense.weight"] = f32(h, inter, scale=0.2)
        t[p + "output.dense.bias"] = f32(h, scale=0.1)
        t[p + "output.LayerNorm.weight"] = 1 + f32(h, scale=0.1)
        t[p + "output.LayerNorm.bias"] = f32(h, scale=0.1)
    save_file(t, os.path.join(TINY, "model.safetensors"), metadata={"format": "pt"})


# ---------------------------------------------------------------------------------------- tokenizer cases
CASES = [
    "Hello, World!",
    "",
    "   \t\n  ",
    "Café déjà vu — naïve façade",
    "ÀÉÎÕÜ Ångström Ærø",
    "中文分词测试 mixed with English",
    "日本語のテキスト、カタカナ",
    "한국어 텍스트",
    "Call sd_notify() after bind()",
    "fs.inotify.max_user_watches=524288",
    "https://example.com/path?query=1&b=2#frag",
    "user@example.org",
    "emoji 😀👍🏽 and 🫠 face",
    "a" * 100,
    "a" * 101,
    "supercalifragilisticexpialidocious unable",
    "tab\tnew\nline\r\nreturn",
    "zero\u200bwidth soft\u00adhyphen \ufeffbom",
    "control\u0001\u0007chars\u007f here",
    "replacement \ufffd char",
    "CamelCaseIdentifier getHTTPResponseCode",
    "snake_case_name __init__ self.__dict__",
    "C++ & C# -> x86_64; Σ ΟΔΟΣ",
    "İstanbul ǅ ß ﬁ ligature",
    "e\u0301 combining vs \u00e9 precomposed",
    "$HOME/.config/ragd.toml ~/bin",
    "1,234.56 3.14e-10 0x1F",
    "\u201csmart quotes\u201d \u2018single\u2019 \u00abguillemets\u00bb \u2026",
    "[CLS] literal [SEP] tokens [MASK] [unk] [cls]",
    "<html><body class=\"x\">Hi</body></html>",
    "¿Qué? ¡Sí!",
    "Ελληνικά Русский текст עברית العربية",
    "\u3000ideographic\u00a0nbsp\u2003emspace",
    "𠀀𪚥 rare CJK ext B",
    "line\u2028separator\u0085nel",
    "ﾊﾝｶｸ fullwidth ＡＢＣ１２３",
    "हिन्दी and ภาษาไทย",
    "unassigned \u0378 private \ue000 end",
    "word " * 300,
]


def tokenizer_cases(vocab):
    vocab_path = os.path.join(TINY, "vocab.txt")
    lower = BertWordPieceTokenizer(vocab_path, lowercase=True)
    cased = BertWordPieceTokenizer(vocab_path, lowercase=False)
    for t in (lower, cased):
        t.enable_truncation(TINY_MAX_SEQ)
    minilm = None
    if os.path.exists(os.path.join(MINILM, "tokenizer.json")):
        minilm = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
        minilm.no_padding()
        minilm.enable_truncation(256)
    out = []
    for text in CASES:
        case = {"text": text, "tiny": lower.encode(text).ids, "tiny_cased": cased.encode(text).ids}
        if minilm:
            case["minilm"] = minilm.encode(text).ids
        out.append(case)
    return out


# ---------------------------------------------------------------------------------------- embeddings
TINY_TEXTS = [
    "The man is eating food.",
    "",
    "Call sd_notify() after bind()",
    "中文测试 café",
    "hello world " * 20,
    "x",
    "max_user_watches",
]

MINILM_TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "How do I reload the configuration without restarting the daemon?",
    "Call sd_notify(0, \"READY=1\") once the socket is bound; systemd then starts dependent units.",
    "fs.inotify.max_user_watches limits how many directories can be watched recursively.",
    "Café déjà vu: naïve façades in Ångström units.",
    "中文分词测试 and mixed English text",
    "",
    "LMDB readers never block writers; long-lived read transactions make the file grow. " * 12,
]


def main():
    vocab = tiny_vocab()
    write_tiny_model(vocab)
    dump(os.path.join(HERE, "tokenizer_cases.json"), tokenizer_cases(vocab))

    lower = BertWordPieceTokenizer(os.path.join(TINY, "vocab.txt"), lowercase=True)
    lower.enable_truncation(TINY_MAX_SEQ)
    erf_model = ReferenceBert(TINY)
    tanh_model = ReferenceBert(TINY, hidden_act="gelu_new")
    tiny = []
    for text in TINY_TEXTS:
        ids = lower.encode(text).ids
        tiny.append({
            "text": text, "ids": ids,
            "mean_norm": rounded(erf_model.embed(ids, "mean", True)),
            "cls": rounded(erf_model.embed(ids, "cls", False)),
            "max": rounded(erf_model.embed(ids, "max", False)),
            "mean_norm_tanh": rounded(tanh_model.embed(ids, "mean", True)),
        })
    dump(os.path.join(HERE, "tiny_reference.json"), tiny)

    if os.path.exists(os.path.join(MINILM, "model.safetensors")):
        tok = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(256)
        model = ReferenceBert(MINILM)
        ref = []
        for text in MINILM_TEXTS:
            ids = tok.encode(text).ids
            ref.append({"text": text, "ids": ids, "embedding": rounded(model.embed(ids, "mean", True))})
        dump(os.path.join(HERE, "minilm_reference.json"), ref)
        a, b = (np.array(r["embedding"]) for r in ref[:2])
        print("cosine(A man is eating food., A man is eating a piece of bread.) =", float(a @ b))
        miniLM_tokens(tok)
        miniLM_encoder_reference(tok, model)
    else:
        print("MiniLM folder not found; minilm_reference.json, minilm_tokens.json and minilm_encoder_reference.* left as they are")


def miniLM_tokens(tok):
    """minilm_tokens.json: every corpus string with its ids (truncated at 256) and untruncated count."""
    full = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    full.no_padding()
    full.no_truncation()
    strings = corpus.tokenizer_strings([c for c in CASES])
    cases = [{"t": s, "ids": tok.encode(s).ids, "n": len(full.encode(s).ids)} for s in strings]
    dump_compact(os.path.join(HERE, "minilm_tokens.json"), {
        "about": "MiniLM token ids from HuggingFace tokenizers (tokenizer.json, no padding, truncation at 256); "
                 "n is the count without truncation. Generated by make_fixtures.py from corpus.py.",
        "max_length": 256, "count": len(cases), "cases": cases})
    print(f"minilm_tokens.json: {len(cases)} strings, {sum(1 for c in cases if c['n'] > 256)} truncated")


def miniLM_encoder_reference(tok, model):
    """minilm_encoder_reference.json (texts, ids) and .f32 (float64 numpy vectors stored as float32 LE)."""
    full = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    full.no_padding()
    full.no_truncation()
    texts = corpus.encoder_texts(lambda s: len(full.encode(s).ids))
    cases, vectors = [], []
    for text in texts:
        ids = tok.encode(text).ids
        cases.append({"t": text, "ids": ids, "n": len(full.encode(text).ids)})
        vectors.append(model.embed(ids, "mean", True))
    dump_compact(os.path.join(HERE, "minilm_encoder_reference.json"), {
        "about": "Texts and MiniLM token ids (truncated at 256; n untruncated) whose numpy float64 embeddings "
                 "(mean pooling, L2-normalised) are in minilm_encoder_reference.f32 as float32 little-endian, "
                 "384 per text in this order. Generated by make_fixtures.py from corpus.py.",
        "dimensions": 384, "count": len(cases), "cases": cases})
    np.asarray(vectors, dtype="<f4").tofile(os.path.join(HERE, "minilm_encoder_reference.f32"))
    lengths = [len(c["ids"]) for c in cases]
    print(f"minilm_encoder_reference: {len(cases)} texts, {min(lengths)}..{max(lengths)} tokens, "
          f"{sum(1 for c in cases if c['n'] > 256)} truncated")


if __name__ == "__main__":
    main()
