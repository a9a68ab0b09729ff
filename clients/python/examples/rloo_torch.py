"""RLOO in PyTorch against a served RlhfGym env, top to bottom in one file (CleanRL style).

The policy starts from the env's own reference (SFT) model, downloaded through the protocol's assets (a Hugging Face
Llama checkpoint), so the KL to the reference is exactly the env's: each step reports log pi_ref of the token taken.
Each iteration samples k responses per prompt (group_size), pays each its episode return (the sum of the env's dense
per-token rewards) minus beta times its KL to the reference, and takes one gradient step of REINFORCE with the
leave-one-out baseline (RLOO: Ahmadian et al., 2024). The env's gold judge (PhraseWorld) scores responses on held-out
prompts before and after training.

Usage: python3 rloo_torch.py [--address tcp://127.0.0.1:5555] [--iterations 30] [--seed 1] ...  (--help)
Needs: rlhfgym_client (clients/python), numpy, PyTorch (Debian: python3-torch 1.13 works).
"""
import argparse
import json
import os
import struct
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from rlhfgym_client import NO_ACTION, VectorEnv

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--address", default="tcp://127.0.0.1:5555")
p.add_argument("--env", default=None, help="env id or bundle on the server (default: the server's)")
p.add_argument("--iterations", type=int, default=30)
p.add_argument("--prompts", type=int, default=8, help="prompts per iteration")
p.add_argument("--k", type=int, default=4, help="samples per prompt (the RLOO group)")
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--beta", type=float, default=0.05, help="KL coefficient (per token, k1 estimator)")
p.add_argument("--eval-prompts", type=int, default=64)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
args = p.parse_args()
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)


# --- the model: a Llama read from the Hugging Face checkpoint the env serves ---------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            assert info["dtype"] == "F32", info["dtype"]
            out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=np.float32).reshape(info["shape"]).copy())
    return out


class Llama(torch.nn.Module):
    """transformers' Llama: RMSNorm, rotate-half rotary, grouped-query attention, SwiGLU. Left-padded batches."""

    def __init__(self, config, weights):
        super().__init__()
        self.c = config
        self.w = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v) for k, v in weights.items()})

    def p(self, name):
        return self.w[name.replace(".", "__")]

    def norm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * self.p(name)

    def forward(self, tokens, mask):
        c = self.c
        b, t = tokens.shape
        heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        hd = c["hidden_size"] // heads
        pos = (mask.cumsum(-1) - 1).clamp(min=0).float()                         # left padding: positions start at 0
        inv = 1.0 / c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd)
        ang = pos[..., None] * inv                                              # (B, T, hd/2)
        cos, sin = torch.cat([ang.cos(), ang.cos()], -1)[:, None], torch.cat([ang.sin(), ang.sin()], -1)[:, None]
        allowed = torch.ones(t, t, dtype=torch.bool).tril()[None, None] & mask[:, None, None, :].bool()
        x = self.p("model.embed_tokens.weight")[tokens]
        for i in range(c["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            h = self.norm(x, pre + "input_layernorm.weight")
            q = (h @ self.p(pre + "self_attn.q_proj.weight").T).view(b, t, heads, hd).transpose(1, 2)
            k = (h @ self.p(pre + "self_attn.k_proj.weight").T).view(b, t, kv, hd).transpose(1, 2)
            v = (h @ self.p(pre + "self_attn.v_proj.weight").T).view(b, t, kv, hd).transpose(1, 2)
            rot = lambda z: torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1)  # noqa: E731
            q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
            k, v = k.repeat_interleave(heads // kv, 1), v.repeat_interleave(heads // kv, 1)
            att = (q @ k.transpose(-1, -2)) / hd ** 0.5
            att = att.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
            x = x + (att @ v).transpose(1, 2).reshape(b, t, -1) @ self.p(pre + "self_attn.o_proj.weight").T
            h = self.norm(x, pre + "post_attention_layernorm.weight")
            gate, up = h @ self.p(pre + "mlp.gate_proj.weight").T, h @ self.p(pre + "mlp.up_proj.weight").T
            x = x + (F.silu(gate) * up) @ self.p(pre + "mlp.down_proj.weight").T
        x = self.norm(x, "model.norm.weight")
        head = self.p("model.embed_tokens.weight") if c.get("tie_word_embeddings") else self.p("lm_head.weight")
        return x @ head.T


def left_pad(seqs, pad):
    width = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, width - len(s):] = torch.as_tensor(s)
        mask[i, width - len(s):] = 1
    return tokens, mask


# --- rollouts: one token per step for every sub-env, until every episode has ended ---------------------------------
def rollout(env, policy, seed, group_size):
    obs, _ = env.reset(seed=seed, options={"group_size": group_size})
    prompts = [o.tolist() for o in obs]
    seqs = [list(p) for p in prompts]
    done = np.zeros(env.num_envs, dtype=bool)
    episodes = {}
    with torch.no_grad():
        while not done.all():
            tokens, mask = left_pad(seqs, env.spec["pad_id"])
            logits = policy(tokens, mask)[:, -1]
            sampled = torch.distributions.Categorical(logits=logits).sample().numpy()
            actions = np.where(done, NO_ACTION, sampled)
            obs, _, terminated, truncated, _ = env.step(actions)
            for i in np.flatnonzero(~done):
                seqs[i].append(int(actions[i]))
            episodes.update(env.finished_episodes)
            done |= terminated | truncated
    return prompts, [episodes[i] for i in range(env.num_envs)]


def response_logprobs(policy, prompts, episodes, pad):
    """log pi(y_t | x, y_<t) for every response token, as one padded (B, L) tensor plus its mask."""
    seqs = [p + e.response.tolist() for p, e in zip(prompts, episodes)]
    tokens, mask = left_pad(seqs, pad)
    logp = F.log_softmax(policy(tokens, mask)[:, :-1], -1).gather(-1, tokens[:, 1:, None]).squeeze(-1)
    width = max(len(e.response) for e in episodes)
    resp_mask = torch.zeros(len(seqs), width)
    for i, e in enumerate(episodes):
        resp_mask[i, width - len(e.response):] = 1
    return logp[:, -width:] * resp_mask, resp_mask


def evaluate(env, policy, seed):
    _, episodes = rollout(env, policy, seed, group_size=1)
    return float(np.mean([e.gold for e in episodes])), float(np.mean([len(e.response) for e in episodes]))


# --- training ---------------------------------------------------------------------------------------------------------
start = time.time()
with VectorEnv(args.address, env=args.env, num_envs=args.prompts * args.k, autoreset="disabled") as env, \
        VectorEnv(args.address, env=args.env, num_envs=args.eval_prompts, autoreset="disabled",
                  options={"prompt_split": "test"}) as eval_env:
    with tempfile.TemporaryDirectory() as assets:
        env.download_assets(assets)
        config = json.load(open(os.path.join(assets, "reference", "config.json")))
        policy = Llama(config, read_safetensors(os.path.join(assets, "reference", "model.safetensors")))
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.lr)
    gold_before, length_before = evaluate(eval_env, policy, seed=10_000)
    print(f"before: gold {gold_before:.4f} on {args.eval_prompts} test prompts, length {length_before:.1f}", flush=True)
    for iteration in range(args.iterations):
        prompts, episodes = rollout(env, policy, seed=int(rng.integers(1 << 31)), group_size=args.k)
        logp, resp_mask = response_logprobs(policy, prompts, episodes, env.spec["pad_id"])
        width = resp_mask.shape[1]
        ref = torch.zeros_like(logp)
        for i, e in enumerate(episodes):
            ref[i, width - len(e.response):] = torch.from_numpy(e.ref_logprobs)
        kl = ((logp.detach() - ref) * resp_mask).sum(-1)                         # k1 estimate of KL per sequence
        task = torch.tensor([e.total for e in episodes])                        # sum of the env's dense rewards
        returns = (task - args.beta * kl).view(args.prompts, args.k)
        baseline = (returns.sum(-1, keepdim=True) - returns) / (args.k - 1)      # leave-one-out
        advantages = (returns - baseline).view(-1)
        loss = -(advantages * logp.sum(-1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"iteration {iteration + 1:3d}: return {task.mean():7.3f}  kl {kl.mean():6.3f}  "
              f"gold {np.mean([e.gold for e in episodes]):7.3f}  length {resp_mask.sum(-1).mean():5.1f}", flush=True)
    gold_after, length_after = evaluate(eval_env, policy, seed=10_000)
    print(f"after:  gold {gold_after:.4f} on the same test prompts, length {length_after:.1f}", flush=True)
    summary = {"gold_before": round(gold_before, 4), "gold_after": round(gold_after, 4), "length_before": round(length_before, 2),
               "length_after": round(length_after, 2), "iterations": args.iterations, "episodes_per_iteration": env.num_envs,
               "seconds": round(time.time() - start, 1)}
    if args.json:
        print(json.dumps(summary))
