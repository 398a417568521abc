"""A small Docker Engine API client over the unix socket (or tcp://): one listing call per
cycle instead of one `docker stats` per container, and nothing else the agent does not use."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

from hosting.errors import MeteringError
from hosting.unixhttp import UnixHTTPConnection

API = "/v1.41"  # Docker 20.10+; every call here exists since long before
LABEL_TENANT, LABEL_DEPLOYMENT, LABEL_TYPE = "hosting.tenant", "hosting.deployment", "hosting.type"


class EngineUnreachable(MeteringError):
    """The Docker engine did not answer; the agent logs it and tries again next cycle."""


@dataclass(frozen=True)
class Container:
    """What one listing call tells about a labelled container."""

    id: str
    name: str
    tenant: str
    deployment: str
    kind: str
    state: str  # running | exited | paused | restarting | created | dead
    health: str  # healthy | unhealthy | starting | "" (no Docker health check)
    image_id: str
    size_rw: int | None
    mounts: tuple[dict[str, Any], ...]
    addresses: tuple[tuple[str, str], ...] = ()  # (network, IPv4): where the host reaches it

    def address_on(self, network: str) -> str | None:
        """Its address on that network, else on any network it has one on, else None."""
        found = dict(self.addresses)
        return found.get(network) or next(iter(found.values()), None)

    @classmethod
    def from_listing(cls, item: dict[str, Any]) -> Container:
        labels = item.get("Labels") or {}
        names = item.get("Names") or ["/" + item["Id"][:12]]
        return cls(
            id=item["Id"],
            name=names[0].lstrip("/"),
            tenant=labels.get(LABEL_TENANT, ""),
            deployment=labels.get(LABEL_DEPLOYMENT, ""),
            kind=labels.get(LABEL_TYPE, ""),
            state=item.get("State", ""),
            health=_health_of(str(item.get("Status", ""))),
            image_id=item.get("ImageID", ""),
            size_rw=item.get("SizeRw"),
            mounts=tuple(item.get("Mounts") or ()),
            addresses=_addresses_of(item),
        )


def _addresses_of(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
    return tuple(
        sorted(
            (str(name), str(n["IPAddress"])) for name, n in networks.items() if n.get("IPAddress")
        )
    )


def _health_of(status: str) -> str:
    # The listing's Status reads "Up 3 minutes (healthy)"; no extra call needed.
    for word in ("unhealthy", "healthy", "starting"):
        if f"({word})" in status or f"(health: {word})" in status:
            return word
    return ""


class Engine:
    def __init__(self, host: str = "unix:///var/run/docker.sock", timeout: float = 30.0) -> None:
        self.host = host
        self.timeout = timeout
        url = urlparse(host)
        if url.scheme not in ("unix", "tcp", "http"):
            raise MeteringError(
                f"the metering agent cannot use the Docker host {host}",
                "run the agent on the Docker host itself (unix:// socket): it reads cgroups",
            )
        self._url = url

    def _connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        t = timeout or self.timeout
        if self._url.scheme == "unix":
            return UnixHTTPConnection(self._url.path, t)
        return http.client.HTTPConnection(self._url.hostname or "localhost", self._url.port, t)

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        ok: tuple[int, ...] = (),
        body: Any = None,
    ) -> Any:
        conn = self._connection(timeout)
        headers = {"Host": "docker"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, API + path, body=payload, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnreachable(
                f"cannot reach the Docker engine at {self.host}: {exc}",
                "is dockerd running? check with `docker info`; the agent retries every cycle",
            ) from None
        finally:
            conn.close()
        if resp.status >= 400 and resp.status not in ok:
            try:
                message = json.loads(body).get("message", body.decode(errors="replace"))
            except ValueError:
                message = body.decode(errors="replace")
            raise MeteringError(f"Docker engine: {method} {path}: {resp.status} {message}")
        return json.loads(body) if body.strip() else None

    def ping(self) -> None:
        self.request("GET", "/version", timeout=5)

    def containers(self, *, all: bool = True, size: bool = False) -> list[Container]:
        """Every container carrying the hosting labels, in one call."""
        filters = quote(json.dumps({"label": [LABEL_TENANT, LABEL_DEPLOYMENT]}))
        query = f"?all={int(all)}&size={int(size)}&filters={filters}"
        return [Container.from_listing(c) for c in self.request("GET", "/containers/json" + query)]

    def inspect(self, container_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/containers/{container_id}/json")
        return result

    def find(self, name: str) -> dict[str, Any] | None:
        """A container's inspect by name or id, or None when there is no such container."""
        found = self.request("GET", f"/containers/{quote(name, safe='')}/json", ok=(404,))
        return found if isinstance(found, dict) and found.get("Id") else None

    def image_size(self, image_id: str) -> int:
        info = self.request("GET", f"/images/{quote(image_id, safe='')}/json")
        return int(info.get("Size") or 0)

    def local(self, container_id: str) -> bool:
        """Whether the container's files (volumes, log file) are on this machine."""
        return True

    def host_of(self, container_id: str) -> str:
        """The address of the engine that runs the container."""
        return self.host

    def volume_sizes(self, container_id: str) -> dict[str, int]:
        """Volume name → bytes, as the engine counts them (`docker system df -v`): for volumes
        whose files are not on this machine. It walks every volume, so it is asked rarely."""
        df = self.request("GET", "/system/df", timeout=max(self.timeout, 120))
        return {
            str(v["Name"]): int((v.get("UsageData") or {}).get("Size") or 0)
            for v in (df or {}).get("Volumes") or []
            if int((v.get("UsageData") or {}).get("Size") or 0) >= 0
        }

    def restart(self, container_id: str, timeout_s: int = 10) -> None:
        self.request(
            "POST", f"/containers/{container_id}/restart?t={timeout_s}", timeout=timeout_s + 60
        )

    def service(self, name: str) -> dict[str, Any] | None:
        """A Swarm service's inspect by name, or None when there is none."""
        found = self.request("GET", f"/services/{quote(name, safe='')}", ok=(404,))
        return found if isinstance(found, dict) and found.get("ID") else None

    def scale_service(self, service: dict[str, Any], replicas: int) -> None:
        """`docker service scale`: the service's own spec with a new count, at the version it
        was read at (the manager refuses it if someone changed the service meanwhile)."""
        spec = service["Spec"]
        spec["Mode"]["Replicated"]["Replicas"] = replicas
        version = service["Version"]["Index"]
        self.request("POST", f"/services/{service['ID']}/update?version={version}", body=spec)

    def counters(self, container_id: str) -> dict[str, Any]:
        """One stats reading without waiting for a second one (`one-shot`, API 1.41): the
        cumulative counters are all the agent needs, and this answers in milliseconds where
        `stream=false` alone waits about 2 s to fill in `precpu_stats`."""
        result: dict[str, Any] = self.request(
            "GET", f"/containers/{container_id}/stats?stream=false&one-shot=true", ok=(404,)
        )
        return result  # a 404's message has no counters: the container went meanwhile

    def stats_once(self, container_id: str) -> dict[str, Any]:
        """One Engine API stats call: the slow baseline the bench compares against."""
        result: dict[str, Any] = self.request(
            "GET", f"/containers/{container_id}/stats?stream=false", timeout=60
        )
        return result
