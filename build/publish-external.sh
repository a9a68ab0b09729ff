#!/usr/bin/env bash
# A self-contained `rlhfgym` that brings no libtorch: it loads the one on LD_LIBRARY_PATH (a Python PyTorch install's
# torch/lib, with nvidia/*/lib for CUDA). For machines without .NET or network (docs/gpu.md).
# Usage: build/publish-external.sh [OUT_DIR]   → OUT_DIR (default artifacts/rlhfgym-external) and OUT_DIR.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-artifacts/rlhfgym-external}"
rm -rf "$out"
dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:TorchBackend=external -o "$out"
cp build/check-libtorch.sh "$out/"
tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "published $out and $out.tar.gz"
echo "note: this build replaced the Release outputs in src/*/bin with the external backend's; run 'dotnet build -c Release' before using them again"
