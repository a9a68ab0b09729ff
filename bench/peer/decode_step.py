"""The env's decode step in PyTorch eager: the peer that `rlhfgym bench decode --pytorch PYTHON` times against.

It builds RlhfGym's architecture from an rlhfgym_config.json (RMSNorm, rotate-half rotary, grouped-query attention,
SwiGLU or GELU, tied or separate LM head; the fields RlhfGym's TransformerConfig writes) twice: a reference LM and a
reward model (the same trunk plus a scalar head). Like the env's raw forward, each step feeds one token per row
through both models' KV caches, computes the reference's next-token logits and the RM's per-row value, and copies the
values to the host. Weights are random unless --weights names a directory holding rlhfgym_model.safetensors for the
reference (then --dump-logits writes the last step's logits, which tests compare with RlhfGym's).

The cache is the fastest layout found for PyTorch eager on CPU: preallocated (B, H_kv, capacity, D_head) tensors, every
row at the same position, attention over slots 0..position. Three single-query attention kernels are timed:
  sdpa    torch.nn.functional.scaled_dot_product_attention (PyTorch >= 2.0; skipped on 1.13),
  matmul  softmax(q @ k^T / sqrt(d)) @ v,
  reduce  the same as broadcast multiplies and sums over the key and head dimensions,
each run two ways: the two models one after the other on all --threads, and "+lanes": both at once on two Python
threads with half the intra-op threads each (what RlhfGym does on CPU; the GIL is released inside each op).

Run it alone (prints one JSON object):
  /usr/bin/python3 bench/peer/decode_step.py --config DIR/rlhfgym_config.json --threads 2 --rounds 3
or with --serve, reading one command per line on stdin ("round" times every kernel once, then the step's matrix
products alone, and prints a JSON line; "quit" exits): how the C# bench alternates its rounds with this one's.
The products alone ("matmul_ceiling_s") are timed as RlhfGym times its own matmul ceiling, so the two sides' BLAS
libraries can be told apart from the rest of the step.
Needs numpy and torch (Debian 12: python3-numpy, python3-torch 1.13).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}; only F32 is read")
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"]).copy())
    return out


def blas_library():
    """The BLAS shared library this process mapped (Debian's torch calls whatever libblas.so.3 points to)."""
    try:
        with open("/proc/self/maps") as f:
            names = {line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line.lower()}
        names = sorted(os.path.realpath(n) for n in names if n.startswith("/"))
        return ", ".join(sorted(set(names))) or "none mapped"
    except OSError:
        return "unknown"


class Model:
    """One decoder (RlhfGym's CausalTransformer) with a static KV cache; weights as a flat dict of RlhfGym's names."""

    def __init__(self, c, weights, batch, capacity):
        self.c, self.w = c, weights
        self.heads, self.kv_heads = c["n_heads"], c.get("n_kv_heads", c["n_heads"])
        self.head_dim = c["d_model"] // self.heads
        self.group = self.heads // self.kv_heads
        self.k = [torch.zeros(batch, self.kv_heads, capacity, self.head_dim) for _ in range(c["n_layers"])]
        self.v = [torch.zeros(batch, self.kv_heads, capacity, self.head_dim) for _ in range(c["n_layers"])]
        half = self.head_dim // 2
        inv = 1.0 / c.get("rope_theta", 10000.0) ** (torch.arange(half, dtype=torch.float64) * 2 / self.head_dim)
        angles = torch.outer(torch.arange(capacity, dtype=torch.float64), inv)
        self.cos = torch.cat([angles.cos(), angles.cos()], -1).float()
        self.sin = torch.cat([-angles.sin(), angles.sin()], -1).float()  # rotate-half as a roll
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def norm(self, x, name):
        if self.c.get("norm", "RmsNorm") == "LayerNorm":
            return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w.get(name + ".bias"), self.c.get("norm_eps", 1e-5))
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c.get("norm_eps", 1e-5)) * self.w[name + ".weight"]

    def linear(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def rope(self, x, t0, t):
        cos, sin = self.cos[t0:t0 + t], self.sin[t0:t0 + t]
        return x * cos + x.roll(self.head_dim // 2, -1) * sin

    def mlp(self, x, p):
        kind = self.c.get("mlp", "SwiGlu")
        if kind == "SwiGlu":
            return self.linear(F.silu(self.linear(x, p + "gate_proj")) * self.linear(x, p + "up_proj"), p + "down_proj")
        approximate = "tanh" if kind == "GeluTanh" else "none"
        return self.linear(F.gelu(self.linear(x, p + "up_proj"), approximate=approximate), p + "down_proj")

    def attend(self, q, keys, values, kernel):
        b, h, _, d = q.shape
        if kernel == "sdpa":
            if self.group > 1:
                keys, values = keys.repeat_interleave(self.group, 1), values.repeat_interleave(self.group, 1)
            return F.scaled_dot_product_attention(q, keys, values)
        # Grouped heads without copies: view the queries as (B, H_kv, group, D) against (B, H_kv, S, D).
        q = q.view(b, self.kv_heads, self.group, d)
        if kernel == "matmul":
            p = torch.softmax(torch.matmul(q, keys.transpose(-1, -2)) * self.scale, -1)
            return torch.matmul(p, values).view(b, h, 1, d)
        scores = (q.unsqueeze(3) * keys.unsqueeze(2)).sum(-1) * self.scale       # (B, H_kv, group, S)
        p = torch.softmax(scores, -1)
        return (p.unsqueeze(-1) * values.unsqueeze(2)).sum(3).view(b, h, 1, d)

    def forward(self, tokens, t0, kernel):
        """tokens (B, T) at positions t0..t0+T-1 of every row; fills the cache; returns final-norm hidden (B, T, D)."""
        b, t = tokens.shape
        x = F.embedding(tokens, self.w["embed.weight"])
        for i in range(self.c["n_layers"]):
            p = f"blocks.{i}."
            h = self.norm(x, p + "attn_norm")
            q = self.rope(self.linear(h, p + "attn.q_proj").view(b, t, self.heads, self.head_dim).transpose(1, 2), t0, t)
            k = self.rope(self.linear(h, p + "attn.k_proj").view(b, t, self.kv_heads, self.head_dim).transpose(1, 2), t0, t)
            v = self.linear(h, p + "attn.v_proj").view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
            self.k[i][:, :, t0:t0 + t] = k
            self.v[i][:, :, t0:t0 + t] = v
            keys, values = self.k[i][:, :, :t0 + t], self.v[i][:, :, :t0 + t]
            if t == 1:
                y = self.attend(q, keys, values, kernel)
            else:  # prefill: plain causal attention over the prompt
                kk = keys.repeat_interleave(self.group, 1) if self.group > 1 else keys
                vv = values.repeat_interleave(self.group, 1) if self.group > 1 else values
                scores = torch.matmul(q, kk.transpose(-1, -2)) * self.scale
                scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
                y = torch.matmul(torch.softmax(scores, -1), vv)
            x = x + self.linear(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim), p + "attn.o_proj")
            x = x + self.mlp(self.norm(x, p + "mlp_norm"), p + "mlp.")
        return self.norm(x, "norm")

    def logits(self, hidden):
        return F.linear(hidden, self.w["lm_head.weight"] if "lm_head.weight" in self.w else self.w["embed.weight"])


class Lanes:
    """The two models' steps at once on two threads, each with half the intra-op threads (what RlhfGym does on CPU)."""

    def __init__(self, threads):
        import queue
        import threading
        self.per_lane = max(1, threads // 2)
        self.jobs = [queue.Queue(), queue.Queue()]
        self.done = queue.Queue()
        for q in self.jobs:
            threading.Thread(target=self.work, args=(q,), daemon=True).start()

    def work(self, jobs):
        torch.set_num_threads(self.per_lane)
        with torch.inference_mode():
            while True:
                job = jobs.get()
                try:
                    job()
                    self.done.put(None)
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    self.done.put(e)

    def run(self, first, second):
        self.jobs[0].put(first)
        self.jobs[1].put(second)
        for _ in range(2):
            error = self.done.get()
            if error is not None:
                raise error


def random_weights(c, generator):
    d, dff, v = c["d_model"], c["d_ff"], c["vocab_size"]
    heads, kv = c["n_heads"], c.get("n_kv_heads", c["n_heads"])
    hd = d // heads
    w = {"embed.weight": torch.randn(v, d, generator=generator) * 0.02, "norm.weight": torch.ones(d)}
    for i in range(c["n_layers"]):
        p = f"blocks.{i}."
        shapes = {"attn.q_proj": (heads * hd, d), "attn.k_proj": (kv * hd, d), "attn.v_proj": (kv * hd, d),
                  "attn.o_proj": (d, heads * hd), "mlp.up_proj": (dff, d), "mlp.down_proj": (d, dff)}
        if c.get("mlp", "SwiGlu") == "SwiGlu":
            shapes["mlp.gate_proj"] = (dff, d)
        for name, shape in shapes.items():
            w[p + name + ".weight"] = torch.randn(*shape, generator=generator) * 0.02
        w[p + "attn_norm.weight"] = torch.ones(d)
        w[p + "mlp_norm.weight"] = torch.ones(d)
    if not c.get("tied_embeddings", True):
        w["lm_head.weight"] = torch.randn(v, d, generator=generator) * 0.02
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="an rlhfgym_config.json (the shape of both models)")
    ap.add_argument("--weights", help="directory with the reference's rlhfgym_model.safetensors (default: random)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=8)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="rounds when run alone (each times every kernel)")
    ap.add_argument("--kernels", default="sdpa,matmul,reduce")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokens", help="file of whitespace-separated token ids, batch x (prompt-len + steps), row-major")
    ap.add_argument("--dump-logits", help="write the last decode step's reference logits (B x V, float32, raw) here")
    ap.add_argument("--no-lanes", action="store_true", help="skip the variants that run the two models at once on two threads")
    ap.add_argument("--serve", action="store_true", help="read 'round'/'quit' commands on stdin")
    args = ap.parse_args()
    for name in ("batch", "prompt_len", "steps", "threads", "rounds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        c = json.load(f)
    if c.get("positions", "Rotary") != "Rotary" or c.get("bias") or c.get("qkv_bias") or c.get("rope_scaling"):
        raise SystemExit(f"{args.config}: only rotary, bias-free models without rope scaling are built here")
    kernels = [k for k in args.kernels.split(",") if k]
    for k in kernels:
        if k not in ("sdpa", "matmul", "reduce"):
            raise SystemExit(f"--kernels: unknown kernel '{k}' (sdpa, matmul, reduce)")
    if not hasattr(F, "scaled_dot_product_attention"):
        kernels = [k for k in kernels if k != "sdpa"]
    capacity = args.prompt_len + args.steps + 1
    if capacity > c["max_seq_len"]:
        raise SystemExit(f"prompt-len + steps + 1 = {capacity} exceeds max_seq_len {c['max_seq_len']} in {args.config}")

    g = torch.Generator().manual_seed(args.seed)
    if args.weights:
        ref_w = read_safetensors(os.path.join(args.weights, "rlhfgym_model.safetensors"))
    else:
        ref_w = random_weights(c, g)
    rm_w = random_weights(c, g)
    head = torch.randn(1, c["d_model"], generator=g) / (c["d_model"] + 1)
    if args.tokens:
        with open(args.tokens) as f:
            ids = [int(x) for x in f.read().split()]
        if len(ids) != args.batch * (args.prompt_len + args.steps):
            raise SystemExit(f"--tokens: expected {args.batch * (args.prompt_len + args.steps)} ids, got {len(ids)}")
        tokens = torch.tensor(ids, dtype=torch.int64).view(args.batch, args.prompt_len + args.steps)
    else:
        tokens = torch.randint(3, c["vocab_size"], (args.batch, args.prompt_len + args.steps), generator=g)
    prompt, steps = tokens[:, :args.prompt_len], [tokens[:, args.prompt_len + s:args.prompt_len + s + 1] for s in range(args.steps)]

    lanes = Lanes(args.threads) if args.threads >= 2 and not args.no_lanes else None
    variants = [(k, False) for k in kernels] + ([(k, True) for k in kernels] if lanes else [])

    def name(variant):
        return variant[0] + ("+lanes" if variant[1] else "")

    def one_run(variant, count=args.steps):
        kernel, in_lanes = variant
        """Prefill both models (untimed), then time every decode step of both: the env's raw forward."""
        with torch.inference_mode():
            ref, rm = Model(c, ref_w, args.batch, capacity), Model(c, rm_w, args.batch, capacity)
            ref.forward(prompt, 0, kernel)
            rm.forward(prompt, 0, kernel)
            out = {}

            def ref_step(s, t):
                out["logits"] = ref.logits(ref.forward(t, args.prompt_len + s, kernel)[:, 0])

            def rm_step(s, t):
                F.linear(rm.forward(t, args.prompt_len + s, kernel)[:, 0], head).squeeze(-1).numpy().copy()

            start = time.perf_counter()
            for s, t in enumerate(steps[:count]):
                if in_lanes:
                    lanes.run(lambda: ref_step(s, t), lambda: rm_step(s, t))
                else:
                    ref_step(s, t)
                    rm_step(s, t)
            seconds = time.perf_counter() - start
        return seconds, out["logits"]

    def step_weights(w, lm_head):
        """The weight matrices one decode step multiplies by, in RlhfGym's order (its DecodeStepFlops counts the same)."""
        names = ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        out = [w[f"blocks.{i}.{n}.weight"] for i in range(c["n_layers"]) for n in names if f"blocks.{i}.{n}.weight" in w]
        if lm_head:
            out.append(w["lm_head.weight"] if "lm_head.weight" in w else w["embed.weight"])
        return out

    ref_weights, rm_weights = step_weights(ref_w, True), step_weights(rm_w, False)
    widths = {wt.shape[1] for wt in ref_weights + rm_weights}
    ceiling_inputs = {width: torch.randn(args.batch, width, generator=g) for width in widths}

    def matmul_ceiling(count=args.steps):
        """The step's matrix products alone, with both models' own weights at the step's shapes, once per step: the
        better of the two models one after the other on all threads and (with lanes) each model's in its own lane.
        The same measurement as RlhfGym's matmul_ceiling_gflops, so the two BLAS libraries can be compared."""
        def products(weights):
            for wt in weights:
                F.linear(ceiling_inputs[wt.shape[1]], wt)

        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(count):
                products(ref_weights + rm_weights)
            best = time.perf_counter() - start
            if lanes:
                start = time.perf_counter()
                for _ in range(count):
                    lanes.run(lambda: products(ref_weights), lambda: products(rm_weights))
                best = min(best, time.perf_counter() - start)
        return best

    def one_round():
        times = {}
        for v in variants:
            times[name(v)], logits = one_run(v)
        if args.dump_logits:
            logits.numpy().astype(np.float32).tofile(args.dump_logits)
        best = min(times, key=times.get)
        return {"seconds": {k: round(v, 5) for k, v in times.items()}, "best": best, "best_s": round(times[best], 5),
                "matmul_ceiling_s": round(matmul_ceiling(), 5)}

    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_library(),
            "variants": [name(v) for v in variants], "batch": args.batch, "prompt_len": args.prompt_len, "steps": args.steps}
    for v in variants:  # warm up (allocator, BLAS threads, both lanes)
        one_run(v, count=min(8, args.steps))
    matmul_ceiling(count=min(8, args.steps))
    if args.serve:
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command != "round":
                print(json.dumps({"error": f"unknown command '{command}' (round, quit)"}), flush=True)
                continue
            print(json.dumps(one_round()), flush=True)
        return
    rounds = [one_round() for _ in range(args.rounds)]
    medians = {n: sorted(r["seconds"][n] for r in rounds)[len(rounds) // 2] for n in map(name, variants)}
    best = min(medians, key=medians.get)
    ceiling = sorted(r["matmul_ceiling_s"] for r in rounds)[len(rounds) // 2]
    print(json.dumps({**info, "rounds": rounds, "median_s": medians, "best": best, "best_s": medians[best], "matmul_ceiling_s": ceiling}))


if __name__ == "__main__":
    main()
