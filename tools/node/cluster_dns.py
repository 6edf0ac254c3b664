"""A minimal cluster DNS for the node of ``tools/node/node.py``: Service names to ClusterIPs, nothing else.

It answers on one address (the node's bridge address), UDP and TCP, for the cluster domain only:

- ``<service>.<namespace>.svc.<domain>``: A (and AAAA) records of the Service's ClusterIPs; for a headless
  Service the ready endpoint addresses of its EndpointSlices (and ``<hostname>.<service>.<namespace>.svc.<domain>``
  for endpoints with a hostname); a CNAME for an ExternalName Service (not followed);
- other record types of a known name, and the names above them (``<namespace>.svc.<domain>``): an empty answer;
- any other name: NXDOMAIN (not authoritative for names outside the domain; a client gets "name not known" at
  once, as from an upstream server for a name nobody has). Nothing is ever forwarded.

The Services come from the API server with the given client certificate: listed again whenever a watch reports
a change, and at least every ``--interval`` seconds; while the API server cannot be reached the last known
records stay in use. Until the first list succeeded, names under the domain get SERVFAIL.

Command line (run by ``node.py up``; binding port 53 needs root)::

    python tools/node/cluster_dns.py --listen 10.244.0.1 --server https://127.0.0.1:6443 \\
        --ca pki/ca.crt --cert pki/admin.crt --key pki/admin.key
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from dnslib import (  # type: ignore[import-untyped]
    AAAA,
    CLASS,
    CNAME,
    EDNS0,
    QTYPE,
    RCODE,
    RR,
    SOA,
    A,
    DNSRecord,
)

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_PORT = 53
TTL = 5
UDP_PAYLOAD = 512  # without EDNS0
EDNS_PAYLOAD = 1232  # the most we answer over UDP with EDNS0
MAX_TCP_CLIENTS = 32
TCP_IDLE_TIMEOUT = 5.0
MAX_LIST_PAGES = 100
WATCH_SECONDS = 60  # one watch request's lifetime (the API server ends it)
WATCH_PAUSE = 0.5  # between two watch requests
BURST_DELAY = 0.05  # after a change, before listing
OPCODE_QUERY = 0
QTYPE_OPT = 41
QCLASS_ANY = 255


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} cluster_dns: {message}", flush=True)


# --------------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Records:
    """Everything the server answers, built from one list of Services and EndpointSlices (lowercase names)."""

    domain: str
    a: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aaaa: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cname: dict[str, str] = field(default_factory=dict)
    names: frozenset[str] = frozenset()  # every existing name, the empty ones above them included
    synced: bool = False  # False until the first successful list

    @classmethod
    def build(cls, domain: str, services: Sequence[dict[str, Any]], slices: Sequence[dict[str, Any]]) -> Records:
        ready_ips: dict[tuple[str, str], list[str]] = {}
        hostnames: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for item in slices:
            metadata = item.get("metadata") or {}
            service = (metadata.get("labels") or {}).get("kubernetes.io/service-name")
            if not service:
                continue
            key = (str(metadata.get("namespace", "")), str(service))
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    ready_ips.setdefault(key, []).append(str(address))
                    if endpoint.get("hostname"):
                        hostnames.setdefault(key, []).append((str(endpoint["hostname"]).lower(), str(address)))

        a: dict[str, list[str]] = {}
        aaaa: dict[str, list[str]] = {}
        cname: dict[str, str] = {}

        def add(name: str, address: str) -> None:
            with contextlib.suppress(ValueError):
                target = a if ipaddress.ip_address(address).version == 4 else aaaa
                if address not in target.setdefault(name, []):
                    target[name].append(address)

        names: set[str] = set()
        for service in services:
            metadata = service.get("metadata") or {}
            spec = service.get("spec") or {}
            namespace, service_name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
            if not namespace or not service_name:
                continue
            fqdn = f"{service_name}.{namespace}.svc.{domain}".lower()
            names.add(fqdn)
            if spec.get("type") == "ExternalName" and spec.get("externalName"):
                cname[fqdn] = str(spec["externalName"]).rstrip(".").lower()
                continue
            cluster_ips = [str(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
            if cluster_ips and cluster_ips[0] != "None":
                for ip in cluster_ips:
                    add(fqdn, ip)
                continue
            for ip in ready_ips.get((namespace, service_name), []):  # headless
                add(fqdn, ip)
            for hostname, ip in hostnames.get((namespace, service_name), []):
                names.add(f"{hostname}.{fqdn}")
                add(f"{hostname}.{fqdn}", ip)

        for name in list(names):  # the names above each record exist too (empty non-terminals)
            labels = name.split(".")
            for start in range(1, len(labels)):
                suffix = ".".join(labels[start:])
                names.add(suffix)
                if suffix == domain:
                    break
        return cls(
            domain=domain,
            a={k: tuple(v) for k, v in a.items()},
            aaaa={k: tuple(v) for k, v in aaaa.items()},
            cname=cname,
            names=frozenset(names | {domain}),
            synced=True,
        )

    def summary(self) -> str:
        services = sum(1 for name in self.names if name.count(".") == self.domain.count(".") + 3)
        return f"{services} Services, {len(self.a)} names with A, {len(self.aaaa)} with AAAA, {len(self.cname)} CNAMEs"


# --------------------------------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------------------------------


class Resolver:
    """Turns a query packet into a reply packet from the current :class:`Records` (swapped whole on updates)."""

    def __init__(self, domain: str, verbose: bool = False) -> None:
        self.domain = domain.rstrip(".").lower()
        self.records = Records(self.domain)
        self.verbose = verbose

    def _soa(self) -> Any:
        serial = int(time.time()) & 0xFFFFFFFF
        return RR(
            self.domain,
            QTYPE.SOA,
            CLASS.IN,
            ttl=TTL,
            rdata=SOA(f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", (serial, 7200, 1800, 86400, TTL)),
        )

    def answer(self, packet: bytes, *, udp: bool) -> bytes | None:
        """The reply to ``packet`` (None for a packet that is not a parsable query)."""
        try:
            query = DNSRecord.parse(packet)
        except Exception:  # dnslib raises several types for malformed packets
            return None
        if query.header.qr or not query.questions:
            return None
        records = self.records
        reply = query.reply(ra=0, aa=1)
        question = query.q
        qname = str(question.qname).rstrip(".").lower()
        qtype = int(question.qtype)
        edns = [rr for rr in query.ar if int(rr.rtype) == QTYPE_OPT]
        if edns:
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD))
        in_domain = qname == self.domain or qname.endswith("." + self.domain)
        if query.header.opcode != OPCODE_QUERY:
            reply.header.rcode = RCODE.NOTIMP
        elif not in_domain:  # what an upstream server would say about a name nobody has (without asking one)
            reply.header.aa = 0
            reply.header.rcode = RCODE.NXDOMAIN
        elif int(question.qclass) not in (CLASS.IN, QCLASS_ANY):
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
        elif not records.synced:
            reply.header.aa = 0
            reply.header.rcode = RCODE.SERVFAIL
        elif qname in records.cname:
            reply.add_answer(RR(question.qname, QTYPE.CNAME, CLASS.IN, ttl=TTL, rdata=CNAME(records.cname[qname])))
        elif qname in records.names:
            if qtype in (QTYPE.A, QTYPE.ANY):
                for ip in records.a.get(qname, ()):
                    reply.add_answer(RR(question.qname, QTYPE.A, CLASS.IN, ttl=TTL, rdata=A(ip)))
            if qtype in (QTYPE.AAAA, QTYPE.ANY):
                for ip in records.aaaa.get(qname, ()):
                    reply.add_answer(RR(question.qname, QTYPE.AAAA, CLASS.IN, ttl=TTL, rdata=AAAA(ip)))
            if qname == self.domain and qtype in (QTYPE.SOA, QTYPE.ANY):
                reply.add_answer(self._soa())
            if not reply.rr:
                reply.add_auth(self._soa())
        else:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa())
        if self.verbose:
            log(
                f"{'udp' if udp else 'tcp'} {QTYPE.get(qtype, qtype)} {qname} -> {RCODE.get(reply.header.rcode)} "
                f"{len(reply.rr)} answers"
            )
        data: bytes = reply.pack()
        if udp:
            limit = max(UDP_PAYLOAD, min(int(edns[0].rclass), EDNS_PAYLOAD)) if edns else UDP_PAYLOAD
            if len(data) > limit:
                data = reply.truncate().pack()
        return data


# --------------------------------------------------------------------------------------------------------------------
# The API server
# --------------------------------------------------------------------------------------------------------------------


SERVICES = "/api/v1/services"
ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1/endpointslices"


class ApiSource:
    """Lists (and watches) Services and EndpointSlices with a client certificate."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path, timeout: float = 5.0) -> None:
        self.server = server
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(cert), str(key))
        self.client = self.new_client()
        self.resource_versions: dict[str, str] = {}  # of the last successful list, where a watch starts

    def new_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server, verify=self.context, timeout=self.timeout)

    def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        for _ in range(MAX_LIST_PAGES):
            params = {"limit": "500", **({"continue": token} if token else {})}
            response = self.client.get(path, params=params)
            response.raise_for_status()
            body = response.json()
            items += body.get("items") or []
            metadata = body.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                self.resource_versions[path] = str(metadata.get("resourceVersion") or "")
                return items
        raise RuntimeError(f"{path}: more than {MAX_LIST_PAGES} pages")

    def fetch(self, domain: str) -> Records:
        return Records.build(domain, self._list(SERVICES), self._list(ENDPOINT_SLICES))

    def watch(self, path: str, wake: threading.Event, stop: threading.Event) -> None:
        """Set ``wake`` on every change of ``path``'s objects (a watch as a trigger only; the lists are the truth)."""
        with self.new_client() as client:
            while not stop.is_set():
                params = {"watch": "1", "timeoutSeconds": str(WATCH_SECONDS)}
                if self.resource_versions.get(path):
                    params["resourceVersion"] = self.resource_versions[path]
                try:
                    timeout = httpx.Timeout(self.timeout, read=WATCH_SECONDS + 10.0)
                    with client.stream("GET", path, params=params, timeout=timeout) as response:
                        response.raise_for_status()
                        for line in response.iter_lines():
                            if stop.is_set():
                                return
                            if line.strip():
                                wake.set()
                except (httpx.HTTPError, OSError):
                    pass  # the periodic list notices and logs an unreachable API server
                stop.wait(WATCH_PAUSE)

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------------------------------


def serve_udp(sock: socket.socket, resolver: Resolver, stop: threading.Event) -> None:
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            packet, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        except OSError:
            if stop.is_set():
                return
            time.sleep(0.05)
            continue
        reply = resolver.answer(packet, udp=True)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _serve_tcp_client(conn: socket.socket, resolver: Resolver, slots: threading.Semaphore) -> None:
    try:
        with conn:
            conn.settimeout(TCP_IDLE_TIMEOUT)
            for _ in range(100):  # messages per connection
                header = _recv_exact(conn, 2)
                if header is None:
                    return
                packet = _recv_exact(conn, struct.unpack("!H", header)[0])
                if packet is None:
                    return
                reply = resolver.answer(packet, udp=False)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
    except OSError:
        pass
    finally:
        slots.release()


def serve_tcp(sock: socket.socket, resolver: Resolver, stop: threading.Event) -> None:
    sock.settimeout(0.5)
    slots = threading.Semaphore(MAX_TCP_CLIENTS)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            if stop.is_set():
                return
            time.sleep(0.05)
            continue
        if not slots.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(target=_serve_tcp_client, args=(conn, resolver, slots), daemon=True).start()


def bind(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        udp.bind((address, port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, port))
        tcp.listen(64)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


# --------------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------------


def refresh_loop(
    resolver: Resolver, source: ApiSource, interval: float, wake: threading.Event, stop: threading.Event
) -> None:
    """List on every change the watches report, and at least every ``interval`` seconds.

    While the API server is away the last records stay in use (failures and recoveries are logged once).
    """
    failing = False
    while not stop.is_set():
        wake.clear()
        try:
            records = source.fetch(resolver.domain)
        except (httpx.HTTPError, ValueError, RuntimeError, OSError) as exc:
            if not failing:
                kept = "keeping the last records" if resolver.records.synced else "no records yet"
                log(f"listing Services failed ({type(exc).__name__}: {exc}); {kept}, retrying every {interval:g}s")
            failing = True
        else:
            if failing:
                log("API server reachable again")
            failing = False
            previous = resolver.records
            if (records.a, records.aaaa, records.cname, records.names) != (
                previous.a,
                previous.aaaa,
                previous.cname,
                previous.names,
            ):
                resolver.records = records
                log(("records updated: " if previous.synced else "first list: ") + records.summary())
        if wake.wait(interval) and not failing:
            stop.wait(BURST_DELAY)  # let a burst of changes (a rollout) settle into one list


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cluster_dns.py", description=__doc__.split("\n\n", 1)[0] if __doc__ else None
    )
    parser.add_argument("--listen", required=True, help="the one address to answer on (UDP and TCP)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--domain", default=DEFAULT_DOMAIN, help="the cluster domain")
    parser.add_argument("--server", required=True, help="API server URL")
    parser.add_argument("--ca", type=Path, required=True, help="CA certificate of the API server")
    parser.add_argument("--cert", type=Path, required=True, help="client certificate (may list Services)")
    parser.add_argument("--key", type=Path, required=True, help="client key")
    parser.add_argument("--interval", type=float, default=1.0, help="most seconds between two lists")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every query")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()
    wake = threading.Event()  # a watch saw a change, or a signal came

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(f"signal {signum}: stopping")
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        udp, tcp = bind(args.listen, args.port)
    except (OSError, ValueError) as exc:
        log(f"cannot bind {args.listen}:{args.port}: {exc}")
        return 1
    resolver = Resolver(args.domain, verbose=args.verbose)
    source = ApiSource(args.server, args.ca, args.cert, args.key)
    threads = [
        threading.Thread(target=serve_udp, args=(udp, resolver, stop), name="udp", daemon=True),
        threading.Thread(target=serve_tcp, args=(tcp, resolver, stop), name="tcp", daemon=True),
    ]
    for thread in threads:
        thread.start()
    log(f"serving {resolver.domain} on {args.listen}:{args.port} (udp, tcp) from {args.server}")
    for path in (SERVICES, ENDPOINT_SLICES):  # daemon threads: a watch may block in a read until the exit
        threading.Thread(target=source.watch, args=(path, wake, stop), name=f"watch {path}", daemon=True).start()
    try:
        refresh_loop(resolver, source, max(0.1, args.interval), wake, stop)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2.0)
        udp.close()
        tcp.close()
        source.close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
