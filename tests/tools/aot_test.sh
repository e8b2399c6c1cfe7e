#!/usr/bin/env bash
# Tests `convjit aot`: a library for the example layers builds into a consumer that
# sees no Halide (headers and CMake package hidden by a private mount namespace when
# the test may create one; the binary is checked not to link Halide or LLVM either),
# runs correctly, dispatches by CPU features (and falls back from a CUDA target
# when there is no GPU), carries its provenance; bad input leaves no output directory.
# Usage: aot_test.sh CONVJIT_BINARY EXAMPLE_DIR WORK_DIR
set -u
convjit=$1
example=$2
work=$3
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { checks=$((checks + 1)); }

rm -rf "$work" && mkdir -p "$work"
lib="$work/demo_kernels"

# --- a library for three targets, and a consumer built without Halide -------------
check
if ! "$convjit" aot --batch "$example/layers" --target host,x86-64-linux-avx2-fma,x86-64-linux-sse41 \
     --name demo_kernels -o "$lib" > "$work/aot.out" 2> "$work/aot.err"; then
  fail "convjit aot failed: $(cat "$work/aot.err")"
fi
for f in include/demo_kernels.h lib/libdemo_kernels.a lib/cmake/demo_kernels/demo_kernelsConfig.cmake; do
  check; [[ -f "$lib/$f" ]] || fail "missing $f"
done
check; ! grep -qi "halide" <(grep '#include' "$lib/include/demo_kernels.h") || fail "the header includes a Halide header"

build_consumer() {
  cmake -S "$example" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$lib" > "$work/consumer.log" 2>&1 &&
    cmake --build "$work/consumer" >> "$work/consumer.log" 2>&1
}
export -f build_consumer
export example work lib
hidden=no
halide_include=$(dirname "$(find /usr/include /usr/local/include -name HalideRuntime.h 2>/dev/null | head -n1)")
halide_cmake=$(dirname "$(find /usr/lib /usr/local/lib -name HalideConfig.cmake 2>/dev/null | head -n1)")
if [[ $(id -u) -eq 0 ]] && command -v unshare > /dev/null && [[ -d "$halide_include" && -d "$halide_cmake" ]] &&
   unshare -m true 2> /dev/null; then
  hidden=yes
  unshare -m bash -c "mount -t tmpfs none '$halide_include' && mount -t tmpfs none '$halide_cmake' &&
                      [[ ! -e '$halide_include/HalideRuntime.h' ]] && build_consumer"
  status=$?
else
  echo "note: cannot hide Halide in a mount namespace here (needs root and unshare); building in plain sight"
  build_consumer
  status=$?
fi
check; [[ $status -eq 0 ]] || fail "the consumer did not build (Halide hidden: $hidden): $(tail -5 "$work/consumer.log")"
echo "consumer built with Halide's headers and CMake package hidden: $hidden"
check; ! ldd "$work/consumer/aot_consumer" | grep -Eqi "halide|llvm" || fail "the consumer links Halide or LLVM"
check; ! nm -u "$work/consumer/aot_consumer" | grep -q "Halide" || fail "the consumer needs Halide symbols"
check
if "$work/consumer/aot_consumer" > "$work/run.out" 2>&1; then
  grep -q "all entries match the naive reference" "$work/run.out" || fail "consumer output: $(cat "$work/run.out")"
else
  fail "the consumer failed: $(cat "$work/run.out")"
fi
check; grep -q "^selected target: x86-64-linux" "$work/run.out" || fail "no target selected"

# --- provenance -----------------------------------------------------------------
check
"$convjit" aot --inspect "$lib/lib/libdemo_kernels.a" > "$work/inspect.out" 2>&1 || fail "--inspect failed"
check; [[ $(grep -c '"entry"' "$work/inspect.out") -eq 9 ]] || fail "--inspect: expected 9 kernels (3 specs x 3 targets)"
check; grep -q '"schedule": "cpu_' "$work/inspect.out" || fail "--inspect lacks schedules"
check; grep -q '"halide_version": "14' "$work/inspect.out" || fail "--inspect lacks the Halide version"
check; [[ $(grep -c '"entry"' "$work/run.out") -eq 9 ]] || fail "NAME_provenance() differs from --inspect"

# --- CPU-feature dispatch: a first target this CPU lacks falls through -------------
check
if "$convjit" aot --batch "$example/layers" --target x86-64-linux-avx512_knl,x86-64-linux-sse41 \
     --name demo_kernels -o "$work/knl/demo_kernels" > /dev/null 2>&1 &&
   cmake -S "$example" -B "$work/knl/consumer" -DCMAKE_PREFIX_PATH="$work/knl/demo_kernels" > /dev/null 2>&1 &&
   cmake --build "$work/knl/consumer" > /dev/null 2>&1; then
  "$work/knl/consumer/aot_consumer" > "$work/knl.out" 2>&1 || fail "the fallback consumer failed: $(cat "$work/knl.out")"
  if grep -q avx512er /proc/cpuinfo; then
    echo "note: this CPU has the KNL features; skipping the fall-through check"
  else
    grep -q "^selected target: x86-64-linux-sse41" "$work/knl.out" || fail "dispatch did not fall through: $(head -1 "$work/knl.out")"
  fi
else
  fail "could not build the two-target library"
fi

# --- a CUDA target embeds its PTX; without a device the CPU target serves ----------
check
cuda_lib="$work/cuda/demo_kernels"
if "$convjit" aot --batch "$example/layers" --target host-cuda,host --name demo_kernels -o "$cuda_lib" \
     > /dev/null 2> "$work/cuda.err" &&
   cmake -S "$example" -B "$work/cuda/consumer" -DCMAKE_PREFIX_PATH="$cuda_lib" > /dev/null 2>&1 &&
   cmake --build "$work/cuda/consumer" > "$work/cuda/build.log" 2>&1; then
  check; [[ $(grep -ac '^\.target sm_80' "$cuda_lib/lib/libdemo_kernels.a") -eq 3 ]] ||
    fail "expected the PTX of 3 kernels (.target sm_80) in the archive"
  check; nm -A "$cuda_lib/lib/libdemo_kernels.a" 2> /dev/null | grep -q " T convjit_conv_gemm$" ||
    fail "the archive lacks the cuBLAS bridge (convjit_conv_gemm) that tuned gpu_cublas kernels call"
  check; grep -q "cuda_capability_80" "$cuda_lib/include/demo_kernels.h" || fail "the header does not list the CUDA target"
  check; grep -q "demo_kernels_set_cuda_context" "$cuda_lib/include/demo_kernels.h" || fail "no set_cuda_context"
  "$work/cuda/consumer/aot_consumer" > "$work/cuda.out" 2>&1 || fail "the CUDA-target consumer failed: $(cat "$work/cuda.out")"
  check; grep -q "all entries match the naive reference" "$work/cuda.out" || fail "CUDA-target consumer output: $(cat "$work/cuda.out")"
  check
  if [[ -e /dev/nvidia0 ]]; then
    grep -q "^selected target: .*cuda" "$work/cuda.out" || fail "a GPU is present but the CUDA target was not chosen"
  else
    grep -q "^selected target: .*cuda" "$work/cuda.out" && fail "the CUDA target was chosen on a machine without a GPU"
  fi
  check; [[ $("$convjit" aot --inspect "$cuda_lib/lib/libdemo_kernels.a" | grep -c '"schedule": "gpu_') -eq 3 ]] ||
    fail "--inspect: expected 3 GPU schedules"
else
  fail "could not build the CUDA-target library: $(cat "$work/cuda.err") $(tail -5 "$work/cuda/build.log" 2>/dev/null)"
fi

# --- bad input: one error line, non-zero exit, no output directory ----------------
expect_error() {  # expect_error WHAT PATTERN ARGS...
  local what=$1 pattern=$2
  shift 2
  check
  local out="$work/bad"
  rm -rf "$out" "$out".partial-*
  "$convjit" aot "$@" -o "$out" > "$work/bad.stdout" 2> "$work/bad.stderr"
  local rc=$?
  [[ $rc -ne 0 ]] || fail "$what: exit 0"
  [[ $(grep -c . "$work/bad.stderr") -eq 1 ]] || fail "$what: expected one stderr line, got: $(cat "$work/bad.stderr")"
  grep -q "^convjit: error: .*$pattern" "$work/bad.stderr" || fail "$what: '$(cat "$work/bad.stderr")' lacks '$pattern'"
  [[ ! -e "$out" ]] || fail "$what: left an output directory"
  compgen -G "$out.partial-*" > /dev/null && fail "$what: left a partial directory"
}
printf '# nothing\n\n' > "$work/empty"
printf 'mb1ic3ih5oc2kh3nconv\nmb1ic3zz5\n' > "$work/malformed"
printf 'mb1ic3ih5oc2kh3n"a:b"\nmb1ic4ih5oc2kh3n"a_b"\n' > "$work/duplicates"
printf 'mb1ic3ih5oc2kh3\n' > "$work/one"
expect_error "unknown target" "no-such-target" --batch "$work/one" --target host,no-such-target --name lib1
expect_error "empty spec file" "no problems" --batch "$work/empty" --target host --name lib1
expect_error "malformed spec file" "malformed:2" --batch "$work/malformed" --target host --name lib1
expect_error "missing spec file" "cannot open" --batch "$work/absent" --target host --name lib1
expect_error "duplicate names" "duplicate entry name 'a_b'" --batch "$work/duplicates" --target host --name lib1
expect_error "bad library name" "C identifier" --batch "$work/one" --target host --name 1lib
expect_error "same target twice" "listed twice" --batch "$work/one" --target host,host --name lib1
expect_error "non-CUDA GPU target" "only GPU API supported is CUDA" --batch "$work/one" --target host-opencl --name lib1
check
mkdir -p "$work/occupied" && touch "$work/occupied/file"
"$convjit" aot --batch "$work/one" --target host --name lib1 -o "$work/occupied" > /dev/null 2>&1 &&
  fail "a non-empty output directory was accepted"
[[ -f "$work/occupied/file" ]] || fail "a non-empty output directory was changed"

echo "$((checks - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
