"""Checks rlhfgym_client against a running server the way gymnasium's env checker would, without gymnasium.
Usage: python3 check_contract.py ADDRESS. Prints one line per check and exits non-zero on the first failure."""
import sys

import numpy as np

from rlhfgym_client import NO_ACTION, Env, Episode, RemoteEnvError, VectorEnv

address = sys.argv[1]
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAIL {what}")
        sys.exit(1)
    checks += 1
    print(f"ok   {what}")


with VectorEnv(address, num_envs=3) as env:
    vocab, eos = env.spec["vocab_size"], env.spec["eos_ids"][0]
    check(env.server_spec is env.spec, "server_spec is the spec map (what gymnasium.make_vec leaves alone)")
    check(isinstance(env.spec["max_seq_len"], int) and env.spec["max_seq_len"] > env.spec["max_new_tokens"], "spec has max_seq_len")
    check(env.num_envs == 3 and env.single_action_space.n == vocab, "spaces: Discrete(vocab) per sub-env")
    check(env.action_space.shape == (3,) and env.action_space.contains(np.array([1, 2, 3])), "action_space is MultiDiscrete")
    check(env.metadata["autoreset_mode"] in ("NextStep",) or str(env.metadata["autoreset_mode"]).endswith("NEXT_STEP"),
          "metadata autoreset_mode NextStep")
    obs, info = env.reset(seed=4)
    check(isinstance(obs, tuple) and len(obs) == 3 and all(o.dtype == np.int64 for o in obs), "reset: a tuple of int64 arrays")
    check(env.observation_space.contains(obs), "reset observation is in observation_space")
    check(info["prompt_ids"].shape == (3,), "reset info: prompt_ids per sub-env")
    grouped, info = env.reset(seed=6, options={"group_size": np.int64(3), "mask": np.ones(3, dtype=bool)})
    check(len(set(info["prompt_ids"].tolist())) == 1, "numpy group_size and mask: the three sub-envs share one prompt")
    again, _ = env.reset(seed=4)
    check(all(np.array_equal(a, b) for a, b in zip(obs, again)), "same seed, same prompts")
    kept = [o.copy() for o in again]
    rng = np.random.default_rng(0)
    actions = rng.integers(3, vocab, size=3)
    obs1, rewards, terminated, truncated, info = env.step(actions)
    check(rewards.dtype == np.float32 and rewards.shape == (3,), "rewards: float32 per sub-env")
    check(terminated.dtype == np.bool_ and truncated.dtype == np.bool_, "terminations and truncations: bool arrays")
    check(all(np.array_equal(o1[:-1], k) and o1[-1] == a for o1, k, a in zip(obs1, kept, actions)), "observation = prompt + the token")
    check(info["ref_logprob"].dtype == np.float32 and np.all(info["ref_logprob"] <= 0), "info ref_logprob: float32, <= 0")
    check(np.array_equal(env.ref_logprob, info["ref_logprob"]), "env.ref_logprob is the last step's")

    check(all(np.array_equal(a, k) for a, k in zip(again, kept)), "earlier observations unchanged by step (no aliasing)")
    obs1[0][0] = -5
    obs2, *_ = env.step(rng.integers(3, vocab, size=3))
    check(obs2[0][0] != -5, "changing a returned observation does not change the env's")
    check(info["_episode"].dtype == np.bool_ and not info["_episode"].any(), "no episode finished yet: _episode all false")
    # Run to the ends of the episodes: EOS for sub-env 0, the budget for the others.
    seen, steps = {}, 0
    while len(seen) < 3 and steps < 200:
        acts = np.array([eos, 7, 8])
        obs, rewards, terminated, truncated, info = env.step(acts)
        steps += 1
        for i, episode in env.finished_episodes.items():
            seen.setdefault(i, (episode, bool(terminated[i]), bool(truncated[i]), rewards[i]))
            check(info["_episode"][i] and info["episode"][i] is episode, f"sub-env {i}: info episode mirrors finished_episodes")
    check(len(seen) == 3, "every sub-env finished an episode")
    e0, term0, trunc0, reward0 = seen[0]
    check(isinstance(e0, Episode) and term0 and not trunc0 and e0.response[-1] == eos, "EOS ends an episode: terminated, response ends with EOS")
    check(abs(e0.total - float(reward0)) < 1e-4, "episode delivery: the final step pays the episode's total")
    e1 = seen[1][0]
    check(seen[1][2] and not seen[1][1] and e1.response[-1] != eos, "the budget ends an episode: truncated, no EOS")
    check(e1.per_token.shape == e1.response.shape and e1.ref_logprobs.shape == e1.response.shape, "episode arrays per response token")
    check(e1.segments.ndim == 2 and e1.segments.shape[1] == 2, "segments: (K, 2) [start, end]")
    # Next-step autoreset: the step after an end starts a new episode, reward 0, observation = the new prompt.
    obs, rewards, terminated, truncated, info = env.step(np.array([5, 5, 5]))
    check(bool(info["_reset_prompt_ids"][1]) and rewards[1] == 0 and not terminated[1] and not truncated[1],
          "next-step autoreset: the step after an end resets, pays 0 and is not terminal")
    check(len(obs[1]) < len(kept[1]) + len(e1.response), "after autoreset the observation is a prompt, not the old episode")
    scored = env.score([kept[0]], [np.array([5, 9, eos, 0, 0])])
    check(scored[0].response.tolist() == [5, 9, eos], "score reads a padded response through its EOS")
    try:
        env.step(np.array([1.5, 2.0, 3.0]))
        check(False, "float actions refused")
    except ValueError as e:
        check("integer" in str(e), "float actions refused locally, naming the problem")
    try:
        env.step(np.array([5, vocab + 10, 5]))
        check(False, "out-of-vocabulary action refused")
    except RemoteEnvError as e:
        check(e.code == "invalid_argument", "out-of-vocabulary action: invalid_argument")

with VectorEnv(address, num_envs=2, autoreset="disabled", options={"delivery": "online", "dense_as_bandit": False}) as env:
    check(str(env.metadata["autoreset_mode"]).lower().endswith("disabled"), "metadata autoreset_mode Disabled")
    check(env.spec["options"]["delivery"] == "online", "options reach the server")
    env.reset(seed=1)
    paid = np.zeros(2)
    done = np.zeros(2, dtype=bool)
    episodes = {}
    while not done.all():
        acts = np.where(done, NO_ACTION, 6)
        _, rewards, terminated, truncated, _ = env.step(acts)
        paid += np.where(done, 0, rewards)
        episodes.update(env.finished_episodes)
        done |= terminated | truncated
    check(all(abs(paid[i] - episodes[i].online.sum()) < 1e-3 for i in range(2)), "online delivery: steps pay the episode's online rewards")

single = Env(address)
check(single.server_spec["num_envs"] == 1 and single.spec_wire is single.server_spec, "Env.server_spec: the server's spec of its one sub-env")
obs, info = single.reset(seed=3)
check(single.observation_space.contains(obs) and obs.dtype == np.int64, "Env.reset: an int64 token array in the space")
obs2, reward, terminated, truncated, info = single.step(5)
check(isinstance(reward, float) and isinstance(terminated, bool) and obs2[-1] == 5, "Env.step: python scalars, obs grows by the token")
check(not np.shares_memory(obs, obs2), "Env observations are fresh arrays")
check(single.step(np.int32(6))[0][-1] == 6, "Env.step takes a numpy integer")
try:
    single.step(7.0)
    check(False, "Env.step(7.0) accepted: a float must not be truncated to a token id")
except ValueError as e:
    check("integer" in str(e), str(e))
single.close()

try:
    VectorEnv(address, num_envs=1, options={"dense_as_bandit": "yes"})
    check(False, "bad option refused")
except RemoteEnvError as e:
    check(e.code == "invalid_argument" and "dense_as_bandit" in e.message, "a bad option is invalid_argument naming it")
print(f"{checks} checks passed")
