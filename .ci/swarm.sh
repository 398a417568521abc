#!/usr/bin/env bash
# A real 3-node Docker Swarm on this one machine, for tests: three Debian dockerd engines
# (docker.io from the apt mirror, no registry) in containers on one bridge network of the host's
# engine. 1 manager, 2 workers. Needs root and the host's engine (.ci/services.sh).
#
#   bash .ci/swarm.sh up          start it (a running one is replaced); prints cluster.env
#   bash .ci/swarm.sh down        remove every container, volume, network and file it made
#   bash .ci/swarm.sh stop NODE   kill NODE's engine outright (its container: tasks die with it)
#   bash .ci/swarm.sh start NODE  start it again; it rejoins with its own swarm state
#   bash .ci/swarm.sh load IMAGE… copy the host's images onto every node (docker save | load)
#   bash .ci/swarm.sh image       only build the node image
#
# Each engine's API is a unix socket bind-mounted to $run/NODE/docker.sock on the host (no TCP).
# What this kernel cannot do (no IPVS, no ESP): see README, "The swarm test cluster".
set -euo pipefail
cache=${HOSTING_IMAGE_CACHE:-/var/cache/hosting-images}
prefix=${HOSTING_SWARM_PREFIX:-hosting-swarm}
run=${HOSTING_SWARM_RUN:-/run/$prefix}
nodes=(mgr w1 w2)
# Images every node gets at `up` (services name them without a registry: each node needs them).
default_images=${HOSTING_SWARM_IMAGES:-hosting-test/busybox:latest hosting-test/caddy:latest}

# Inside the nodes: the engines' own bridge, local pool and swarm (overlay, ingress) pool, all in
# 10.208.0.0/14: apart from the host engine's 172.20.0.0/14 and from the host's resolver.
INNER_RANGE=10.208.0.0/14

node_script() {
  cat <<'SH'
#!/bin/sh
# One swarm node: Debian's dockerd in this container. Not --privileged: this machine's
# capability bounding set lacks CAP_SYS_RESOURCE, which runc is asked for under --privileged
# ("unable to apply caps: operation not permitted"). The node has every other capability and
# makes /sys and its own cgroups writable, as --privileged would.
set -eu
mount -o remount,rw /sys
for m in $(awk '$3 == "cgroup" {print $2}' /proc/mounts); do mount -o remount,bind,rw "$m"; done
mkdir -p /run/hosting-swarm
# Before dockerd, which keeps an existing DOCKER-USER chain (it only appends RETURN): the inner
# containers reach the machine's container range and the engines' own pools, nothing else.
iptables -N DOCKER-USER 2>/dev/null || iptables -F DOCKER-USER
iptables -A DOCKER-USER -d 172.20.0.0/14 -j RETURN
iptables -A DOCKER-USER -d 10.208.0.0/14 -j RETURN
iptables -A DOCKER-USER -j DROP
# A node killed and started again keeps its /run (a real reboot empties it): a stale
# containerd pid file there made dockerd wait on a containerd that is not its own.
rm -rf /var/run/docker.pid /run/docker /run/containerd /run/hosting-swarm/docker.sock
# Tasks use the node's loaded image instead of asking a registry first (there is none; the
# lookup alone cost 20 s per task).
export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
# What a service cannot say, the engine sets for every container, as README asks of a node's
# daemon.json: no-new-privileges and the ulimits of hosting.stacks.containers.
exec dockerd --host unix:///var/run/docker.sock --host unix:///run/hosting-swarm/docker.sock \
  --storage-driver overlay2 --ip-masq=false --bip 10.208.0.1/24 \
  --default-address-pool base=10.209.0.0/16,size=24 \
  --no-new-privileges --default-ulimit nofile=8192:8192 --default-ulimit nproc=512:512 "$@"
SH
}

mirror() {
  grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2}' | grep -v security | head -1 || true
}

# The node image: debootstrap minbase + docker.io, cached by docker.io's version and this script's
# node part (a changed entrypoint makes a new tag, the rootfs tarball is reused).
node_image() {
  local version key pkgs=docker.io,iproute2,procps
  version=$(apt-cache policy docker.io 2>/dev/null | awk '/Candidate:/ {print $2}')
  version=${version:-unknown}
  key=$(printf '%s\n%s\n' "$pkgs" "$(node_script)" | sha256sum | cut -c1-12)
  local tag="hosting-test/swarm-node:${version//[^A-Za-z0-9_.-]/_}-$key"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    mkdir -p "$cache"
    local tarball="$cache/swarm-node-${version//[^A-Za-z0-9_.-]/_}.tar"
    if [ ! -s "$tarball" ]; then
      local d m; d=$(mktemp -d); m=$(mirror)
      [ -n "$m" ] || { echo "no apt mirror configured" >&2; exit 1; }
      debootstrap --variant=minbase --include="$pkgs" bookworm "$d" "$m" >"$cache/swarm-node-debootstrap.log" 2>&1 \
        || { tail -30 "$cache/swarm-node-debootstrap.log" >&2; rm -rf "$d"; exit 1; }
      rm -rf "$d/var/cache/apt/archives/"*.deb "$d/var/lib/apt/lists/"* "$d/usr/share/doc" "$d/usr/share/man"
      tar -C "$d" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
      rm -rf "$d"
    fi
    local s; s=$(mktemp -d); mkdir -p "$s/usr/local/bin"
    node_script >"$s/usr/local/bin/swarm-node"; chmod 755 "$s/usr/local/bin/swarm-node"
    # The rootfs and the entrypoint as one stream: tar concatenates (-A) into a copy.
    cp "$tarball" "$s/root.tar"; tar -C "$s" -rf "$s/root.tar" ./usr/local/bin/swarm-node
    docker import -c 'ENTRYPOINT ["/usr/local/bin/swarm-node"]' "$s/root.tar" "$tag" >/dev/null
    rm -rf "$s"
  fi
  echo "$tag"
}

sock() { echo "unix://$run/$1/docker.sock"; }
on() { local n=$1; shift; docker -H "$(sock "$n")" "$@"; }
node_ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"$prefix\").IPAddress}}" "$prefix-$1"; }

wait_engine() {
  for _ in $(seq 1 120); do on "$1" info >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "the engine of node $1 did not answer on $(sock "$1"); its log:" >&2
  docker logs --tail 30 "$prefix-$1" >&2 || true
  exit 1
}

start_node() {  # NAME IMAGE
  local n=$1 image=$2
  mkdir -p "$run/$n" "$run/shared"
  docker run -d --name "$prefix-$n" --hostname "$n" --network "$prefix" --label "$prefix=1" \
    --cap-add ALL --cap-drop SYS_RESOURCE --device-cgroup-rule 'a *:* rwm' \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt systempaths=unconfined \
    --mount "type=volume,src=$prefix-$n,dst=/var/lib/docker,volume-label=$prefix=1" \
    -v "$run/$n:/run/hosting-swarm" -v "$run/shared:$run/shared" "$image" >/dev/null
}

load_images() {  # IMAGE…: one save, loaded on every node at once
  [ $# -gt 0 ] || return 0
  local t; t=$(mktemp)
  docker save "$@" >"$t"
  local pids=()
  for n in "${nodes[@]}"; do on "$n" load -q <"$t" >/dev/null & pids+=($!); done
  local rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
  rm -f "$t"
  [ $rc -eq 0 ] || { echo "loading $* onto the nodes failed" >&2; exit 1; }
}

down() {
  docker ps -aq --filter "label=$prefix=1" | xargs -r docker rm -f -v >/dev/null
  docker volume ls -q --filter "label=$prefix=1" | xargs -r docker volume rm >/dev/null
  docker network rm "$prefix" >/dev/null 2>&1 || true
  rm -rf "$run"
}

up() {
  local image; image=$(node_image)
  down
  docker network create --label "$prefix=1" "$prefix" >/dev/null
  for n in "${nodes[@]}"; do start_node "$n" "$image"; done
  for n in "${nodes[@]}"; do wait_engine "$n"; done
  local mip; mip=$(node_ip mgr)
  # A 2 s heartbeat: a stopped worker is marked down (and its tasks rescheduled) in seconds.
  on mgr swarm init --advertise-addr "$mip" --default-addr-pool 10.210.0.0/16 \
    --default-addr-pool-mask-length 24 --dispatcher-heartbeat 2s >/dev/null
  local token; token=$(on mgr swarm join-token -q worker)
  for n in "${nodes[@]:1}"; do on "$n" swarm join --advertise-addr eth0 --token "$token" "$mip:2377" >/dev/null; done
  # shellcheck disable=SC2086 # a list of image names
  load_images $default_images
  for _ in $(seq 1 60); do
    [ "$(on mgr node ls --format '{{.Status}}' | grep -c '^Ready$')" -eq ${#nodes[@]} ] && break
    sleep 0.5
  done
  {
    echo "SWARM_MANAGER_HOST=$(sock mgr)"
    echo "SWARM_MANAGER_IP=$mip"
    echo "SWARM_NODES=${nodes[*]}"
    echo "SWARM_NETWORK=$prefix"
    echo "SWARM_PREFIX=$prefix"
    echo "SWARM_RUN=$run"
    # The same host folder at the same path on every node: a test's project lives here, so
    # the edge's bind mounts (STATE_DIR/edge/...) resolve on the manager as where hosting runs.
    echo "SWARM_SHARED=$run/shared"
    echo "SWARM_INNER_RANGE=$INNER_RANGE"
    for n in "${nodes[@]}"; do echo "SWARM_HOST_$n=$(sock "$n")"; echo "SWARM_IP_$n=$(node_ip "$n")"; done
  } | tee "$run/cluster.env"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  image) node_image ;;
  # SIGKILL, like a power cut: a graceful stop waits 10 s for tasks that ignore SIGTERM.
  stop) docker kill "$prefix-${2:?node}" >/dev/null ;;
  start) docker start "$prefix-${2:?node}" >/dev/null; wait_engine "$2" ;;
  load) shift; load_images "$@" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
