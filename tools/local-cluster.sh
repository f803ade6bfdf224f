#!/usr/bin/env bash
# Starts a local kvd cluster in the foreground; Ctrl-C stops every member cleanly.
#
#   tools/local-cluster.sh            data under ./.kvd-cluster, client port 2379
#   KVD_DATA=/tmp/x tools/local-cluster.sh
#
# Three members on 127.0.0.1 with the ports etcd's docs (its Procfile) use: clients on
# 2379/22379/32379, peers on 12380/22380/32380. A restart reuses the data: the members
# rejoin their cluster; delete the data folder for a fresh one.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kvd=${KVD_BIN:-$root/build/bin/kvd}
data=${KVD_DATA:-$root/.kvd-cluster}
mkdir -p "$data"

names=(infra1 infra2 infra3)
client_ports=(2379 22379 32379)
peer_ports=(12380 22380 32380)
cluster=""
for i in "${!names[@]}"; do cluster+="${names[$i]}=http://127.0.0.1:${peer_ports[$i]},"; done
cluster=${cluster%,}

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping cluster..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

for i in "${!names[@]}"; do
  name=${names[$i]}
  "$kvd" --name "$name" --data-dir "$data/$name" \
    --listen-client-urls "http://127.0.0.1:${client_ports[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${client_ports[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-token kvd-local-cluster \
    >"$data/$name.log" 2>&1 &
  pids+=($!)
done

endpoints=$(printf '127.0.0.1:%s,' "${client_ports[@]}")
endpoints=${endpoints%,}
sleep 1
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "member ${names[$i]} failed to start:"; cat "$data/${names[$i]}.log"; exit 1
  fi
done
cat <<MSG
kvd cluster running (data in $data, logs in $data/*.log)
  endpoints: $endpoints
  try:       build/bin/kvctl --endpoints=$endpoints put hello world
             build/bin/kvctl --endpoints=$endpoints get hello
             build/bin/kvctl --endpoints=$endpoints endpoint status -w table
             ETCDCTL_API=3 etcdctl --endpoints=$endpoints member list -w table
Ctrl-C stops it.
MSG
wait
