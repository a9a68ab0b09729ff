#!/usr/bin/env bash
# Does every libtorch symbol that libLibTorchSharp.so imports resolve against the libtorch on LD_LIBRARY_PATH?
# Usage: LD_LIBRARY_PATH=/path/to/torch/lib[:...] check-libtorch.sh [path/to/libLibTorchSharp.so]
# Prints the unresolved symbols (demangled when c++filt is there) and exits 1 when there are any.
set -uo pipefail
lib="${1:-$(dirname "$0")/libLibTorchSharp.so}"
report=$(ldd -r "$lib" 2>&1)
missing=$(grep -E "undefined symbol|not found" <<<"$report" | grep -v "weak version" || true)
if [ -z "$missing" ]; then
  echo "all symbols of $lib resolve:"
  grep "=>" <<<"$report" | grep -E "torch|c10" || true
  exit 0
fi
echo "unresolved in $lib:"
if command -v c++filt >/dev/null; then c++filt <<<"$missing"; else echo "$missing"; fi
exit 1
