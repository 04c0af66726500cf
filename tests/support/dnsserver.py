"""A small authoritative DNS server for tests (dnslib), on 127.0.0.1, UDP and TCP, own thread.

Why not dnslib's own `DNSServer`: tests need to make a name answer SERVFAIL or not answer at all
(a timeout), to see which queries arrived, and to change records while the server runs; a plain
select loop over one UDP and one TCP socket on the same port does all of that in a page.

Behaviour (what resolvers see):
- Names with records of the asked type get them (AA set). A CNAME at the name is returned, and
  followed inside our own data, for any other type (RFC 1034 3.6.2).
- A name we hold no records for, and which is not the parent of one we hold (an empty
  non-terminal, RFC 8020), gets NXDOMAIN; a known name without the asked type gets NOERROR with
  an empty answer (NODATA).
- UDP answers larger than the client's limit (512, or its EDNS payload size) are sent truncated
  (TC) with no records, so clients retry over TCP (RFC 1035 4.2.1, RFC 7766).
- `fail(name)` makes a name answer SERVFAIL, or nothing at all ("timeout"); `fail("*")` does so
  for every name without a failure mode of its own.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from types import TracebackType
from typing import Any

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord

_TYPES = {"A", "AAAA", "MX", "TXT", "PTR", "CNAME"}
# RFC 1035 4.2.1: UDP messages are limited to 512 octets without EDNS (RFC 6891).
_UDP_DEFAULT = 512
# RFC 1035 3.3.14 / 3.3: a character-string holds at most 255 octets.
_TXT_CHUNK = 255


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


class DnsServer:
    """Authoritative test DNS server; `spec` is the value for MAILWRIGHT_DNS_SERVERS."""

    def __init__(self) -> None:
        self._records: dict[str, list[tuple[str, Any, int]]] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = socket.socketpair()
        self.port = 0

    # ----- life cycle ---------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        # One port for both transports: bind UDP on a free port, then TCP on the same one
        # (retry with another port in the rare case TCP's is taken).
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise RuntimeError("no free port for the test DNS server")
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop_w.send(b"x")
        self._thread.join(10)
        self._thread = None
        for sock in (self._udp, self._tcp, self._stop_r, self._stop_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- data ---------------------------------------------------------------------------------
    def add(self, name: str, rtype: str, value: str | tuple[int, str], ttl: int = 60) -> None:
        rtype = rtype.upper()
        if rtype not in _TYPES:
            raise ValueError(f"unsupported record type {rtype}")
        with self._lock:
            self._records.setdefault(_norm(name), []).append((rtype, value, ttl))

    def remove(self, name: str, rtype: str | None = None) -> None:
        key = _norm(name)
        with self._lock:
            if rtype is None:
                self._records.pop(key, None)
                self._failures.pop(key, None)
                return
            kept = [r for r in self._records.get(key, []) if r[0] != rtype.upper()]
            if kept:
                self._records[key] = kept
            else:
                self._records.pop(key, None)

    def fail(self, name: str, mode: str = "servfail") -> None:
        if mode not in {"servfail", "timeout"}:
            raise ValueError(f"unknown failure mode {mode}")
        with self._lock:
            self._failures[_norm(name)] = mode

    def heal(self, name: str) -> None:
        """Undo `fail(name)`: the name answers from its records again."""
        with self._lock:
            self._failures.pop(_norm(name), None)

    # ----- answering ----------------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return name in self._records or any(k.endswith("." + name) for k in self._records)

    def _rr(self, name: str, rtype: str, value: Any, ttl: int) -> RR:
        rdata: Any
        if rtype == "A":
            rdata = A(value)
        elif rtype == "AAAA":
            rdata = AAAA(value)
        elif rtype == "MX":
            pref, host = value
            rdata = MX(host if host != "." else ".", pref)
        elif rtype == "TXT":
            raw = value.encode()
            chunks = [raw[i : i + _TXT_CHUNK] for i in range(0, len(raw), _TXT_CHUNK)] or [b""]
            rdata = TXT(chunks)
        elif rtype == "PTR":
            rdata = PTR(value)
        else:
            rdata = CNAME(value)
        return RR(name, getattr(QTYPE, rtype), rdata=rdata, ttl=ttl)

    def _answer(self, request: DNSRecord) -> DNSRecord | None:
        reply = request.reply()  # QR, AA (dnslib sets aa=1, ra=1 by default)
        reply.header.ra = 0
        qname = _norm(str(request.q.qname))
        qtype = QTYPE.get(request.q.qtype)
        self.queries.append((qname, str(qtype)))
        with self._lock:
            mode = self._failures.get(qname, self._failures.get("*"))
            if mode == "timeout":
                return None
            if mode == "servfail":
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            name = qname
            for _ in range(8):  # CNAME chains inside our data, bounded against loops
                records = self._records.get(name, [])
                matching = [r for r in records if r[0] == qtype]
                if matching:
                    for rtype, value, ttl in matching:
                        reply.add_answer(self._rr(name, rtype, value, ttl))
                    return reply
                cnames = [r for r in records if r[0] == "CNAME"]
                if not cnames:
                    break
                _, target, ttl = cnames[0]
                reply.add_answer(self._rr(name, "CNAME", target, ttl))
                name = _norm(target)
            if not self._exists(name):  # the end of a CNAME chain decides (RFC 6604)
                reply.header.rcode = RCODE.NXDOMAIN
            return reply

    def _reply_bytes(self, data: bytes, udp: bool) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:  # garbage from a test client: ignore it, as a server would
            return None
        reply = self._answer(request)
        if reply is None:
            return None
        packed: bytes = reply.pack()
        if udp:
            limit = _UDP_DEFAULT
            for rr in request.ar:
                if rr.rtype == QTYPE.OPT:
                    limit = max(_UDP_DEFAULT, rr.rclass)  # EDNS: CLASS is the payload size
            if len(packed) > limit:
                truncated = request.reply()
                truncated.header.tc = 1
                truncated.header.ra = 0
                packed = truncated.pack()
        return packed

    def _serve(self) -> None:
        assert self._udp is not None
        assert self._tcp is not None
        sel = selectors.DefaultSelector()
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "tcp")
        sel.register(self._stop_r, selectors.EVENT_READ, "stop")
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "stop":
                        return
                    if key.data == "udp":
                        data, addr = self._udp.recvfrom(65535)
                        out = self._reply_bytes(data, udp=True)
                        if out is not None:
                            self._udp.sendto(out, addr)
                    else:
                        conn, _ = self._tcp.accept()
                        threading.Thread(target=self._tcp_client, args=(conn,), daemon=True).start()
        finally:
            sel.close()

    def _tcp_client(self, conn: socket.socket) -> None:
        # RFC 1035 4.2.2 / RFC 7766: two-octet length prefix; several queries per connection.
        conn.settimeout(10)
        with contextlib.closing(conn), contextlib.suppress(OSError):
            while True:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = _recv_exact(conn, length)
                if data is None:
                    return
                out = self._reply_bytes(data, udp=False)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
