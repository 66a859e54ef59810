#!/usr/bin/env bash
# Install (only) what is missing to build, run and test evsrep on Debian 12.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libcmocka-dev libcurl4-openssl-dev
  libnbd-dev liburing-dev libgnutls28-dev gnutls-bin # gnutls-bin: certtool/psktool for the TLS tests
  curl jq qemu-utils libnbd-bin nbdkit fio iproute2 procps
  nftables # t_netns_cluster: partitions between loopback addresses in a network namespace (ip netns, iproute2)
  bsdutils python3 # script(1): t_cli's TTY check; python3: t_group_dr, t_metrics
  python3-prometheus-client openssl # t_metrics' exposition parser; t_http_limits' self-signed cert
  prometheus # promtool: t_contrib checks contrib/prometheus rules and the /metrics exposition
  libpq-dev postgresql # the PostgreSQL store backend; postgresql: test_store_pg's throwaway cluster
  chromium # t_ui drives the status page in headless chromium (puppeteer-core from npm)
)
# node and npm for t_ui: whatever Node.js the machine has will do (>= 18);
# only when there is none, Debian's.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "evsrep: installing missing packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
