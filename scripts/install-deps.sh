#!/usr/bin/env bash
# Installs every Debian 12 package tixport needs to build, test, fuzz and benchmark.
# The one list used by the README and by .ci/run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libtbb-dev libsimdjson-dev libboost-dev libssl-dev libzstd-dev zstd
  libarchive-dev libbenchmark-dev catch2 libcli11-dev
  # zlib: parallel gzip (pigz-style blocks with deflateSetDictionary and crc32_combine),
  # which libarchive's single-threaded gzip filter cannot do
  zlib1g-dev
  # xxHash: XXH3-64 fingerprints of ledger objects and export blocks (SPEC 4.1), ~10 GB/s a core
  libxxhash-dev
  # tests read archives back with the system tools; openssl makes the TLS test certificate
  tar gzip openssl ca-certificates
  # /usr/bin/time -v measures peak RSS in perf/
  time
  # cpack -G DEB: dpkg-shlibdeps (dpkg-dev) and file compute the .deb's Depends
  dpkg-dev file
  # tests render the generated man page (man-db) and check the zsh completion's syntax (zsh)
  man-db zsh
)
if [ "${TIXPORT_WITH_FUZZ:-0}" = "1" ]; then PACKAGES+=(clang libclang-rt-14-dev); fi
if [ "${TIXPORT_WITH_PERF:-0}" = "1" ]; then PACKAGES+=(python3-pandas gnuplot-nox); fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
