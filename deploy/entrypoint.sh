#!/bin/sh
# The image's entrypoint: `rlhfgym serve` on the mounted bundle, every setting from the environment (a Kubernetes
# Deployment's env, a Secret's files), and exec so that rlhfgym is PID 1 and gets SIGTERM itself: it then drains
# (docs/protocol.md, "Draining"). Extra arguments are passed on to `serve`.
#   RLHFGYM_BUNDLE       bundle directory or registry id        (default /bundle)
#   RLHFGYM_BIND         ZeroMQ endpoint                        (default tcp://0.0.0.0:5555: every interface, for a pod)
#   RLHFGYM_DEVICE       auto, cpu or cuda[:N]                  (default auto)
#   RLHFGYM_DRAIN_GRACE  seconds to drain on SIGTERM            (default 25)
#   RLHFGYM_CURVE_SECRET_KEY, RLHFGYM_ALLOW_KEYS                CurveZMQ key file and allow-list (unset: plain TCP)
#   RLHFGYM_PYTHON_TORCH a Python whose torch/lib (and nvidia/*/lib) go on LD_LIBRARY_PATH: the `external` backend
#   RLHFGYM_BIN          the rlhfgym command                    (default /opt/rlhfgym/rlhfgym; may be several words)
set -eu
if [ -n "${RLHFGYM_PYTHON_TORCH:-}" ]; then
  libs=$("$RLHFGYM_PYTHON_TORCH" - <<'PY'
import glob, os, torch
here = os.path.dirname(torch.__file__)
nvidia = os.path.join(os.path.dirname(here), "nvidia")
dirs = [os.path.join(here, "lib")] + sorted({os.path.dirname(p) for p in glob.glob(os.path.join(nvidia, "**", "lib*.so*"), recursive=True)})
print(":".join(dirs))
PY
)
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
set -- serve --env "${RLHFGYM_BUNDLE:-/bundle}" --bind "${RLHFGYM_BIND:-tcp://0.0.0.0:5555}" \
  --device "${RLHFGYM_DEVICE:-auto}" --drain-grace "${RLHFGYM_DRAIN_GRACE:-25}" "$@"
if [ -n "${RLHFGYM_CURVE_SECRET_KEY:-}" ]; then set -- "$@" --curve-secret-key "$RLHFGYM_CURVE_SECRET_KEY"; fi
if [ -n "${RLHFGYM_ALLOW_KEYS:-}" ]; then set -- "$@" --allow-keys "$RLHFGYM_ALLOW_KEYS"; fi
# shellcheck disable=SC2086 # RLHFGYM_BIN may be "dotnet /path/rlhfgym.dll"
exec ${RLHFGYM_BIN:-/opt/rlhfgym/rlhfgym} "$@"
