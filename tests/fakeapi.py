"""A fake kube-apiserver for end-to-end tests of check_k8s_health.

The plugin must be tested against real HTTP over real TLS (certificate checks, keep-alive, slow or broken
servers are where monitoring plugins go wrong), but a real cluster cannot be started in a unit test. This
module replays byte-exact answers captured from a real kube-apiserver v1.28 (see
``fixtures/captures/README.md``) from a threaded server bound to 127.0.0.1 only, and adds the failure modes
a real network produces (delays, hangs, trickling bodies, truncated bodies, garbage).

Only the standard library, ``trustme`` and its own dependency ``cryptography`` (for client certificates:
``clientcert``) are used, so the fake cannot share a bug with the HTTP client library under test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import ipaddress
import os
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Optional, Union

import clientcert
import trustme

__all__ = [
    "CAPTURES_DIR",
    "HOST",
    "HTTP_CAPTURES",
    "KNOWN_TOKENS",
    "UNAUTHORIZED_BODY",
    "Capture",
    "ConnectProxy",
    "FakeApiServer",
    "Reply",
    "Seen",
    "etcd_down_routes",
    "healthy_routes",
    "load_capture",
    "not_found_reply",
    "parse_capture",
    "shutdown_routes",
    "unauthorized_reply",
]

CAPTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "captures"
#: Every recorded HTTP answer; beside them lie what kubectl printed at the same moments (``blind/kubectl_*``), the
#: user's view of an outage, which no server sends, and the storage lines cut from a 1.6 MB ``/metrics`` answer
#: (``leaders/metrics_*``), a body without its headers.
HTTP_CAPTURES = tuple(sorted(name for name in (path.relative_to(CAPTURES_DIR).as_posix()
                                               for path in CAPTURES_DIR.rglob("*.txt"))
                             if not name.startswith(("blind/kubectl_", "leaders/metrics_"))))

#: Every token a fake server was given: the test suite's secret guard looks for them in the plugin's output.
KNOWN_TOKENS: set[str] = set()

# Tests must never reach anything but the loopback interface of the machine running them.
HOST = "127.0.0.1"

# What kube-apiserver sends to non-curl clients (python-requests, urllib, Go) for a rejected credential: the
# captures were taken with curl, whose User-Agent makes the server pretty-print instead.
UNAUTHORIZED_BODY = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n'
)

# Headers that describe one particular transfer rather than the answer: they are recomputed when serving.
_PER_TRANSFER_HEADERS = frozenset({"content-length", "date", "transfer-encoding", "connection", "keep-alive"})

# Long enough never to cut a deliberately slow test short, short enough that a forgotten client cannot keep a
# handler thread alive for the rest of the test session.
_SOCKET_TIMEOUT = 30.0

# How long a failed TLS handshake waits for the client to hang up before closing (see _Handler._linger).
_LINGER = 1.0

# How long a reply with ``after`` waits for the other request.
AFTER_WAIT = 5.0

# How long stop() waits for handler threads after closing their sockets; they wake at once, so this is slack.
_HANDLER_GRACE = 0.5


def _reason_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _go_canonical(name: str) -> str:
    """Spell a header name the way Go's net/http writes it on HTTP/1.1.

    The captures were negotiated over HTTP/2, where names are lower-case; an HTTP/1.1 client of the real
    server sees ``Audit-Id``, ``Content-Type`` and so on.
    """
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


@dataclass(frozen=True)
class Capture:
    """One recorded answer, kept exactly as captured so tests can compare against the original bytes."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """Header names differ in case between the HTTP/2 and HTTP/1.1 captures."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def parse_capture(data: bytes) -> Capture:
    """Split a capture at the first CRLF CRLF only, because bodies must stay byte-exact.

    Bodies use bare LF and some end without any newline (``ok``); nothing after the separator is touched.
    HTTP/2 status lines carry no reason phrase (``HTTP/2 500 ``), so it is filled in from the status code.
    """
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("capture has no blank line (CRLF CRLF) between head and body")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"capture does not start with an HTTP status line: {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2].strip() if len(parts) == 3 else ""
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"malformed header line in capture: {line!r}")
        headers.append((name.strip(), value.strip()))
    return Capture(status=status, reason=reason or _reason_for(status), headers=tuple(headers), body=body)


@functools.cache
def load_capture(relpath: str) -> Capture:
    """Read a capture relative to ``fixtures/captures``; cached because many tests replay the same files."""
    return parse_capture((CAPTURES_DIR / relpath).read_bytes())


@dataclass(frozen=True)
class Reply:
    """What the fake answers on one path, including the ways real networks and proxies misbehave.

    ``Content-Length`` given in ``headers`` is ignored: the server always announces the length of the body
    it actually sends (except with ``close_mid_body``, whose point is to lie). Without a ``Content-Type``
    a non-empty body is sent as ``text/plain; charset=utf-8``, as Go's content sniffing would for text.

    Special behaviours, checked in this order after ``delay``:
    ``hang``: read the request and never answer until the server stops (read timeouts).
    ``raw``: write these bytes verbatim as the whole response and close (garbage, HTTP/1.0 without length).
    ``close_mid_body``: announce the full length, send only the first half of the body, close (resets).
    ``trickle``: send the head at once, then one body byte every ``trickle`` seconds (slow servers; a
    per-read timeout never fires while a total deadline must).
    ``after``: answer only once a request for this other path has arrived too, else 504 after ``AFTER_WAIT``
    seconds: a client that asks both paths at once gets both answers, one that asks in turn gets a 504 (a
    proof of concurrency that does not depend on timing).
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    hang: bool = False
    trickle: float = 0.0
    close_mid_body: bool = False
    raw: Optional[bytes] = None
    after: Optional[str] = None

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 999:
            raise ValueError(f"HTTP status must have three digits, got {self.status}")
        if self.delay < 0 or self.trickle < 0:
            raise ValueError("delay and trickle must not be negative")

    @classmethod
    def from_capture(cls, relpath: str) -> Reply:
        """Replay a real answer; use ``dataclasses.replace`` on the result to add delays or faults.

        ``Date`` and ``Content-Length`` are regenerated per response, every other captured header is kept.
        """
        capture = load_capture(relpath)
        headers = tuple(
            (_go_canonical(name), value)
            for name, value in capture.headers
            if name.lower() not in _PER_TRANSFER_HEADERS
        )
        return cls(status=capture.status, body=capture.body, headers=headers)


@dataclass(frozen=True)
class Seen:
    """A request as it arrived, so tests can assert on what the plugin really sent over the wire.

    ``path`` is the raw request path without the query, not percent-decoded (check names with ``/`` must
    reach the server unencoded). ``headers`` keep the client's spelling of the names; use :meth:`header`
    for a case-insensitive lookup.
    """

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    #: The request body as it arrived (a write's patch), up to 64 KiB.
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """HTTP header names are case-insensitive, and clients differ in how they spell them."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def params(self, name: str) -> list[str]:
        """Repeated parameters (``exclude``) matter one by one, so every value is returned in order."""
        return [value for key, value in self.query if key == name]


@functools.cache
def not_found_reply() -> Reply:
    """The real server's answer for a path it has no handler for (also unknown check sub-paths)."""
    return Reply.from_capture("healthy/readyz_nonexistent_sysmon.txt")


@functools.cache
def unauthorized_reply() -> Reply:
    """The captured 401, with the compact body that every client except curl-like ones receives."""
    return dataclasses.replace(Reply.from_capture("auth/readyz_wrong_token.txt"), body=UNAUTHORIZED_BODY)


def _renamed_trailer(reply: Reply, old: bytes, new: bytes) -> Reply:
    if not reply.body.endswith(old):
        raise ValueError(f"capture body does not end with {old!r}")
    return dataclasses.replace(reply, body=reply.body[: -len(old)] + new)


def healthy_routes() -> dict[str, Reply]:
    """All three roots of a healthy v1.28 server, in their verbose form (what the plugin asks for)."""
    return {
        "/readyz": Reply.from_capture("healthy/readyz_verbose_none.txt"),
        "/livez": Reply.from_capture("healthy/livez_verbose_none.txt"),
        "/healthz": Reply.from_capture("healthy/healthz_verbose_none.txt"),
    }


def etcd_down_routes() -> dict[str, Reply]:
    """The server 20 s after etcd stopped answering.

    No ``/healthz`` was captured in that state; it is derived from the captured ``/livez`` by renaming the
    trailer, which is exactly how the healthy ``/healthz`` capture differs from the healthy ``/livez`` one
    (both endpoints run the same checks).
    """
    livez = Reply.from_capture("etcd-down/livez_verbose.txt")
    return {
        "/readyz": Reply.from_capture("etcd-down/readyz_verbose.txt"),
        "/livez": livez,
        "/healthz": _renamed_trailer(livez, b"livez check failed\n", b"healthz check failed\n"),
        "/readyz/etcd": Reply.from_capture("etcd-down/readyz_etcd_subpath_reason.txt"),
    }


def shutdown_routes() -> dict[str, Reply]:
    """The server during ``--shutdown-delay-duration``: only readyz fails, on its ``shutdown`` check.

    ``/healthz`` was not captured in that state; like ``/livez`` (whose capture is identical to the healthy
    one) it stays healthy, so the healthy ``/healthz`` capture is used.
    """
    return {
        "/readyz": Reply.from_capture("shutdown/readyz_verbose_during_shutdown_delay.txt"),
        "/livez": Reply.from_capture("shutdown/livez_verbose_during_shutdown_delay.txt"),
        "/healthz": Reply.from_capture("healthy/healthz_verbose_none.txt"),
        "/readyz/shutdown": Reply.from_capture("shutdown/readyz_shutdown_subpath_reason.txt"),
    }


class _Server(ThreadingHTTPServer):
    """Tracks open connections so that stopping never waits on a client, a hang or a keep-alive socket."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeApiServer, ssl_context: Optional[ssl.SSLContext], host: str, port: int) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        self._open: set[socket.socket] = set()
        self._open_changed = threading.Condition()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn(), which can stall for seconds in
        # sandboxes without DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, str]:
        # The TLS handshake is deferred to the handler thread: done here it would let one silent client
        # block every other connection.
        sock, address = self.socket.accept()
        # Go's net/http (the real API server) sets TCP_NODELAY; without it, the headers and body written apart
        # meet the client's delayed ACK and every keep-alive answer waits 40 ms: a cost of this fake, not of
        # any client.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is None:
            return sock, address
        try:
            wrapped = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError:
            sock.close()
            raise
        return wrapped, address

    def process_request(self, request: socketserver._RequestType, client_address: str) -> None:
        if isinstance(request, socket.socket):
            with self._open_changed:
                self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socketserver._RequestType) -> None:
        try:
            super().shutdown_request(request)
        finally:
            if isinstance(request, socket.socket):
                with self._open_changed:
                    self._open.discard(request)
                    self._open_changed.notify_all()

    def handle_error(self, request: socketserver._RequestType, client_address: str) -> None:
        # Client disconnects and failed handshakes are what many tests provoke on purpose, and the plugin's
        # tests check that nothing at all reaches stderr.
        pass

    def abort_connections(self, grace: float) -> None:
        """Wake handlers blocked in reads or writes so they finish now instead of at their socket timeout."""
        with self._open_changed:
            sockets = list(self._open)
        for sock in sockets:
            # socket.socket's own shutdown: SSLSocket.shutdown would also drop the TLS state under the
            # handler thread that is still using it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        with self._open_changed:
            self._open_changed.wait_for(lambda: not self._open, timeout=grace)


class _Handler(BaseHTTPRequestHandler):
    """Serves routes the way the real server does over HTTP/1.1, faults included."""

    protocol_version = "HTTP/1.1"
    timeout = _SOCKET_TIMEOUT

    @property
    def _fake(self) -> FakeApiServer:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except BaseException:
                self._linger()
                self.rfile.close()
                self.wfile.close()
                raise
            self._fake._count_handshake()

    def _linger(self) -> None:
        """Let the client read the TLS alert (e.g. "certificate required") before the connection goes.

        Closing a socket that still holds unread client data (the request sent right after a TLS 1.3
        handshake) makes the kernel send a reset, which can destroy the alert in flight: the client would see
        a bare EOF about one time in four, and tests of the plugin's TLS messages would flap.
        """
        sock = self.connection
        deadline = time.monotonic() + _LINGER
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_WR)
            while not self._fake._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                socket.socket.settimeout(sock, remaining)
                if not socket.socket.recv(sock, 65536):
                    break

    def log_message(self, format: str, *args: object) -> None:
        # Nothing may reach stderr: the plugin's tests assert a silent stderr.
        pass

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _serve(self, send_body: bool) -> None:
        split = urllib.parse.urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        fake = self._fake
        body = self._read_request_body()
        fake._record(
            Seen(
                method=self.command,
                path=split.path,
                query=urllib.parse.parse_qsl(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
            )
        )
        has_client_cert = isinstance(self.connection, ssl.SSLSocket) and bool(self.connection.getpeercert())
        reply = fake._reply_for(split.path, self.headers.get_all("Authorization") or [], has_client_cert,
                                urllib.parse.unquote(split.query))
        self._send(reply, send_body)

    def _read_request_body(self) -> bytes:
        # A body left unread would be taken for the next request on this keep-alive connection.
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return b""
        length = self.headers.get("Content-Length")
        kept = b""
        if length is not None:
            try:
                remaining = int(length)
            except ValueError:
                self.close_connection = True
                return b""
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
                kept = (kept + chunk)[:65536]
        return kept

    def _send(self, reply: Reply, send_body: bool) -> None:
        stopping = self._fake._stopping
        if reply.after is not None and not self._fake._seen_path(reply.after, AFTER_WAIT):
            reply = Reply(504, f"{reply.after} was not asked while this request waited\n".encode())
        if reply.delay > 0 and stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.hang:
            stopping.wait()
            self.close_connection = True
            return
        if reply.raw is not None:
            self.wfile.write(reply.raw)
            self.close_connection = True
            return

        body = reply.body
        announced = len(body)
        if reply.close_mid_body:
            body = body[: len(body) // 2]
            announced = max(announced, len(body) + 1)

        self.send_response_only(reply.status)
        names = set()
        for name, value in reply.headers:
            if name.lower() == "content-length":
                continue
            names.add(name.lower())
            self.send_header(name, value)
        if "content-type" not in names and reply.body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(announced))
        self.end_headers()

        if send_body:
            if reply.trickle > 0:
                for index in range(len(body)):
                    if stopping.wait(reply.trickle):
                        self.close_connection = True
                        return
                    self.wfile.write(body[index : index + 1])
            else:
                self.wfile.write(body)
        if reply.close_mid_body:
            self.close_connection = True


class FakeApiServer:
    """A kube-apiserver stand-in on 127.0.0.1 with a random port, used as a context manager.

    Authentication follows the real server where it matters for a monitoring plugin: with ``token`` set, a
    request carrying any ``Authorization`` other than exactly ``Bearer <token>`` gets 401 even when
    anonymous access is allowed; a request without one is served if ``anonymous`` (kubeadm) and gets 401
    if not (k3s, RKE2). A verified client certificate (``require_client_cert``) authenticates on its own,
    as x509 comes before tokens in the real server's authenticator chain.

    Authentication is decided before routing, like on the real server; unknown paths then get 404.
    """

    def __init__(
        self,
        routes: Mapping[str, Reply],
        *,
        token: Optional[str] = None,
        anonymous: bool = True,
        tls: bool = True,
        ca: Optional[trustme.CA] = None,
        server_names: Optional[Sequence[str]] = None,
        require_client_cert: bool = False,
        cert_not_after: Optional[datetime.datetime] = None,
        host: str = HOST,
        port: int = 0,
    ) -> None:
        """``host``: another loopback address (127.0.0.2, ::1) for the members of one control plane, which
        share a ``port``; the certificate then names that address (``server_names`` replaces the names)."""
        if isinstance(server_names, str):
            raise TypeError("server_names must be a sequence of names, not a single string")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"a fake server listens on loopback addresses only, not {host}")
        self._host = host
        self._bind_port = port
        server_names = (host, "localhost") if server_names is None else server_names
        self._routes: dict[str, Reply] = dict(routes)
        self._token = token
        if token:
            KNOWN_TOKENS.add(token)
        self._anonymous = anonymous
        self._tls = tls
        self._ca = ca if ca is not None else trustme.CA()
        self._server_names = tuple(server_names)
        self._require_client_cert = require_client_cert
        self._cert_not_after = cert_not_after
        self._handshakes = 0
        self._lock = threading.Lock()
        self._requests: list[Seen] = []
        self._request_arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._tmpdir: Optional[str] = None
        self._client_certs = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> FakeApiServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeApiServer is already running")
        self._stopping.clear()
        self._tmpdir = tempfile.mkdtemp(prefix="fakeapi-")
        try:
            self._ca.cert_pem.write_to_path(os.path.join(self._tmpdir, "ca.crt"))
            self._server = _Server(self, self._ssl_context() if self._tls else None, self._host, self._bind_port)
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeapi-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop within a fraction of a second, whatever clients and replies are still in progress."""
        server, thread, tmpdir = self._server, self._thread, self._tmpdir
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.abort_connections(_HANDLER_GRACE)
            server.server_close()
        if thread is not None:
            thread.join(timeout=1.0)
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        self._server = self._thread = self._tmpdir = None

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert(*self._server_names, not_after=self._cert_not_after).configure_cert(context)
        if self._require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            self._ca.configure_trust(context)
        return context

    # -- what tests use ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeApiServer is not running")
        return self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    @property
    def ca(self) -> trustme.CA:
        return self._ca

    @property
    def ca_file(self) -> str:
        """A PEM file for the plugin's ``--certificate-authority``; removed when the server stops."""
        if self._tmpdir is None:
            raise RuntimeError("FakeApiServer is not running")
        return os.path.join(self._tmpdir, "ca.crt")

    @property
    def requests(self) -> list[Seen]:
        """A snapshot: handler threads keep appending while a test looks at it."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Seen]:
        """Needed with ``hang`` and ``delay``: the client is still blocked when the request has arrived."""
        with self._request_arrived:
            self._request_arrived.wait_for(lambda: len(self._requests) >= count, timeout=timeout)
            return list(self._requests)

    def set_route(self, path: str, reply: Optional[Reply]) -> None:
        """Change an answer while running, to model a server whose state changes between two checks."""
        with self._lock:
            if reply is None:
                self._routes.pop(path, None)
            else:
                self._routes[path] = reply

    def issue_client_cert(
        self,
        tmpdir: Union[str, os.PathLike[str]],
        common_name: str = "check-k8s-health",
        organization: Optional[str] = "system:monitoring",
    ) -> tuple[str, str]:
        """Write a client certificate and key signed by this server's CA, as a kubeconfig would name them.

        The real server takes the user from CN and the groups from O, hence the defaults.
        """
        with self._lock:
            self._client_certs += 1
            serial = self._client_certs
        leaf = clientcert.issue(self._ca, common_name, organization)
        directory = Path(tmpdir)
        cert_path = directory / f"client-{serial}.crt"
        key_path = directory / f"client-{serial}.key"
        cert_path.write_bytes(leaf.cert_pem)
        key_path.write_bytes(leaf.key_pem)
        return str(cert_path), str(key_path)

    # -- used by the handler ----------------------------------------------------------------------------

    @property
    def handshakes(self) -> int:
        """Completed TLS handshakes: how many connections clients opened (keep-alive reuse shows here)."""
        with self._lock:
            return self._handshakes

    def _count_handshake(self) -> None:
        with self._lock:
            self._handshakes += 1

    def _seen_path(self, path: str, timeout: float) -> bool:
        with self._request_arrived:
            return self._request_arrived.wait_for(
                lambda: any(seen.path == path for seen in self._requests) or self._stopping.is_set(), timeout=timeout)

    def _record(self, seen: Seen) -> None:
        with self._request_arrived:
            self._requests.append(seen)
            self._request_arrived.notify_all()

    def _reply_for(self, path: str, authorization: Iterable[str], has_client_cert: bool, query: str = "") -> Reply:
        """A route named with its query (``/apis/...?labelSelector=...``, decoded) answers only that query;
        one named by its path alone answers every query."""
        values = list(authorization)
        if self._token is not None and not has_client_cert:
            if values:
                if values != [f"Bearer {self._token}"]:
                    return unauthorized_reply()
            elif not self._anonymous:
                return unauthorized_reply()
        with self._lock:
            reply = self._routes.get(f"{path}?{query}") if query else None
            reply = reply if reply is not None else self._routes.get(path)
        return reply if reply is not None else not_found_reply()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that tunnels to 127.0.0.1 only and counts its tunnels, to prove
    a kubeconfig's ``proxy-url`` is used."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._listener.getsockname()[1]}"

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ", 2)[:2]
            host, _, port = target.decode().rpartition(":")
            if method != b"CONNECT" or host != HOST:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target.decode())
            with socket.create_connection((HOST, int(port)), timeout=_SOCKET_TIMEOUT) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pump(client, upstream)


def _pump(left: socket.socket, right: socket.socket) -> None:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(left, selectors.EVENT_READ, right)
        selector.register(right, selectors.EVENT_READ, left)
        while True:
            for key, _ in selector.select(timeout=_SOCKET_TIMEOUT):
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
