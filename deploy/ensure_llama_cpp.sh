#!/usr/bin/env bash
# Install llama-cpp-python built from source with the AMX kernels off (the default native build
# segfaults on this CPU at the first decode). Skips all work when a good build is installed, and reuses
# a wheel built earlier on this machine (cached under ~/.cache/neurectomy/wheels, keyed by version and
# build flags) instead of compiling again.
# Usage: deploy/ensure_llama_cpp.sh PYTHON VERSION
set -euo pipefail
py=$1
version=$2
here=$(cd "$(dirname "$0")" && pwd)
cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

if "$py" "$here/check_llama_cpp.py" "$version"; then
  exit 0
fi

key=$(printf '%s %s' "$version" "$cmake_args" | sha256sum | cut -c1-16)
cache="${NEURECTOMY_WHEEL_CACHE:-$HOME/.cache/neurectomy/wheels}/llama-cpp-python-$key"
wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $version from source with AMX off (about 5 minutes on 2 cores)..."
  tmp=$(mktemp -d)
  CMAKE_ARGS="$cmake_args" "$py" -m pip wheel --no-cache-dir --no-deps "llama-cpp-python==$version" -w "$tmp"
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-"$version"-*.whl "$cache"/
  rm -rf "$tmp"
  wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl | head -n 1)
else
  echo "Reusing llama-cpp-python wheel built earlier: $wheel"
fi
"$py" -m pip install --no-deps --force-reinstall --no-cache-dir "$wheel"
"$py" "$here/check_llama_cpp.py" "$version"
