"""Tiny random Hugging Face-layout checkpoints with reference logits, for the loader's parity tests.

No transformers or torch here, so the reference is an independent float64 numpy implementation of each architecture
(GPT-2; Llama with grouped-query attention and llama3 rope scaling; Qwen2 with q/k/v biases and a score head; Phi-3
with fused projections), written from the architectures' published descriptions. Safetensors files are written by
hand, which also checks the C# reader against a second writer. Run with Debian's python3-numpy:

    /usr/bin/python3 tests/RlhfGym.Models.Tests/Fixtures/hf/make_fixtures.py
"""
import json
import math
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
IDS = np.array([[1, 7, 33, 2, 60, 5, 18], [40, 3, 3, 11, 25, 63, 0]])


def bf16_round(a):
    """Round float32 to bfloat16 (nearest even); returns (float32 values, uint16 bits)."""
    bits = a.astype(np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return (rounded.astype(np.uint32) << 16).view(np.float32), rounded


def write_safetensors(path, tensors, bf16=()):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        if name in bf16:
            data, dtype = bf16_round(value)[1].tobytes(), "BF16"
        else:
            data, dtype = value.astype("<f4").tobytes(), "F32"
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(q, k, v):
    """q (H, T, D), k/v (H, T, D) → (T, H·D), causal."""
    t, d = q.shape[1], q.shape[2]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
    scores = scores + np.triu(np.full((t, t), -1e30), 1)
    return (softmax(scores) @ v).transpose(1, 0, 2).reshape(t, -1)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1 + np.exp(-x))


def gpt2(rng):
    v, d, layers, heads, inner, npos = 64, 16, 2, 4, 40, 32
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": v, "n_embd": d, "n_layer": layers,
           "n_head": heads, "n_inner": inner, "n_positions": npos, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}
    w = {"transformer.wte.weight": rng.normal(0, 0.3, (v, d)), "transformer.wpe.weight": rng.normal(0, 0.3, (npos, d))}
    for i in range(layers):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = 1 + rng.normal(0, 0.1, d)
        w[p + "ln_1.bias"] = rng.normal(0, 0.1, d)
        w[p + "attn.c_attn.weight"] = rng.normal(0, 0.3, (d, 3 * d))  # Conv1D: (in, out)
        w[p + "attn.c_attn.bias"] = rng.normal(0, 0.1, 3 * d)
        w[p + "attn.c_proj.weight"] = rng.normal(0, 0.3, (d, d))
        w[p + "attn.c_proj.bias"] = rng.normal(0, 0.1, d)
        w[p + "ln_2.weight"] = 1 + rng.normal(0, 0.1, d)
        w[p + "ln_2.bias"] = rng.normal(0, 0.1, d)
        w[p + "mlp.c_fc.weight"] = rng.normal(0, 0.3, (d, inner))
        w[p + "mlp.c_fc.bias"] = rng.normal(0, 0.1, inner)
        w[p + "mlp.c_proj.weight"] = rng.normal(0, 0.3, (inner, d))
        w[p + "mlp.c_proj.bias"] = rng.normal(0, 0.1, d)
        w[p + "attn.bias"] = np.tril(np.ones((1, 1, npos, npos)))  # a causal-mask buffer old checkpoints carry
    w["transformer.ln_f.weight"] = 1 + rng.normal(0, 0.1, d)
    w["transformer.ln_f.bias"] = rng.normal(0, 0.1, d)
    w = {k: a.astype(np.float32) for k, a in w.items()}

    def forward(ids):
        t = len(ids)
        x = w["transformer.wte.weight"][ids].astype(np.float64) + w["transformer.wpe.weight"][:t]
        for i in range(layers):
            p = f"transformer.h.{i}."
            h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, vv = (m.reshape(t, heads, -1).transpose(1, 0, 2) for m in np.split(qkv, 3, -1))
            x = x + attention(q, k, vv) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
            x = x + gelu_new(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]) @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
        return x @ w["transformer.wte.weight"].T, None

    return cfg, w, forward, ()


def rope_frequencies(head_dim, theta, scaling):
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    if scaling is None:
        return inv
    factor, low, high, old = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["original_max_position_embeddings"]
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(f)
        elif wavelen > old / low:
            out.append(f / factor)
        else:
            s = (old / wavelen - low) / (high - low)
            out.append((1 - s) * f / factor + s * f)
    return np.array(out)


def rope(x, inv):
    """x (H, T, D), rotate-half layout: pairs (i, i + D/2)."""
    t, half = x.shape[1], x.shape[2] // 2
    ang = np.outer(np.arange(t), inv)
    cos, sin = np.cos(ang), np.sin(ang)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def llama_like(rng, family):
    v, d, layers, heads, kv, inner, npos = 64, 16, 2, 4, 2, 48, 64
    hd = d // heads
    model_type = {"llama": "llama", "qwen2": "qwen2", "phi3": "phi3"}[family]
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForSequenceClassification", "phi3": "Phi3ForCausalLM"}[family]
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16} if family == "llama" else None
    tied = family == "qwen2"
    cfg = {"architectures": [arch], "model_type": model_type, "vocab_size": v, "hidden_size": d, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inner, "max_position_embeddings": npos,
           "rms_norm_eps": 1e-6, "rope_theta": 500.0, "hidden_act": "silu", "tie_word_embeddings": tied}
    if scaling:
        cfg["rope_scaling"] = scaling
    if family == "qwen2":
        cfg["num_labels"] = 1
    w = {"model.embed_tokens.weight": rng.normal(0, 0.3, (v, d))}
    for i in range(layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, d)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, d)
        q, k, vv = rng.normal(0, 0.3, (heads * hd, d)), rng.normal(0, 0.3, (kv * hd, d)), rng.normal(0, 0.3, (kv * hd, d))
        gate, up = rng.normal(0, 0.3, (inner, d)), rng.normal(0, 0.3, (inner, d))
        if family == "phi3":
            w[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, vv])
            w[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up])
        else:
            w[p + "self_attn.q_proj.weight"], w[p + "self_attn.k_proj.weight"], w[p + "self_attn.v_proj.weight"] = q, k, vv
            w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = gate, up
        if family == "qwen2":
            for n, rows in (("q", heads * hd), ("k", kv * hd), ("v", kv * hd)):
                w[p + f"self_attn.{n}_proj.bias"] = rng.normal(0, 0.1, rows)
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.3, (d, heads * hd))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.3, (d, inner))
    w["model.norm.weight"] = 1 + rng.normal(0, 0.1, d)
    if not tied:
        w["lm_head.weight"] = rng.normal(0, 0.3, (v, d))
    if family == "qwen2":
        w["score.weight"] = rng.normal(0, 0.3, (1, d))
    w = {k: a.astype(np.float32) for k, a in w.items()}
    # Llama's weights are stored as bfloat16: the reference computes with the rounded values.
    bf16 = tuple(w) if family == "llama" else ()
    if bf16:
        w = {k: bf16_round(a)[0] for k, a in w.items()}
    inv = rope_frequencies(hd, 500.0, scaling)

    def get(p, name):
        if family == "phi3" and name in ("q", "k", "v"):
            qkv = w[p + "self_attn.qkv_proj.weight"]
            return {"q": qkv[:heads * hd], "k": qkv[heads * hd:(heads + kv) * hd], "v": qkv[(heads + kv) * hd:]}[name]
        if family == "phi3" and name in ("gate", "up"):
            g, u = np.split(w[p + "mlp.gate_up_proj.weight"], 2)
            return g if name == "gate" else u
        return w[p + ("self_attn." if name in "qkv" else "mlp.") + name + "_proj.weight"]

    def forward(ids):
        t = len(ids)
        x = w["model.embed_tokens.weight"][ids].astype(np.float64)
        for i in range(layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], 1e-6)
            proj = {}
            for n in "qkv":
                proj[n] = h @ get(p, n).T + (w[p + f"self_attn.{n}_proj.bias"] if family == "qwen2" else 0)
            q = rope(proj["q"].reshape(t, heads, hd).transpose(1, 0, 2), inv)
            k = rope(proj["k"].reshape(t, kv, hd).transpose(1, 0, 2), inv)
            vv = proj["v"].reshape(t, kv, hd).transpose(1, 0, 2)
            k, vv = np.repeat(k, heads // kv, 0), np.repeat(vv, heads // kv, 0)
            x = x + attention(q, k, vv) @ w[p + "self_attn.o_proj.weight"].T
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], 1e-6)
            x = x + (silu(h @ get(p, "gate").T) * (h @ get(p, "up").T)) @ w[p + "mlp.down_proj.weight"].T
        x = rms_norm(x, w["model.norm.weight"], 1e-6)
        head = w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]
        score = (x @ w["score.weight"].T)[:, 0] if family == "qwen2" else None
        return x @ head.T, score

    return cfg, w, forward, bf16


def main():
    for name, build in (("gpt2", gpt2), ("llama", lambda r: llama_like(r, "llama")),
                        ("qwen2-rm", lambda r: llama_like(r, "qwen2")), ("phi3", lambda r: llama_like(r, "phi3"))):
        rng = np.random.default_rng(sum(map(ord, name)))
        cfg, weights, forward, bf16 = build(rng)
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(out, "model.safetensors"), weights, bf16)
        results = [forward(row) for row in IDS]
        expected = {"input_ids": IDS.tolist(), "logits": [r[0].round(7).tolist() for r in results]}
        if results[0][1] is not None:
            expected["scores"] = [r[1].round(7).tolist() for r in results]
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f)
        print(name, "logits", np.array(expected["logits"]).shape)


if __name__ == "__main__":
    main()
