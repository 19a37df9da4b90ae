#!/usr/bin/env bash
# Builds llama.cpp's llama-server and llama-bench (CPU only, Release) from the llama.cpp source
# node-llama-cpp ships (node_modules/node-llama-cpp/llama/gitRelease.bundle), for `npm run bench`'s
# anchor and `npm run bench:prefill`'s.
#
# Same SIMD level as the server: node-llama-cpp's prebuilt is built with GGML_NATIVE=OFF and
# GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS (one libggml-cpu-<variant>.so per instruction-set
# level, the best one the CPU supports picked at load time). Building all ~14 variants takes far
# too long on 2 cores, so this script asks the prebuilt which variant it loads here
# (cpu-variant.mjs) and builds llama-server statically with GGML_NATIVE=OFF and exactly that
# variant's instruction sets (read from the bundle's own ggml/src/CMakeLists.txt). OpenMP is off
# and llamafile sgemm on, as in the prebuilt (its libggml-cpu links no libgomp).
#
# Cache: $INFERFLUX_LLAMA_SERVER_CACHE (default ~/.cache/inferflux/llama-server)/<bundle sha256>/<variant>/llama-server
# (llama-bench beside it), outside the repo, reused when both are present. Prints the binary's path as the last line of stdout.
# `build.sh --print-path` builds nothing: prints where the binary is (exit 0) or would be (exit 1).
# Env: INFERFLUX_LLAMA_CPU_VARIANT forces a variant; BUILD_JOBS (default 2).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
llama_dir="$repo/node_modules/node-llama-cpp/llama"
bundle="$llama_dir/gitRelease.bundle"
[ -f "$bundle" ] || { echo "build-llama-server: $bundle not found (run npm ci first)" >&2; exit 1; }

hash="$(sha256sum "$bundle" | cut -d' ' -f1)"
tag="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).tag)' "$llama_dir/llama.cpp.info.json")"
variant="${INFERFLUX_LLAMA_CPU_VARIANT:-$(cd "$repo" && node bench/llama-server/cpu-variant.mjs)}"
cache_root="${INFERFLUX_LLAMA_SERVER_CACHE:-$HOME/.cache/inferflux/llama-server}"
out_dir="$cache_root/$hash/$variant"
bin="$out_dir/llama-server"

if [ "${1:-}" = "--print-path" ]; then
    echo "$bin"
    [ -x "$bin" ]
    exit
fi

if [ -x "$bin" ] && [ -x "$out_dir/llama-bench" ]; then
    echo "build-llama-server: cached (llama.cpp $tag, bundle sha256 $hash, cpu variant $variant)" >&2
    echo "$bin"
    exit 0
fi

# Build tools from Debian when missing (apt-get needs root; otherwise say what to install).
missing=()
for tool in cmake g++ make git; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build-llama-server: installing ${missing[*]} with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake g++ make git ca-certificates >&2
    else
        echo "build-llama-server: missing ${missing[*]}; install them (Debian: sudo apt-get install cmake g++ make git) and re-run" >&2
        exit 1
    fi
fi

work="$cache_root/$hash/build-$variant.$$"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
echo "build-llama-server: cloning $bundle ($tag) into $work" >&2
git clone -q "$bundle" "$work/src" 2>/dev/null

# The variant's features, from the same source's CMakeLists (x86: ggml_add_cpu_backend_variant(name FEAT...)).
feats="$(sed -n "s/^[[:space:]]*ggml_add_cpu_backend_variant($variant[[:space:]]\+\([^)]*\))/\1/p" "$work/src/ggml/src/CMakeLists.txt" | head -1)"
if ! grep -q "ggml_add_cpu_backend_variant($variant\b" "$work/src/ggml/src/CMakeLists.txt"; then
    echo "build-llama-server: cpu variant '$variant' is not defined in this llama.cpp's ggml/src/CMakeLists.txt" >&2
    exit 1
fi
simd=(-DGGML_NATIVE=OFF)
for f in SSE42 AVX AVX2 BMI2 AVX_VNNI FMA F16C AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8 AMX_BF16; do
    if [[ " $feats " == *" $f "* ]]; then simd+=("-DGGML_$f=ON"); else simd+=("-DGGML_$f=OFF"); fi
done
echo "build-llama-server: cpu variant $variant -> ${simd[*]}" >&2

jobs="${BUILD_JOBS:-2}"
nice -n 15 cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_OPENMP=OFF -DGGML_LLAMAFILE=ON \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    "${simd[@]}" >"$work/cmake.log" 2>&1 || { tail -40 "$work/cmake.log" >&2; exit 1; }
echo "build-llama-server: compiling llama-server and llama-bench with -j$jobs (several minutes on 2 cores)" >&2
nice -n 15 cmake --build "$work/build" --target llama-server llama-bench -j "$jobs" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }

mkdir -p "$out_dir"
cp "$work/build/bin/llama-bench" "$out_dir/llama-bench"
cp "$work/build/bin/llama-server" "$bin.tmp"
printf '{"llamaCppTag":"%s","bundleSha256":"%s","cpuVariant":"%s","cmakeSimd":"%s","builtAt":"%s"}\n' \
    "$tag" "$hash" "$variant" "${simd[*]}" "$(date -u +%FT%TZ)" >"$out_dir/build-info.json"
mv "$bin.tmp" "$bin"
echo "build-llama-server: built (llama.cpp $tag, bundle sha256 $hash, cpu variant $variant)" >&2
echo "$bin"
