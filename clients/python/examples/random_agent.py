"""Step a served env with random tokens and print, as one JSON line, what came back (used by the test suite to compare
the Python client with the C# env). Usage: python3 random_agent.py ADDRESS SEED STEPS [SERVER_KEY CLIENT_SECRET_KEY]"""
import json
import random
import sys

from rlhfgym_client import VectorEnv

address, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
curve = {"server_key": sys.argv[4], "client_secret_key": sys.argv[5]} if len(sys.argv) > 5 else {}
with VectorEnv(address, num_envs=4, **curve) as env:
    observations, _ = env.reset(seed=seed)
    prompts = [o.tolist() for o in observations]
    rng = random.Random(seed)
    eos = env.spec["eos_ids"][0]
    rewards, actions_taken = [], []
    for _ in range(steps):
        actions = [eos if rng.random() < 0.15 else rng.randrange(3, env.spec["vocab_size"]) for _ in range(env.num_envs)]
        actions_taken.append(actions)
        _, r, terminated, truncated, info = env.step(actions)
        rewards.append(r.tolist())
    print(json.dumps({"prompts": prompts, "actions": actions_taken, "rewards": rewards}))
