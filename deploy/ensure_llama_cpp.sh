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
amx_off="-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

# The x86 instruction sets this CPU has, read from /proc/cpuinfo: a fixed list would either crash (SIGILL:
# AVX-512 code on an AMD EPYC without it) or leave speed behind. GGML_NATIVE (-march=native) is not used on
# x86 because it also turns the AMX kernels on where the CPU has them. Elsewhere (ARM, no /proc/cpuinfo
# flags) the native build is used; it has no AMX kernels.
# NEURECTOMY_LLAMA_CMAKE_ARGS replaces the detected flags (an image built for other machines than its builder).
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)
if [ -n "${NEURECTOMY_LLAMA_CMAKE_ARGS:-}" ]; then
  cmake_args="$NEURECTOMY_LLAMA_CMAKE_ARGS $amx_off"
elif [ -n "$cpu_flags" ] && [ "$(uname -m)" = x86_64 ]; then
  cmake_args="-DGGML_NATIVE=OFF $amx_off"
  for pair in sse4_2:SSE42 avx:AVX avx_vnni:AVX_VNNI avx2:AVX2 bmi2:BMI2 fma:FMA f16c:F16C \
              avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if [[ " $cpu_flags " == *" ${pair%%:*} "* ]]; then state=ON; else state=OFF; fi
    cmake_args="$cmake_args -DGGML_${pair##*:}=$state"
  done
else
  cmake_args="-DGGML_NATIVE=ON $amx_off"
fi

if "$py" "$here/check_llama_cpp.py" "$version"; then
  exit 0
fi

key=$(printf '%s %s' "$version" "$cmake_args" | sha256sum | cut -c1-16)
cache="${NEURECTOMY_WHEEL_CACHE:-$HOME/.cache/neurectomy/wheels}/llama-cpp-python-$key"
wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $version from source with AMX off (about 5 minutes on 2 cores): $cmake_args"
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
