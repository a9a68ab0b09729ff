#!/usr/bin/env bash
# One prepared run on a GPU machine that has a Python PyTorch but no .NET and no network (docs/gpu.md):
#   1. put PyTorch's torch/lib and its nvidia/*/lib folders on LD_LIBRARY_PATH;
#   2. unpack the self-contained `external` publish (build/publish-external.sh) and check that every libtorch symbol
#      its libLibTorchSharp.so imports resolves; if not and SHIM_BUILD names a build script, rebuild the shim against
#      this libtorch and check again;
#   3. run `rlhfgym info` and the bench verbs with --device $DEVICE, every JSON line into OUT_DIR/results.jsonl.
# Usage: build/gpu-check.sh TARBALL OUT_DIR
# Env:   PYTHON (python3) whose torch to use · DEVICE (cuda) · SIZE full (d1024 L12 H16 V32000) or small (d64, for a
#        CPU rehearsal) · TORCH_LIB (skip python: a libtorch lib folder) · SHIM_BUILD (script: SHIM_BUILD APP_DIR) ·
#        (build/libtorchsharp/build.sh, given TORCHSHARP_DIR) · STEP_TIMEOUT (seconds per verb, 150) · PEAK_TFLOPS (989: an H200's dense bf16 peak) · ONLY (space list of steps)
# Prints a line per step; OUT_DIR gets log.txt, results.jsonl and symbols.txt (at most 8 files come back from a device).
set -uo pipefail
tarball="$1"; out="$2"
device="${DEVICE:-cuda}"; size="${SIZE:-full}"; py="${PYTHON:-python3}"
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
t0=$(date +%s)
say() { echo "[gpu-check +$(( $(date +%s) - t0 ))s] $*"; }

if [ -z "${TORCH_LIB:-}" ]; then
  TORCH_LIB=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || { say "no torch in $py"; exit 1; }
  "$py" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
  # every folder under site-packages/nvidia that holds shared libraries (cu13 wheels nest them one level deeper)
  nvidia_libs=$("$py" - <<'EOF'
import os, glob, torch
root = os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia")
dirs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "lib*.so*"), recursive=True)})
print(":".join(dirs))
EOF
)
  export LD_LIBRARY_PATH="$TORCH_LIB${nvidia_libs:+:$nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
[ -f "$TORCH_LIB/libtorch_cuda.so" ] && { ldd "$TORCH_LIB/libtorch_cuda.so" | grep "not found" && say "libtorch_cuda.so misses the libraries above"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv

work="${WORK_DIR:-/tmp/rlhfgym-gpu}"
rm -rf "$work" && mkdir -p "$work" && tar -xzf "$tarball" -C "$work" || { say "cannot unpack $tarball"; exit 1; }
app=$(dirname "$(find "$work" -maxdepth 2 -name rlhfgym -type f | head -1)")
[ -x "$app/rlhfgym" ] || { say "no rlhfgym executable in $tarball"; exit 1; }
say "unpacked to $app"

rebuilt=0
rebuild_shim() {
  [ -n "${SHIM_BUILD:-}" ] && [ "$rebuilt" = 0 ] || return 1
  rebuilt=1
  say "rebuilding the shim with $SHIM_BUILD"
  PYTHON="$py" bash "$SHIM_BUILD" "$app" 2>&1 | tail -40
  if bash "$app/check-libtorch.sh" "$app/libLibTorchSharp.so" >>"$out/symbols.txt" 2>&1; then say "rebuilt shim resolves"; else say "rebuilt shim still unresolved"; fi
}
if bash "$app/check-libtorch.sh" "$app/libLibTorchSharp.so" >"$out/symbols.txt" 2>&1; then
  say "packaged libLibTorchSharp.so: every symbol resolves against $TORCH_LIB"
else
  say "packaged libLibTorchSharp.so does not resolve against $TORCH_LIB ($(grep -c . "$out/symbols.txt") lines in symbols.txt):"
  head -20 "$out/symbols.txt"
  rebuild_shim
fi

# step NAME ARGS...: one verb, its whole output in the log, its last line (the JSON object) into results.jsonl
step() {
  local name="$1"; shift
  if [ -n "${ONLY:-}" ] && ! grep -qw -- "$name" <<<"$ONLY"; then return; fi
  say "$name: rlhfgym $*"
  local s=$(date +%s) tmp="$work/$name.out"
  timeout "${STEP_TIMEOUT:-150}" "$app/rlhfgym" "$@" --json >"$tmp" 2>&1
  local rc=$? last
  last=$(tail -1 "$tmp")
  [[ "$last" == "{"* ]] || { tail -15 "$tmp"; last=null; }
  echo "{\"step\":\"$name\",\"rc\":$rc,\"seconds\":$(( $(date +%s) - s )),\"result\":$last}" >>"$out/results.jsonl"
  say "$name: rc $rc; $last"
}

if [ "$size" = full ]; then
  shape=(--d-model 1024 --layers 12 --heads 16); vocab=(--vocab 32000); batches=(64 256); seq=512
else
  shape=(--d-model 64 --layers 2 --heads 4); vocab=(--vocab 512); batches=(4 8); seq=64
fi
b1=${batches[0]}; b2=${batches[1]}
peak=(--peak-tflops "${PEAK_TFLOPS:-989}")

step info info
# symbols can resolve and the shim still fail at run time (a changed layout): then rebuild it once and ask again
if [ "$(tail -1 "$out/results.jsonl" | grep -c '"rc":0,')" = 0 ] && rebuild_shim; then step info info; fi
step forward-b$b1 bench forward --device "$device" "${shape[@]}" "${vocab[@]}" --batch "$b1" --seq-len $seq --dtypes fp32,bf16 "${peak[@]}"
step env-b$b1 bench env --device "$device" "${shape[@]}" --batch "$b1" --steps 128 --repeats 3
step model bench model --device "$device" "${shape[@]}" "${vocab[@]}" --batch "$b1" --seq-len 256 --generation-batch "$b1" --new-tokens 128
step decode-b$b1 bench decode --device "$device" "${shape[@]}" "${vocab[@]}" --batch "$b1" --steps 128 --rounds 3
step train bench train --device "$device" --num-envs 64 --iterations 3
step train-big bench train --device "$device" "${shape[@]}" --num-envs "$b1" --iterations 2
step env-b$b2 bench env --device "$device" "${shape[@]}" --batch "$b2" --steps 128 --repeats 3
step decode-b$b2 bench decode --device "$device" "${shape[@]}" "${vocab[@]}" --batch "$b2" --steps 128 --rounds 3
step forward-b$b2 bench forward --device "$device" "${shape[@]}" "${vocab[@]}" --batch "$b2" --seq-len $seq --dtypes fp32,bf16 "${peak[@]}"
step rm bench rm --device "$device"
say "done"
