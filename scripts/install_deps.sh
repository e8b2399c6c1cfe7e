#!/usr/bin/env bash
# Installs the Debian 12 packages convjit needs, by name, skipping those present.
#   scripts/install_deps.sh          build + demo: compiler, CMake, Halide 14, oneDNN (and the
#                                    OpenCL headers its CMake config requires)
#   scripts/install_deps.sh --test   also GoogleTest, Google Benchmark, and NumPy +
#                                    PyTorch for the cross-check against torch's conv2d
set -euo pipefail

packages=(g++ make cmake libhalide14-0-dev llvm-14-dev libdnnl-dev ocl-icd-opencl-dev libbenchmark-dev libsqlite3-dev)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev python3-numpy python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
