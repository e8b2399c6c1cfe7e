#!/usr/bin/env bash
# Offline evidence for the CUDA path: generates the PTX of every layer of a shape file
# with its default GPU schedule and prints what ptxas reports per kernel (registers,
# spills, stack, barriers) for one architecture. No GPU needed.
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

printf '| layer | schedule | kernels | registers | spill bytes | stack bytes | barriers |\n|---|---|---|---|---|---|---|\n'
while IFS= read -r line; do
  [[ -z "${line// }" || "$line" == \#* ]] && continue
  eval "set -- $line"
  name=$(printf '%s\n' "$line" | sed -n 's/.*n"\([^"]*\)".*/\1/p')
  if ! "$convjit" compile "$@" --target "$target" --emit ptx -o "$work/k.ptx" \
       ${SCHEDULE:+--schedule "$SCHEDULE"} 2> "$work/err"; then
    why=$(sed 's/^convjit: error: //; s/^convjit_[0-9a-f]*: //; s/|/\\|/g' "$work/err")
    grep -q "cuBLAS computes this kernel entirely" "$work/err" && why="no Halide kernel: cuBLAS reads the input in place"
    printf '| %s | %s | 0 | | | | |\n' "$name" "$why"
    continue
  fi
  schedule=$(sed -n 's|^// schedule ||p' "$work/k.ptx")
  report=$("$ptxas" -v -arch="$arch" "$work/k.ptx" -o /dev/null 2>&1)
  kernels=$(grep -c "Compiling entry function" <<<"$report")
  regs=$(grep -o 'Used [0-9]* registers' <<<"$report" | awk '{print $2}' | sort -n | tr '\n' ' ' | sed 's/ $//')
  spills=$(grep -o '[0-9]* bytes spill stores' <<<"$report" | awk '{s+=$1} END {print s+0}')
  stack=$(grep -o '[0-9]* bytes stack frame' <<<"$report" | awk '{if ($1>m) m=$1} END {print m+0}')
  barriers=$(grep -o 'used [0-9]* barriers' <<<"$report" | awk '{if ($2>m) m=$2} END {print m+0}')
  printf '| %s | `%s` | %s | %s | %s | %s | %s |\n' "$name" "$schedule" "$kernels" "$regs" "$spills" "$stack" "$barriers"
done <"$shapes"
