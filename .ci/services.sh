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

# stripe-mock (built by .ci/run) on loopback: the payments tests point the Stripe library at
# it. Only when its port does not answer yet.
start_stripe_mock() {
  local version bin
  version=$(cat "$here/stripe-mock.version")
  bin="${HOSTING_CACHE:-/var/cache/hosting}/stripe-mock/$version/stripe-mock"
  curl -s -o /dev/null http://127.0.0.1:12111/ && return 0
  [ -x "$bin" ] || { echo "stripe-mock $version is not built ($bin); .ci/run builds it" >&2; return 1; }
  nohup "$bin" -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:12112 >"$log/stripe-mock.log" 2>&1 &
  for _ in $(seq 1 30); do curl -s -o /dev/null http://127.0.0.1:12111/ && return 0; sleep 0.5; done
  echo "stripe-mock did not start; see $log/stripe-mock.log" >&2; tail -20 "$log/stripe-mock.log" >&2; return 1
}

start_dockerd
isolate_containers
start_stripe_mock
bash "$here/images.sh"
# The swarm test cluster's node image (debootstrap of docker.io, ~1.5 min cold; cached by its
# version): built here, beside the engine build, rather than inside the first swarm test.
bash "$here/swarm.sh" image >/dev/null
echo "services ready: docker $(docker version --format '{{.Server.Version}}')"
