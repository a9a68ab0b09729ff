"""An independent reference: the logits of a Hugging Face Llama-family checkpoint (config.json + model.safetensors),
computed in float64 numpy from transformers' definition of the architecture (RMSNorm, rotary embeddings with
rotate_half, grouped-query attention, SwiGLU). Used to check `rlhfgym export --hf` against TorchSharp.
Usage: python3 llama_numpy.py CHECKPOINT_DIR TOKEN_ID... -> prints the logits as JSON rows."""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return tensors


def rms_norm(x, weight, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def logits(directory, tokens):
    config = json.load(open(f"{directory}/config.json"))
    assert config["model_type"] in ("llama", "qwen2", "mistral"), config["model_type"]
    w = read_safetensors(f"{directory}/model.safetensors")
    d, n_heads = config["hidden_size"], config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads", n_heads)
    head_dim = d // n_heads
    eps, theta = config["rms_norm_eps"], config.get("rope_theta", 10000.0)
    t = len(tokens)
    x = w["model.embed_tokens.weight"][tokens]
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    cos, sin = np.cos(np.concatenate([freqs, freqs], -1)), np.sin(np.concatenate([freqs, freqs], -1))
    causal = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            bias = w.get(p + f"self_attn.{name}.bias")
            return y if bias is None else y + bias

        q = proj("q_proj").reshape(t, n_heads, head_dim).transpose(1, 0, 2)
        k = proj("k_proj").reshape(t, n_kv, head_dim).transpose(1, 0, 2)
        v = proj("v_proj").reshape(t, n_kv, head_dim).transpose(1, 0, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, n_heads // n_kv, axis=0), np.repeat(v, n_heads // n_kv, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim) + causal
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + attn.transpose(1, 0, 2).reshape(t, d) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings", False) else w["lm_head.weight"]
    return x @ head.T


if __name__ == "__main__":
    out = logits(sys.argv[1], [int(a) for a in sys.argv[2:]])
    print(json.dumps(out.tolist()))
