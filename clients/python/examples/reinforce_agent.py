"""A small REINFORCE agent in pure Python against a served env: a softmax policy over a handful of candidate tokens
per step (a bandit over tokens), trained on the env's episode returns with a moving-average baseline.
Usage: python3 reinforce_agent.py [ADDRESS]"""
import math
import random
import sys

from rlhfgym_client import NO_ACTION, VectorEnv

address = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
with VectorEnv(address, num_envs=8, autoreset="disabled", options={"max_new_tokens": 16}) as env:
    vocab, eos = env.spec["vocab_size"], env.spec["eos_ids"][0]
    logits = [0.0] * vocab            # one preference per token id (ignores context: a deliberately tiny agent)
    baseline, lr = 0.0, 0.5
    for iteration in range(20):
        env.reset(seed=iteration)
        done = [False] * env.num_envs
        chosen = [[] for _ in range(env.num_envs)]
        returns = [0.0] * env.num_envs
        while not all(done):
            z = max(logits)
            weights = [math.exp(l - z) for l in logits]
            actions = []
            for b in range(env.num_envs):
                a = NO_ACTION if done[b] else random.choices(range(vocab), weights)[0]
                actions.append(a)
                if a >= 0:
                    chosen[b].append(a)
            _, rewards, terminated, truncated, _ = env.step(actions)
            for b in range(env.num_envs):
                if not done[b]:
                    returns[b] += float(rewards[b])
                    done[b] = bool(terminated[b] or truncated[b])
        total = sum(weights)
        for b in range(env.num_envs):
            advantage = returns[b] - baseline
            for a in chosen[b]:
                for t in range(vocab):
                    logits[t] -= lr * advantage * (weights[t] / total) / len(chosen[b])
                logits[a] += lr * advantage / len(chosen[b])
        baseline = 0.9 * baseline + 0.1 * sum(returns) / len(returns)
        print(f"iteration {iteration:2d}: mean return {sum(returns) / len(returns):7.3f}")
