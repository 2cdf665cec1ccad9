#!/usr/bin/env bash
# Installs every build and test dependency from Debian's packages, then configures and builds flashfix.
# Usage: scripts/setup.sh [--no-install]   (BUILD_DIR overrides the build folder, default ./build)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libpcre2-dev libseccomp-dev libgit2-dev libcpp-httplib-dev libboost1.81-dev
  libgtest-dev googletest clang libclang-rt-14-dev python3 libxxhash-dev libssl-dev
  python3-pytest nodejs golang-go  # test runners: run_tests tests and the examples/ projects
)
# Debian's npm package; a Node.js from elsewhere (e.g. NodeSource) ships its own npm and conflicts with it.
command -v npm >/dev/null 2>&1 || packages+=(npm)

if [[ "${1:-}" != "--no-install" ]]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# The official openai client for the server's end-to-end tests, at the versions package-lock.json pins.
(cd tests/serve_js && npm ci --no-audit --no-fund)

build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" --parallel "$(nproc)"
