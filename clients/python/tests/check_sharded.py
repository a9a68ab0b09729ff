"""Checks ShardedVectorEnv against three real `rlhfgym serve` processes, killing one with SIGKILL mid-run.

Usage: check_sharded.py ADDR1,ADDR2,ADDR3 PID1,PID2,PID3   (run by tests/RlhfGym.Cli.Tests/ShardedEnvTests.cs)
Prints "sharded checks passed" and exits 0, or names the failed check and exits 1.
"""
import os
import signal
import sys
import tempfile
import time

import numpy as np

from rlhfgym_client import NoServerLeft, RemoteEnvError, ShardedVectorEnv

addresses = sys.argv[1].split(",")
pids = [int(p) for p in sys.argv[2].split(",")]


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


# Bad arguments are named.
for bad, words in [([], "non-empty"), ("tcp://127.0.0.1:1", "non-empty list"), (["tcp://a:1", "tcp://a:1"], "listed twice")]:
    try:
        ShardedVectorEnv(bad)
        check(False, f"{bad!r} accepted")
    except ValueError as e:
        check(words in str(e), f"error for {bad!r} names the problem: {e}")
try:
    ShardedVectorEnv(addresses, num_envs=0)
    check(False, "num_envs 0 accepted")
except ValueError as e:
    check("num_envs" in str(e), str(e))

log = []
env = ShardedVectorEnv(addresses, num_envs=6, heartbeat=False, connect_timeout=3.0, log=log.append)
check(env.spec["num_envs"] == 6 and env.server_spec is env.spec, "spec (and server_spec) num_envs is the sharded total")
check([s.sub_envs for s in env.servers] == [2, 2, 2], f"contiguous slices 2/2/2, got {env.servers}")
with tempfile.TemporaryDirectory() as assets:
    paths = env.download_assets(assets)
    check("reference/config.json" in paths and os.path.getsize(paths["reference/config.json"]) > 0,
          f"assets download from a server of the sharded env: {sorted(paths)}")
observations, info = env.reset(seed=11)
check(len(observations) == 6 and all(o.dtype == np.int64 for o in observations), "six int64 observations")
check(len(info["prompt_ids"]) == 6, "six prompt ids")
check(env.observation_space.contains(observations), "the reset observations are in observation_space")
# The same seed gives the same prompts; a reset without one goes on with each session's stream, drawing new ones.
seeded = list(info["prompt_ids"])
check(list(env.reset(seed=11)[1]["prompt_ids"]) == seeded, "reset(seed=11) twice: the same prompts")
unseeded = [list(env.reset()[1]["prompt_ids"]) for _ in range(2)]
check(unseeded[0] != seeded and unseeded[1] != seeded and unseeded[0] != unseeded[1],
      f"unseeded resets after reset(seed=11) draw new prompts: {seeded} then {unseeded}")
observations, info = env.reset(seed=11)
try:
    env.reset(options={"group_size": 0})
    check(False, "group_size 0 accepted")
except ValueError as e:
    check("group_size" in str(e), str(e))
# An ignored action (a sub-env waiting for its next-step autoreset) must still fit 32 bits, as the server requires.
eos_first = [env.spec["eos_ids"][0]] + [5] * 5
env.step(eos_first)
try:
    env.step([2**40] + [5] * 5)
    check(False, "an ignored action beyond 32 bits accepted")
except RemoteEnvError as e:
    check(e.code == "invalid_argument" and "32-bit" in e.message, str(e))
observations, info = env.reset(seed=11)

rng = np.random.default_rng(3)
vocab, eos = env.spec["vocab_size"], env.spec["eos_ids"][0]
ended_before = np.zeros(6, dtype=bool)
killed_at, lost_at, finished_after, slowest = None, {}, 0, 0.0
for step in range(80):
    # The kill lands when both of server 1's sub-envs (2 and 3) have an episode in flight.
    if killed_at is None and step >= 10 and not ended_before[2] and not ended_before[3]:
        os.kill(pids[1], signal.SIGKILL)
        killed_at = step
    actions = np.where(rng.random(6) < 0.12, eos, rng.integers(0, vocab, 6)).astype(np.int64)
    started = time.monotonic()
    observations, rewards, terminated, truncated, info = env.step(actions)
    slowest = max(slowest, time.monotonic() - started)
    for b in range(6):
        if info["lost"][b]:
            check(truncated[b] and not terminated[b] and info["episode"][b] is None and rewards[b] == 0,
                  f"sub-env {b}: a lost episode is truncated with nothing to learn from")
            check(b not in lost_at, f"sub-env {b} reported lost twice")
            lost_at[b] = step
        elif terminated[b] or truncated[b]:
            check(info["episode"][b] is not None, f"sub-env {b}: a finished episode has its rewards")
            if killed_at is not None and step > killed_at and b in (2, 3):
                finished_after += 1
        if lost_at.get(b) == step - 1:
            check(info["_reset_prompt_ids"][b], f"sub-env {b}: the step after the loss is its reset step")
            check(list(observations[b]) == list(env._prompts[b]), f"sub-env {b}: its observation is the new prompt")
        ended_before[b] = terminated[b] or truncated[b]
check(killed_at is not None, "the kill happened")
check(sorted(lost_at) == [2, 3] and set(lost_at.values()) == {killed_at}, f"sub-envs 2 and 3 lost at the kill, got {lost_at}")
check(finished_after > 0, "the moved sub-envs finished episodes on their new servers")
check(slowest < 20, f"no step stalls until the step timeout (slowest {slowest:.1f} s)")
check(env.servers_lost == 1 and env.episodes_lost == 2, f"one server and two episodes lost, got {env.servers_lost}, {env.episodes_lost}")
check(not env.servers[1].alive and env.servers[0].sub_envs + env.servers[2].sub_envs == 6, f"sub-envs moved: {env.servers}")
check(any("sub-envs move" in line for line in log), f"the loss was logged: {log}")

# A full reset spreads over what is left: 3 + 3.
env.reset(seed=12)
check([env.servers[0].sub_envs, env.servers[2].sub_envs] == [3, 3], f"re-spread 3/3, got {env.servers}")

# Disabled autoreset: a lost sub-env is finished (NO_ACTION) until a masked reset moves it to a live server.
not_eos = (eos + 1) % vocab
disabled = ShardedVectorEnv(addresses, num_envs=4, autoreset="disabled", heartbeat=False, connect_timeout=3.0)
check(not disabled.servers[1].alive and [disabled.servers[0].sub_envs, disabled.servers[2].sub_envs] == [2, 2],
      f"a dead server is left out when the env is made: {disabled.servers}")
disabled.reset(seed=5)
disabled.step(np.full(4, not_eos, dtype=np.int64))
os.kill(pids[2], signal.SIGKILL)
_, rewards, terminated, truncated, info = disabled.step(np.full(4, not_eos, dtype=np.int64))
check(list(info["lost"]) == [False, False, True, True] and list(truncated) == [False, False, True, True],
      f"server 2's sub-envs lost: {info['lost']}")
try:
    disabled.step(np.full(4, not_eos, dtype=np.int64))
    check(False, "a token for a lost, finished sub-env was accepted under disabled autoreset")
except RemoteEnvError as e:
    check(e.code == "invalid_state" and "-1" in str(e), str(e))
try:
    disabled.step(np.array([vocab, not_eos, -1, -1], dtype=np.int64))
    check(False, "a token id outside the vocabulary was accepted")
except RemoteEnvError as e:
    check(e.code == "invalid_argument" and "sub-env 0" in str(e), str(e))
_, _, _, _, info = disabled.step(np.array([not_eos, not_eos, -1, -1], dtype=np.int64))
check(not info["lost"].any(), "no second loss report")
observations, _ = disabled.reset(options={"mask": [False, False, True, True]})
check(disabled.servers[0].sub_envs == 4, f"the masked reset moved them to server 0: {disabled.servers}")
check(list(observations[2]) == list(disabled._prompts[2]), "a moved sub-env's observation is its new prompt")
_, _, _, _, info = disabled.step(np.full(4, not_eos, dtype=np.int64))
check(not info["lost"].any(), "all four step on server 0")

# With every server gone, a reset says so by name (after waiting connect_timeout for one to come back).
os.kill(pids[0], signal.SIGKILL)
_, _, _, truncated, info = env.step(np.full(6, not_eos, dtype=np.int64))
check(info["lost"].all() or truncated.all(), "every episode lost with the last servers")
_, _, _, truncated, info = disabled.step(np.full(4, not_eos, dtype=np.int64))
check(info["lost"].all(), "the disabled env lost all four with server 0")
disabled.close()
try:
    env.reset(seed=13)
    check(False, "a reset with no server left succeeded")
except NoServerLeft as e:
    check(e.code == "no_server" and all(a in str(e) for a in addresses), f"NoServerLeft names every server: {e}")
env.close()
print("sharded checks passed")
