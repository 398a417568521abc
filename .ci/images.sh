#!/usr/bin/env bash
# Build the local images the tests and the example use. No registry is reachable, so they
# come from Debian's packages and are imported with `docker import`, cached by tag.
set -euo pipefail
cache=${HOSTING_IMAGE_CACHE:-/var/cache/hosting-images}
mkdir -p "$cache"

have() { docker image inspect "$1" >/dev/null 2>&1; }

# busybox: tiny web/API apps (busybox httpd) for tests and the example's hosting-demo/* images.
if ! have hosting-test/busybox:latest; then
  d=$(mktemp -d); mkdir -p "$d/bin" "$d/www/cgi-bin" "$d/tmp" "$d/etc"
  cp /bin/busybox "$d/bin/busybox"
  for app in sh httpd wget nc sleep cat echo ls mkdir rm dd head yes printf env id ps kill top grep sed seq true false date; do ln -s busybox "$d/bin/$app"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"; echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> "$d/etc/passwd"
  echo 'root:x:0:' > "$d/etc/group"; echo 'nogroup:x:65534:' >> "$d/etc/group"
  printf 'ok\n' > "$d/www/index.html"; printf 'ok\n' > "$d/www/healthz"
  tar -C "$d" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/httpd","-f","-p","8080","-h","/www"]' -c 'EXPOSE 8080' - hosting-test/busybox:latest >/dev/null
  rm -rf "$d"
fi
for tag in hosting-demo/web:latest hosting-demo/api:latest; do
  have "$tag" || docker tag hosting-test/busybox:latest "$tag"
done

# caddy: Debian's binary in a minimal root.
# Debian's caddy is dynamically linked: its loader and libraries go in too (ldd lists them), and
# a cached image without them (it cannot exec) is rebuilt.
if ! have hosting-test/caddy:latest || ! docker run --rm hosting-test/caddy:latest /usr/bin/caddy version >/dev/null 2>&1; then
  d=$(mktemp -d); mkdir -p "$d/usr/bin" "$d/etc/caddy" "$d/data" "$d/config" "$d/tmp" "$d/etc/ssl/certs"
  cp /usr/bin/caddy "$d/usr/bin/caddy"
  for lib in $(ldd /usr/bin/caddy | grep -oE '/[^ ]+'); do mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"; done
  cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/" 2>/dev/null || true
  echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"
  tar -C "$d" -c . | docker import -c 'ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config' \
    -c 'CMD ["/usr/bin/caddy","run","--config","/etc/caddy/Caddyfile","--adapter","caddyfile"]' - hosting-test/caddy:latest >/dev/null
  rm -rf "$d"
fi

# iperf3: Debian's binary and the libraries ldd lists, for the network rate tests (iperf3's
# server in a tenant's container; the host's iperf3, from .ci/run's apt list, is the client).
if ! have hosting-test/iperf3:latest && [ -x /usr/bin/iperf3 ]; then
  d=$(mktemp -d); mkdir -p "$d/usr/bin" "$d/tmp" "$d/etc"
  cp /usr/bin/iperf3 "$d/usr/bin/iperf3"
  for lib in $(ldd /usr/bin/iperf3 | grep -oE '/[^ ]+'); do mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"
  tar -C "$d" -c . | docker import -c 'CMD ["/usr/bin/iperf3","-s"]' - hosting-test/iperf3:latest >/dev/null
  rm -rf "$d"
fi

# postgres: debootstrap minbase with Debian's postgresql-N (~35 s each), rootfs tarball cached per
# version. 15 comes from bookworm, 17 from trixie (the suites that ship them); the stack's
# default image is per version (postgres:{version}-alpine), so a major upgrade has both.
postgres_image() {  # VERSION SUITE TARBALL
  local v=$1 suite=$2 tarball=$3
  have "hosting-test/postgres:$v" && return 0
  if [ ! -s "$tarball" ]; then
    local d; d=$(mktemp -d)
    # The machine's own apt mirror: the first URI apt is configured with.
    local mirror
    mirror=$(grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$mirror" ] || { echo "no apt mirror configured" >&2; exit 1; }
    local log="$cache/debootstrap.log"; [ "$v" = 15 ] || log="$cache/postgres$v-debootstrap.log"
    debootstrap --variant=minbase --include="postgresql-$v" "$suite" "$d" "$mirror" >"$log" 2>&1 \
      || { tail -30 "$log" >&2; exit 1; }
    rm -rf "$d/var/cache/apt/archives/"*.deb "$d/var/lib/apt/lists/"*
    # Start script in the image, like the official entrypoint: initdb on first start.
    cat > "$d/usr/local/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/@VERSION@/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"; chmod 700 "$PGDATA"
  # POSTGRES_PASSWORD_FILE (a Docker secret on swarm) like the official image, else the env.
  pwfile=$(mktemp)
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then cat "$POSTGRES_PASSWORD_FILE" > "$pwfile"
  else printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}" > "$pwfile"; fi
  "$BIN/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != "postgres" ]; then
    "$BIN/psql" -h /tmp -U "${POSTGRES_USER:-postgres}" -d postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$POSTGRES_DB\"" 
  fi
  "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
SH
    sed -i "s/@VERSION@/$v/" "$d/usr/local/bin/docker-entrypoint.sh"
    chmod +x "$d/usr/local/bin/docker-entrypoint.sh"
    # A fresh named volume takes this directory's owner, so postgres can initdb into it.
    mkdir -p "$d/var/lib/postgresql/data" "$d/var/run/postgresql"
    chroot "$d" chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
    tar -C "$d" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$d"
  fi
  docker import -c 'USER postgres' -c "ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/$v/bin:/usr/local/bin:/usr/bin:/bin" \
    -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' -c 'EXPOSE 5432' "$tarball" "hosting-test/postgres:$v" >/dev/null
}
postgres_image 15 bookworm "$cache/postgres15-rootfs-v2.tar"  # v2: POSTGRES_PASSWORD_FILE
postgres_image 17 trixie "$cache/postgres17-rootfs-v2.tar"

# Runtimes for source builds (`source:`): Debian's nodejs and python3/python3-venv on a
# minbase root (about a minute each, once). The rootfs tarball's name carries its package list,
# so changing the list builds a new one instead of reusing the old cache.
runtime_image() {  # TAG PACKAGES(comma-separated) ENV
  local tag=$1 pkgs=$2 env=$3
  have "$tag" && return 0
  local key; key=$(printf '%s' "$pkgs" | sha256sum | cut -c1-12)
  local tarball="$cache/runtime-${tag//[\/:]/_}-$key.tar"
  if [ ! -s "$tarball" ]; then
    local d; d=$(mktemp -d)
    local mirror
    mirror=$(grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$mirror" ] || { echo "no apt mirror configured" >&2; exit 1; }
    debootstrap --variant=minbase --include="$pkgs" bookworm "$d" "$mirror" >"$cache/runtime-$key.log" 2>&1 \
      || { tail -30 "$cache/runtime-$key.log" >&2; exit 1; }
    rm -rf "$d/var/cache/apt/archives/"*.deb "$d/var/lib/apt/lists/"* "$d/usr/share/doc" "$d/usr/share/man"
    tar -C "$d" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$d"
  fi
  docker import -c "ENV $env" -c 'CMD ["/bin/sh"]' "$tarball" "$tag" >/dev/null
}
runtime_image hosting-test/node:20 nodejs,ca-certificates 'PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production'
runtime_image hosting-test/python:3.11 python3,python3-venv 'PATH=/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1'

# pgbouncer: Debian's PgBouncer (1.18: SCRAM pass-through) and psql, which the metering agent
# runs in the container for the admin console (SHOW POOLS), on a minbase root (about a minute,
# once; the rootfs is cached under $cache). It runs as Debian's postgres user: PgBouncer
# refuses to run as root. Its config is bind-mounted by the stack (hosting.stacks.pooler).
if ! have hosting-test/pgbouncer:latest; then
  tarball="$cache/pgbouncer-rootfs.tar"
  if [ ! -s "$tarball" ]; then
    d=$(mktemp -d)
    mirror=$(grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$mirror" ] || { echo "no apt mirror configured" >&2; exit 1; }
    debootstrap --variant=minbase --include=pgbouncer,postgresql-client-15 bookworm "$d" "$mirror" >"$cache/pgbouncer-debootstrap.log" 2>&1 \
      || { tail -30 "$cache/pgbouncer-debootstrap.log" >&2; exit 1; }
    rm -rf "$d/var/cache/apt/archives/"*.deb "$d/var/lib/apt/lists/"* "$d/usr/share/doc" "$d/usr/share/man"
    tar -C "$d" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$d"
  fi
  docker import -c 'USER postgres' -c 'ENV PATH=/usr/sbin:/usr/bin:/bin' -c 'EXPOSE 6432' \
    -c 'CMD ["/usr/sbin/pgbouncer","/etc/pgbouncer/pgbouncer.ini"]' "$tarball" hosting-test/pgbouncer:latest >/dev/null
fi

# The stack's default images are upstream tags (platform.images) that no registry here can
# serve: the local builds stand in for them, as the example needs. A tag already present,
# pulled from a real registry, is left alone.
have caddy:2-alpine || docker tag hosting-test/caddy:latest caddy:2-alpine
have postgres:15-alpine || docker tag hosting-test/postgres:15 postgres:15-alpine
have postgres:17-alpine || docker tag hosting-test/postgres:17 postgres:17-alpine
have node:20-bookworm-slim || docker tag hosting-test/node:20 node:20-bookworm-slim
have python:3.11-slim-bookworm || docker tag hosting-test/python:3.11 python:3.11-slim-bookworm

echo "images ready: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep -c hosting-)"
