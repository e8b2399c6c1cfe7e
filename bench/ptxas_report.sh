#!/usr/bin/env bash
# Offline evidence for the CUDA path: generates the PTX of every layer of a shape file
# with its default GPU schedule and prints what ptxas reports per kernel (registers,
# spills, stack, barriers) for one architecture, and the shared memory each kernel's
# launch asks for (Halide sizes it at launch, so ptxas cannot see it: it is read from
# the kernel's stmt). No GPU needed.
#
# usage: [SCHEDULE=NAME] bench/ptxas_report.sh [SHAPES] [ARCH] [TARGET]
#   defaults: bench/shapes, sm_90, host-cuda (PTX for capability 8.0); SCHEDULE names a
#   template to use at its defaults instead of the default schedule (e.g. gpu_cublas:
#   its im2col and bias kernels; a layer it does not apply to, or one cuBLAS computes
#   alone, gets a row saying so).
# Needs build/tools/convjit (or $CONVJIT) and ptxas (/usr/local/cuda/bin or $PTXAS).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shapes=${1:-$here/bench/shapes}
arch=${2:-sm_90}
target=${3:-host-cuda}
convjit=${CONVJIT:-$here/build/tools/convjit}
ptxas=${PTXAS:-/usr/local/cuda/bin/ptxas}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The largest shared-memory size of the halide_cuda_run calls in a stmt file (their
# 9th argument, a constant expression once the shapes are pinned).
shared_bytes() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
largest = 0
for start in [m.end() for m in re.finditer(r"halide_cuda_run\(", text)]:
    args, depth, current, i = [], 0, "", start
    while i < len(text) and len(args) < 9:
        ch = text[i]
        if ch in "(": depth += 1
        if ch == ")":
            if depth == 0: break
            depth -= 1
        if ch == "," and depth == 0:
            args.append(current.strip()); current = ""
        else:
            current += ch
        i += 1
    if len(args) >= 9 and re.fullmatch(r"[0-9+*() ]+", args[8]):
        largest = max(largest, eval(args[8]))
print(largest)
PY
}

printf '| layer | schedule | kernels | registers | spill bytes | stack bytes | barriers | shared bytes |\n|---|---|---|---|---|---|---|---|\n'
while IFS= read -r line; do
  [[ -z "${line// }" || "$line" == \#* ]] && continue
  eval "set -- $line"
  name=$(printf '%s\n' "$line" | sed -n 's/.*n"\([^"]*\)".*/\1/p')
  if ! "$convjit" compile "$@" --target "$target" --emit ptx -o "$work/k.ptx" \
       ${SCHEDULE:+--schedule "$SCHEDULE"} 2> "$work/err"; then
    why=$(sed 's/^convjit: error: //; s/^convjit_[0-9a-f]*: //; s/|/\\|/g' "$work/err")
    grep -q "cuBLAS computes this kernel entirely" "$work/err" && why="no Halide kernel: cuBLAS reads the input in place"
    printf '| %s | %s | 0 | | | | | |\n' "$name" "$why"
    continue
  fi
  schedule=$(sed -n 's|^// schedule ||p' "$work/k.ptx")
  "$convjit" compile "$@" --target "$target" --emit stmt -o "$work/k.stmt" ${SCHEDULE:+--schedule "$SCHEDULE"}
  shared=$(shared_bytes "$work/k.stmt")
  report=$("$ptxas" -v -arch="$arch" "$work/k.ptx" -o /dev/null 2>&1)
  kernels=$(grep -c "Compiling entry function" <<<"$report")
  regs=$(grep -o 'Used [0-9]* registers' <<<"$report" | awk '{print $2}' | sort -n | tr '\n' ' ' | sed 's/ $//')
  spills=$(grep -o '[0-9]* bytes spill stores' <<<"$report" | awk '{s+=$1} END {print s+0}')
  stack=$(grep -o '[0-9]* bytes stack frame' <<<"$report" | awk '{if ($1>m) m=$1} END {print m+0}')
  barriers=$(grep -o 'used [0-9]* barriers' <<<"$report" | awk '{if ($2>m) m=$2} END {print m+0}')
  printf '| %s | `%s` | %s | %s | %s | %s | %s | %s |\n' "$name" "$schedule" "$kernels" "$regs" "$spills" "$stack" \
    "$barriers" "$shared"
done <"$shapes"
