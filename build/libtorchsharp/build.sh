#!/usr/bin/env bash
# Build TorchSharp 0.107.0's native shim (libLibTorchSharp.so) against the torch of a Python install, then copy it
# to DEST_DIR. No find_package(Torch): include dirs and libtorch/libtorch_cpu/libc10 are given directly, so no CUDA
# toolkit / nvcc detection is involved (libtorch.so pulls libtorch_cuda.so in at run time when it is a CUDA build).
#
# Usage: build/libtorchsharp/build.sh DEST_DIR   (TORCHSHARP_DIR: a dotnet/TorchSharp checkout, default ./torchsharp
#        beside this script; for TorchSharp 0.107.0 check out c20b6a1cc574d690707638a488d2583f3b8b983f)
# Env:   PYTHON       python whose torch to use        (default /opt/torch/.venv/bin/python3)
#        TORCH_DIR    skip python, use this torch dir  (must hold include/ and lib/; ABI/std then from headers)
#        BUILD_DIR    build tree                       (default /tmp/libtorchsharp-build)
#        JOBS         parallel jobs                    (default nproc)
#        CXX_STD      17|20|auto                       (default auto: 20 only if torch headers demand it)
#        OPT          optimisation flags               (default -O2)
#        LINK_TORCH_CUDA  ON|OFF                       (default ON)
#        CONFIGURE_ONLY=1 stop after cmake configure;  TARGET=<ninja target> build only that (e.g. an object)
#        CC/CXX       compilers (cmake default: cc/c++, i.e. gcc)
# Prints total time. Exit 1 with the first compiler errors if anything fails.
set -euo pipefail
t0=$(date +%s)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here"
ts="${TORCHSHARP_DIR:-$here/torchsharp}"
dest="${1:-}"
die() { echo "build-libtorchsharp: ERROR: $*" >&2; exit 1; }

[ -n "$dest" ] || [ "${CONFIGURE_ONLY:-0}" = 1 ] || [ -n "${TARGET:-}" ] || die "usage: $0 DEST_DIR"
[ -f "$src/CMakeLists.txt" ] && [ -d "$ts/src/Native/LibTorchSharp" ] || die "TorchSharp's shim sources not found under $ts/src/Native/LibTorchSharp (set TORCHSHARP_DIR)"
command -v cmake >/dev/null || die "cmake not found on PATH"
command -v "${CXX:-g++}" >/dev/null || command -v c++ >/dev/null || die "no C++ compiler (g++/c++) on PATH"
gen="Ninja"; keep_going="-k 0"   # keep going: report every failing file in one run
command -v ninja >/dev/null || { gen="Unix Makefiles"; keep_going="-k"; echo "build-libtorchsharp: ninja not found, using make"; }

abi=""; torch_ver="?"
if [ -z "${TORCH_DIR:-}" ]; then
  PYTHON="${PYTHON:-/opt/torch/.venv/bin/python3}"
  [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null || die "python not found: $PYTHON (set PYTHON or TORCH_DIR)"
  info=$("$PYTHON" - <<'EOF'
import os, torch
d = os.path.dirname(torch.__file__)
print(d)
print(int(bool(torch._C._GLIBCXX_USE_CXX11_ABI)))
print(torch.__version__)
print(torch.utils.cmake_prefix_path)
print(torch.version.cuda or "none")
EOF
) || die "'$PYTHON -c import torch' failed"
  TORCH_DIR=$(sed -n 1p <<<"$info"); abi=$(sed -n 2p <<<"$info"); torch_ver=$(sed -n 3p <<<"$info")
  echo "build-libtorchsharp: torch $torch_ver (cuda $(sed -n 5p <<<"$info")) at $TORCH_DIR, cxx11 abi=$abi, cmake prefix $(sed -n 4p <<<"$info")"
fi
TORCH_DIR="$(cd "$TORCH_DIR" && pwd)" || die "TORCH_DIR does not exist"
[ -f "$TORCH_DIR/include/torch/csrc/api/include/torch/torch.h" ] ||
  die "$TORCH_DIR/include has no C++ API headers (torch/csrc/api/include/torch/torch.h): need a torch install that ships headers (pip wheels do)"
for l in libtorch.so libtorch_cpu.so libc10.so; do [ -f "$TORCH_DIR/lib/$l" ] || die "missing $TORCH_DIR/lib/$l"; done
if [ -z "$abi" ]; then  # no python: the pip/libtorch ABI since 2.7 is cxx11; allow override
  abi="${TORCH_CXX11_ABI:-1}"
fi

std="${CXX_STD:-auto}"
if [ "$std" = auto ]; then
  if grep -qs "C++20 or later compatible compiler is required" "$TORCH_DIR/include/ATen/ATen.h" \
       "$TORCH_DIR/include/torch/csrc/api/include/torch/all.h" "$TORCH_DIR/include/c10/macros/Macros.h"; then std=20; else std=17; fi
fi
echo "build-libtorchsharp: C++$std, generator $gen, jobs ${JOBS:-$(nproc)}"

bdir="${BUILD_DIR:-/tmp/libtorchsharp-build}"
mkdir -p "$bdir"
cmake -S "$src" -B "$bdir" -G "$gen" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="${OPT:--O2} -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="${OPT:--O2} -DNDEBUG" \
  -DTS_SOURCE_DIR="$(cd "$ts" && pwd)" -DTORCH_DIR="$TORCH_DIR" -DTORCH_CXX11_ABI="$abi" -DTS_CXX_STANDARD="$std" \
  -DTS_LINK_TORCH_CUDA="${LINK_TORCH_CUDA:-ON}" >"$bdir/configure.log" 2>&1 ||
  { tail -40 "$bdir/configure.log" >&2; die "cmake configure failed (full log: $bdir/configure.log)"; }
t1=$(date +%s); echo "build-libtorchsharp: configured in $((t1 - t0)) s"
[ "${CONFIGURE_ONLY:-0}" = 1 ] && exit 0

if [ -n "${TARGET:-}" ]; then
  cmake --build "$bdir" --parallel "${JOBS:-$(nproc)}" --target "$TARGET" || die "build of $TARGET failed"
  echo "build-libtorchsharp: built $TARGET in $(( $(date +%s) - t0 )) s"; exit 0
fi
set +e
cmake --build "$bdir" --parallel "${JOBS:-$(nproc)}" -- $keep_going 2>&1 | tee "$bdir/build.log" | grep -vE '^\[[0-9]+/[0-9]+\] Building'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] && [ -f "$bdir/libLibTorchSharp.so" ] ||
  die "build failed, rc=$rc (full log: $bdir/build.log); first errors:
$(grep -m 20 -E 'error:|Error [0-9]|FAILED' "$bdir/build.log" || true)"
t2=$(date +%s); echo "build-libtorchsharp: compiled+linked in $((t2 - t1)) s"

mkdir -p "$dest"
cp -f "$bdir/libLibTorchSharp.so" "$dest/libLibTorchSharp.so"
echo "build-libtorchsharp: wrote $dest/libLibTorchSharp.so ($(du -h "$dest/libLibTorchSharp.so" | cut -f1)); NEEDED: $(readelf -d "$dest/libLibTorchSharp.so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
# sanity: every symbol resolves against this torch (RUNPATH has $TORCH_DIR/lib)
if unresolved=$(LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd -r "$dest/libLibTorchSharp.so" 2>&1 | grep -E "undefined symbol|not found"); then
  echo "build-libtorchsharp: WARNING: ldd -r reports unresolved symbols/libraries:" >&2; echo "$unresolved" | head -20 >&2
else
  echo "build-libtorchsharp: ldd -r: all symbols resolve against $TORCH_DIR/lib"
fi
n=$(nm -D --defined-only "$dest/libLibTorchSharp.so" | grep -c ' T THS' || true)
echo "build-libtorchsharp: exports $n THS* functions (packaged 0.107.0 shim: 1164); total $(( $(date +%s) - t0 )) s (torch $torch_ver)"
