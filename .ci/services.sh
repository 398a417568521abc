#!/usr/bin/env bash
# Start the real services the tests use, on loopback only. Idempotent: safe to run twice.
# Used by .ci/run and by developers (`bash .ci/services.sh`). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log=${HOSTING_SERVICES_LOG:-/tmp/hosting-services}
mkdir -p "$log"

start_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  # ip-masq off + a private pool + DOCKER-USER drop: no container packet leaves the machine.
  nohup dockerd --ip-masq=false --default-address-pool base=172.20.0.0/14,size=24 \
    >"$log/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $log/dockerd.log" >&2; tail -20 "$log/dockerd.log" >&2; exit 1; }
}

isolate_containers() {
  for _ in $(seq 1 20); do iptables -L DOCKER-USER -n >/dev/null 2>&1 && break; sleep 0.5; done
  if ! iptables -C DOCKER-USER ! -d 172.20.0.0/14 -j DROP 2>/dev/null; then
    iptables -I DOCKER-USER ! -d 172.20.0.0/14 -j DROP
  fi
}

start_dockerd
isolate_containers
bash "$here/images.sh"
echo "services ready: docker $(docker version --format '{{.Server.Version}}')"
