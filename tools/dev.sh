#!/usr/bin/env bash
# The one entry point for a developer and for CI: installs what is missing, builds, runs.
#
#   tools/dev.sh run         install, build, start a local cluster (Ctrl-C stops it)
#   tools/dev.sh test        install, build, run the whole fast test suite
#   tools/dev.sh test-long   the long simulations and fault runs
#   tools/dev.sh build       install and build only
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${KVD_BUILD_DIR:-$root/build}
jobs=${KVD_JOBS:-2}

# Debian packages the build, the tests and the reference etcd need.
packages=(
  build-essential cmake ccache pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  librocksdb-dev libgtest-dev libgmock-dev libbenchmark-dev
  etcd-server etcd-client python3 python3-etcd3 python3-pytest
  python3-grpcio python3-protobuf iproute2 nftables faketime procps
)

install_deps() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  install_deps
  # One ccache for every checkout: paths are hashed relative to the checkout.
  export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j"$jobs"
}

cmd=${1:-}
shift || true
case "$cmd" in
  build) build ;;
  run)
    build
    exec "$root/tools/local-cluster.sh" "$@"
    ;;
  test)
    build
    cd "$build_dir"
    ctest --output-on-failure -j"$jobs" -L fast "$@"
    ;;
  test-long)
    build
    cd "$build_dir"
    ctest --output-on-failure -j"$jobs" -L long "$@"
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
