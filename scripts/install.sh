#!/usr/bin/env bash
# Install ponder into a virtual environment (default .venv), with llama-cpp-python built for this CPU.
#
#   scripts/install.sh          the library, the CLI and the default model
#   scripts/install.sh --test   also the test dependencies, ponder train's (torch's CPU build, transformers, TRL, PEFT)
#                               and the test model (SmolLM2-135M)
#
# llama-cpp-python is compiled from source once and its wheel cached under $PONDER_HOME (default
# ~/.cache/ponder) keyed by version, compiler flags, CPU flags and Python version, so re-runs take seconds.
# Why the flags: a native build on CPUs that report AMX segfaults on every multi-token llama_decode, so on
# x86-64 we build natively (it adapts to any CPU, with or without AVX-512) but with AMX switched off.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_VERSION=0.3.36
PYTHON=${PYTHON:-python3}
VENV=${PONDER_VENV:-.venv}
CACHE=${PONDER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ponder}
WITH_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TESTS=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; }

# A GPU backend: PONDER_GPU=cuda|vulkan|metal|none; by default CUDA only where its compiler AND a GPU are present
# (a toolkit without a GPU, as on CI machines, keeps the CPU build), Metal on Apple silicon.
gpu_backend() {
  case "${PONDER_GPU:-auto}" in
    cuda|vulkan|metal|none) echo "${PONDER_GPU}"; return ;;
    auto) ;;
    *) echo "PONDER_GPU must be cuda, vulkan, metal, none or auto" >&2; exit 2 ;;
  esac
  if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo cuda
  elif [ "$(uname -s)" = "Darwin" ] && [ "$(uname -m)" = "arm64" ]; then
    echo metal
  else
    echo none
  fi
}

cmake_args() {
  local no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" gpu
  gpu=$(gpu_backend)
  local extra=""
  case "$gpu" in
    cuda) extra=" -DGGML_CUDA=on" ;;
    vulkan) extra=" -DGGML_VULKAN=on" ;;
    metal) extra=" -DGGML_METAL=on" ;;
  esac
  if [ "$(uname -m)" = "x86_64" ] && echo 'int main(void){return 0;}' | ${CC:-cc} $no_amx -x c -o /dev/null - 2>/dev/null; then
    echo "-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'$extra"
  else
    echo "-DGGML_NATIVE=ON$extra"
  fi
}

# model-written code runs only under bubblewrap (kernel namespaces + seccomp); see SECURITY.md
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing bubblewrap (the sandbox for model-written code)"
    (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null; }) \
      || log "could not install bubblewrap: ponder will refuse to run model-written code until it is installed"
  else
    log "bubblewrap is not installed: ponder refuses to run model-written code until it is (e.g. sudo apt-get install bubblewrap)"
  fi
fi

# the trace explorer's tests drive Debian's headless Chromium through its ChromeDriver
if [ "$WITH_TESTS" = 1 ] && ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium and chromium-driver (the trace explorer's browser tests)"
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }) \
      || log "could not install chromium: the browser tests will be skipped (outside CI) or fail (in CI)"
  else
    log "chromium-driver is not installed: the browser tests are skipped outside CI (e.g. sudo apt-get install chromium chromium-driver)"
  fi
fi

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip wheel

CMAKE_ARGS_CHOSEN=$(cmake_args)
cpu_flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m)
pyver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(printf '%s|%s|%s|%s' "$LLAMA_CPP_VERSION" "$CMAKE_ARGS_CHOSEN" "$cpu_flags" "$pyver" | sha256sum | cut -c1-16)
wheel_dir="$CACHE/wheels/llama-cpp-python-$LLAMA_CPP_VERSION-$key"

have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
if [ "$have" != "$LLAMA_CPP_VERSION" ] || [ ! -f "$VENV/.llama-build-$key" ]; then
  if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python $LLAMA_CPP_VERSION from source (about 6 minutes on 2 cores): CMAKE_ARGS=$CMAKE_ARGS_CHOSEN"
    mkdir -p "$wheel_dir.tmp"
    CMAKE_ARGS="$CMAKE_ARGS_CHOSEN" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
      "${PIP[@]}" wheel -q --no-deps --no-binary llama-cpp-python -w "$wheel_dir.tmp" "llama-cpp-python==$LLAMA_CPP_VERSION"
    rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
  else
    log "using cached llama-cpp-python wheel from $wheel_dir"
  fi
  "${PIP[@]}" install -q --force-reinstall --no-deps "$wheel_dir"/llama_cpp_python-*.whl
  touch "$VENV/.llama-build-$key"
fi

wheel=$(ls "$wheel_dir"/llama_cpp_python-*.whl)
if [ "$WITH_TESTS" = 1 ]; then
  # ponder train's extras come with the tests; torch first, pinned, so pip takes the CPU build rather than a CUDA one
  "${PIP[@]}" install -q "torch==2.13.0"
  "${PIP[@]}" install -q -e ".[test,train]" "llama-cpp-python[server] @ file://$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
  "$VENV/bin/ponder" models pull smollm2-135m
else
  "${PIP[@]}" install -q -e .
  "$VENV/bin/ponder" models pull "$("$VENV/bin/python" -c 'from ponder.defaults import DEFAULT_MODEL; print(DEFAULT_MODEL)')"
fi
log "done: $VENV/bin/ponder is ready"
