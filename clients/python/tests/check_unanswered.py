"""Checks what the Python VectorEnv does when a step goes unanswered (the server frozen with SIGSTOP), and its other
client-side refusals, against a real `rlhfgym serve` process.

Usage: check_unanswered.py ADDRESS PID   (run by tests/RlhfGym.Cli.Tests/UnansweredStepTests.cs)
Prints "unanswered checks passed" and exits 0, or names the failed check and exits 1.
"""
import os
import signal
import sys

import numpy as np

from rlhfgym_client import RemoteEnvError, VectorEnv, health

address, pid = sys.argv[1], int(sys.argv[2])


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


def error_of(call):
    try:
        call()
    except RemoteEnvError as e:
        return e
    check(False, f"{call} raised nothing")


# A step that times out: the next step is refused on the client until a reset of every sub-env.
env = VectorEnv(address, num_envs=np.int64(2), heartbeat=False, connect_timeout=1.0, step_timeout=1.0)
check(env.num_envs == 2, "num_envs given as a numpy integer")
env.reset(seed=1)
env.step([5, 6])
os.kill(pid, signal.SIGSTOP)
try:
    check(error_of(lambda: env.step([5, 6])).code == "timeout", "a step to a frozen server times out")
finally:
    os.kill(pid, signal.SIGCONT)
refused = error_of(lambda: env.step([5, 6]))
check(refused.code == "invalid_state" and "'step' got no reply" in refused.message and "reset()" in refused.message,
      f"the step after an unanswered one is refused, naming why: {refused}")
env.reset(options={"mask": [True, False]})
check(error_of(lambda: env.step([5, 6])).code == "invalid_state", "a masked reset does not end the refusal")
observations, _ = env.reset(seed=2)
observations, *_ = env.step([5, 6])
check(all(o[-1] in (5, 6) for o in observations), "stepping goes on after a full reset")

# After close(), every call says the env is closed.
env.close()
check(error_of(lambda: env.step([5, 6])).code == "closed", "step after close()")
check(error_of(lambda: env.reset()).code == "closed", "reset after close()")

# A bad heartbeat is refused before connecting: no session is left behind on the server.
sessions = health(address)["sessions"]
try:
    VectorEnv(address, num_envs=1, heartbeat=-1)
    check(False, "heartbeat=-1 accepted")
except ValueError as e:
    check("heartbeat" in str(e), str(e))
check(health(address)["sessions"] == sessions, "a refused heartbeat left a session on the server")

print("unanswered checks passed")
