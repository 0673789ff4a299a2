"""A plain numpy (float64) reference of the BERT sentence-encoder forward pass that RagEmbed implements.

Written from the BERT paper and the sentence-transformers module layout: embeddings (word + position +
token type 0, LayerNorm), then per layer self-attention (+ residual, LayerNorm) and a GELU feed-forward
(+ residual, LayerNorm); then pooling over the attention mask and optional L2 normalisation.
"""
import json
import math
import os

import numpy as np
from safetensors.numpy import load_file


def erf(x):
    return np.vectorize(math.erf)(x)


def gelu(x, kind):
    if kind == "gelu":  # exact: x * Phi(x)
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if kind in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "relu":
        return np.maximum(x, 0.0)
    raise ValueError(kind)


def layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class ReferenceBert:
    def __init__(self, folder, hidden_act=None):
        with open(os.path.join(folder, "config.json")) as f:
            self.config = json.load(f)
        raw = load_file(os.path.join(folder, "model.safetensors"))
        self.w = {k[5:] if k.startswith("bert.") else k: v.astype(np.float64) for k, v in raw.items()}
        self.act = hidden_act or self.config.get("hidden_act", "gelu")

    def hidden_states(self, ids):
        c, w = self.config, self.w
        n = len(ids)
        hidden, heads = c["hidden_size"], c["num_attention_heads"]
        d = hidden // heads
        eps = c.get("layer_norm_eps", 1e-12)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda name, v: v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q = lin("attention.self.query", x).reshape(n, heads, d).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, heads, d).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, heads, d).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = layer_norm(lin("attention.output.dense", ctx) + x,
                           w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = gelu(lin("intermediate.dense", x), self.act)
            x = layer_norm(lin("output.dense", h) + x,
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        return x

    def embed(self, ids, pooling="mean", normalize=True):
        x = self.hidden_states(ids)
        if pooling == "mean":
            v = x.mean(axis=0)
        elif pooling == "cls":
            v = x[0]
        elif pooling == "max":
            v = x.max(axis=0)
        else:
            raise ValueError(pooling)
        if normalize:
            v = v / max(np.linalg.norm(v), 1e-12)
        return v
