"""The fake kube-apiserver must itself be faithful, or the plugin's end-to-end tests prove nothing.

Clients here are deliberately the standard library's (``http.client``, ``urllib``, raw sockets), not the
HTTP library the plugin uses, so a bug shared by the plugin and its test client cannot hide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Optional

import pytest
import trustme
from fakeapi import (
    CAPTURES_DIR,
    HTTP_CAPTURES,
    UNAUTHORIZED_BODY,
    FakeApiServer,
    Reply,
    etcd_down_routes,
    healthy_routes,
    load_capture,
    parse_capture,
    shutdown_routes,
)

CAPTURE_FILES = list(HTTP_CAPTURES)

TIMEOUT = 5.0


class Answer:
    """A response read completely, so assertions can look at it after the connection is gone."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, f"header {name} sent {len(values)} times"
        return values[0] if values else None


def client_context(server: FakeApiServer, cert: Optional[tuple[str, str]] = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server.ca_file)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def connect(server: FakeApiServer, context: Optional[ssl.SSLContext] = None) -> http.client.HTTPConnection:
    if server.url.startswith("http://"):
        return http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    return http.client.HTTPSConnection(
        "127.0.0.1", server.port, timeout=TIMEOUT, context=context or client_context(server)
    )


def get(
    server: FakeApiServer,
    path: str,
    headers: Optional[dict[str, str]] = None,
    context: Optional[ssl.SSLContext] = None,
    method: str = "GET",
) -> Answer:
    conn = connect(server, context)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, response.reason, response.getheaders(), body)
    finally:
        conn.close()


@contextlib.contextmanager
def tls_connect(port: int, context: ssl.SSLContext, hostname: str = "127.0.0.1") -> Iterator[ssl.SSLSocket]:
    plain = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with plain, context.wrap_socket(plain, server_hostname=hostname) as tls:
        yield tls


def raw_exchange(server: FakeApiServer, request: bytes) -> bytes:
    """Everything the server sends until it closes, for byte-level checks no HTTP client would allow."""
    with tls_connect(server.port, client_context(server)) as tls:
        tls.sendall(request)
        chunks: list[bytes] = []
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


# -- captures ---------------------------------------------------------------------------------------------


def test_all_captures_are_found() -> None:
    # Guards the parametrised test below against silently running on an empty list.
    assert len(CAPTURE_FILES) >= 45
    assert "etcd-down/readyz_verbose.txt" in CAPTURE_FILES


@pytest.mark.parametrize("relpath", CAPTURE_FILES)
def test_capture_parses_byte_exact(relpath: str) -> None:
    raw = (CAPTURES_DIR / relpath).read_bytes()
    capture = load_capture(relpath)

    assert 200 <= capture.status <= 599
    assert capture.body == raw.split(b"\r\n\r\n", 1)[1]
    assert capture.reason == HTTPStatus(capture.status).phrase
    length = capture.header("Content-Length")
    if length is None:
        # A long list (LeaseList, APIServiceList, a webhook configuration list) is streamed: HTTP/2 without a length
        assert capture.status == 200 and json.loads(capture.body)["kind"].endswith("List"), relpath
    else:
        assert int(length) == len(capture.body)
    assert capture.header("content-type") in ("text/plain; charset=utf-8", "application/json")
    for name, value in capture.headers:
        assert name and "\r" not in name + value and "\n" not in name + value


def test_capture_status_lines() -> None:
    http2 = load_capture("etcd-down/readyz_verbose.txt")
    assert (http2.status, http2.reason) == (500, "Internal Server Error")
    http11 = load_capture("auth/readyz_user_forbidden_http11.txt")
    assert (http11.status, http11.reason) == (403, "Forbidden")
    assert http11.header("Content-Type") == "application/json"


def test_capture_bodies_keep_missing_and_present_newlines() -> None:
    assert load_capture("healthy/readyz_none.txt").body == b"ok"
    assert load_capture("healthy/readyz_nonexistent_sysmon.txt").body == b"404 page not found\n"
    wrong_token = load_capture("auth/readyz_wrong_token.txt").body
    assert wrong_token.startswith(b'{\n  "kind": "Status",\n')
    assert wrong_token.endswith(b'"code": 401\n}')
    assert b"\r" not in wrong_token


def test_parse_capture_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="blank line"):
        parse_capture(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
    with pytest.raises(ValueError, match="status line"):
        parse_capture(b"hello\r\n\r\nok")
    parsed = parse_capture(b"HTTP/2 503 \r\nx: y\r\n\r\n\r\n\r\n")
    assert (parsed.status, parsed.reason, parsed.headers, parsed.body) == (
        503,
        "Service Unavailable",
        (("x", "y"),),
        b"\r\n\r\n",
    )


def test_reply_from_capture_drops_only_per_transfer_headers() -> None:
    reply = Reply.from_capture("etcd-down/readyz_etcd_subpath_reason.txt")
    assert reply.status == 500
    assert reply.body == b"internal server error: error getting data from etcd: context deadline exceeded\n"
    names = [name for name, _ in reply.headers]
    assert names == [
        "Audit-Id",
        "Cache-Control",
        "Content-Type",
        "X-Content-Type-Options",
        "X-Kubernetes-Pf-Flowschema-Uid",
        "X-Kubernetes-Pf-Prioritylevel-Uid",
    ]


# -- serving ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relpath",
    [
        "healthy/readyz_verbose_none.txt",
        "healthy/readyz_none.txt",
        "etcd-down/readyz_verbose.txt",
        "etcd-down/readyz_etcd_subpath_reason.txt",
        "auth/readyz_user_forbidden_http11.txt",
    ],
)
def test_serves_capture_byte_exact_over_tls(relpath: str) -> None:
    capture = load_capture(relpath)
    with FakeApiServer({"/readyz": Reply.from_capture(relpath)}) as server:
        response = raw_exchange(
            server, b"GET /readyz?verbose HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )

    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == f"HTTP/1.1 {capture.status} {capture.reason}"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert body == capture.body
    assert headers["Content-Length"] == str(len(capture.body))
    assert headers["Content-Type"] == capture.header("content-type")
    assert headers["Audit-Id"] == capture.header("audit-id")
    assert "Server" not in headers


def test_keep_alive_reuses_one_connection() -> None:
    routes = healthy_routes()
    with FakeApiServer(routes) as server:
        conn = connect(server)
        try:
            conn.connect()
            first_sock = conn.sock
            bodies = []
            for path in ("/readyz?verbose", "/livez?verbose", "/healthz?verbose"):
                conn.request("GET", path)
                response = conn.getresponse()
                bodies.append(response.read())
                assert not response.will_close
                # http.client would silently reconnect if the server had closed the connection.
                assert conn.sock is first_sock
        finally:
            conn.close()
        assert [seen.path for seen in server.requests] == ["/readyz", "/livez", "/healthz"]
    assert bodies == [routes["/readyz"].body, routes["/livez"].body, routes["/healthz"].body]


def test_unknown_path_is_404() -> None:
    with FakeApiServer(healthy_routes()) as server:
        answer = get(server, "/livez/")
    assert (answer.status, answer.body) == (404, b"404 page not found\n")
    assert answer.header("content-type") == "text/plain; charset=utf-8"


def test_head_sends_headers_without_body() -> None:
    with FakeApiServer(healthy_routes()) as server:
        answer = get(server, "/readyz", method="HEAD")
        assert server.requests[0].method == "HEAD"
    assert answer.status == 200
    assert answer.body == b""
    assert answer.header("Content-Length") == str(len(healthy_routes()["/readyz"].body))


def test_only_loopback_and_random_port() -> None:
    with FakeApiServer(healthy_routes()) as one, FakeApiServer(healthy_routes(), tls=False) as two:
        assert one.url == f"https://127.0.0.1:{one.port}"
        assert two.url == f"http://127.0.0.1:{two.port}"
        assert one.port != two.port
        assert one.port > 0


def test_certificate_is_checked_against_the_ca() -> None:
    with FakeApiServer(healthy_routes()) as server:
        stranger = ssl.create_default_context()
        trustme.CA().configure_trust(stranger)
        with pytest.raises(ssl.SSLCertVerificationError):
            get(server, "/readyz", context=stranger)
        assert Path(server.ca_file).read_bytes() == server.ca.cert_pem.bytes()
        assert get(server, "/readyz").status == 200


def test_server_names_become_the_certificate_names() -> None:
    with FakeApiServer(healthy_routes(), server_names=("kubernetes.default.svc",)) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"127\.0\.0\.1"):
            get(server, "/readyz")
        with tls_connect(server.port, client_context(server), "kubernetes.default.svc") as tls:
            cert = tls.getpeercert()
    assert cert is not None
    assert cert["subjectAltName"] == (("DNS", "kubernetes.default.svc"),)


def test_shared_ca() -> None:
    ca = trustme.CA()
    with FakeApiServer(healthy_routes(), ca=ca) as server:
        assert server.ca is ca
        context = ssl.create_default_context()
        ca.configure_trust(context)
        assert get(server, "/livez", context=context).status == 200


def test_ca_file_is_removed_on_exit() -> None:
    with FakeApiServer(healthy_routes()) as server:
        ca_file = Path(server.ca_file)
        assert ca_file.is_file()
    assert not ca_file.exists()
    assert not ca_file.parent.exists()


def test_plain_http() -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with FakeApiServer(healthy_routes(), tls=False) as server:
        response = opener.open(server.url + "/livez?verbose", timeout=TIMEOUT)
        with response:
            status, body = response.status, response.read()
    assert status == 200
    assert body == load_capture("healthy/livez_verbose_none.txt").body


# -- authentication ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anonymous", "authorization", "expected"),
    [
        (True, None, 200),
        (True, "Bearer secret", 200),
        (True, "Bearer wrong", 401),
        (True, "secret", 401),
        (True, "Basic c2VjcmV0", 401),
        (False, None, 401),
        (False, "Bearer secret", 200),
        (False, "Bearer wrong", 401),
    ],
)
def test_token_and_anonymous_modes(anonymous: bool, authorization: Optional[str], expected: int) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with FakeApiServer(healthy_routes(), token="secret", anonymous=anonymous) as server:
        answer = get(server, "/readyz?verbose", headers=headers)
        assert server.requests[0].header("authorization") == authorization
    assert answer.status == expected
    if expected == 401:
        assert answer.reason == "Unauthorized"
        assert answer.body == UNAUTHORIZED_BODY
        assert len(answer.body) == 129
        assert answer.header("Content-Type") == "application/json"
        assert answer.header("Content-Length") == "129"
    else:
        assert answer.body == load_capture("healthy/readyz_verbose_none.txt").body


def test_without_token_any_authorization_is_accepted() -> None:
    with FakeApiServer(healthy_routes()) as server:
        assert get(server, "/readyz", headers={"Authorization": "Bearer anything"}).status == 200


def test_authentication_comes_before_routing() -> None:
    with FakeApiServer(healthy_routes(), token="secret") as server:
        assert get(server, "/nope", headers={"Authorization": "Bearer wrong"}).status == 401
        assert get(server, "/nope", headers={"Authorization": "Bearer secret"}).status == 404


# -- requests as seen -------------------------------------------------------------------------------------


def test_query_is_parsed_and_recorded_pair_by_pair() -> None:
    routes = etcd_down_routes()
    with FakeApiServer(routes) as server:
        answer = get(server, "/readyz?verbose&exclude=etcd&exclude=etcd-readiness&exclude=")
        (seen,) = server.requests
    assert seen.method == "GET"
    assert seen.path == "/readyz"
    assert seen.query == [
        ("verbose", ""),
        ("exclude", "etcd"),
        ("exclude", "etcd-readiness"),
        ("exclude", ""),
    ]
    assert seen.params("exclude") == ["etcd", "etcd-readiness", ""]
    # The route answers the same whatever the query says.
    assert (answer.status, answer.body) == (500, routes["/readyz"].body)


def test_path_is_recorded_raw() -> None:
    with FakeApiServer({}) as server:
        get(server, "/readyz/poststarthook/rbac/bootstrap-roles")
        get(server, "/readyz/poststarthook%2Frbac?exclude=a%2Cb")
        first, second = server.requests
    assert first.path == "/readyz/poststarthook/rbac/bootstrap-roles"
    assert second.path == "/readyz/poststarthook%2Frbac"
    assert second.query == [("exclude", "a,b")]


def test_headers_are_recorded() -> None:
    with FakeApiServer(healthy_routes()) as server:
        get(server, "/livez", headers={"Accept": "application/json", "User-Agent": "check_k8s_health/1"})
        (seen,) = server.requests
    assert seen.headers["Accept"] == "application/json"
    assert seen.header("user-agent") == "check_k8s_health/1"
    assert seen.header("x-missing") is None


def test_clear_and_set_route_while_running() -> None:
    with FakeApiServer(healthy_routes()) as server:
        assert get(server, "/readyz").status == 200
        server.set_route("/readyz", etcd_down_routes()["/readyz"])
        server.clear_requests()
        assert get(server, "/readyz").status == 500
        server.set_route("/readyz", None)
        assert get(server, "/readyz").status == 404
        assert len(server.requests) == 2


# -- faults -----------------------------------------------------------------------------------------------


def test_delay() -> None:
    with FakeApiServer({"/readyz": Reply(200, b"ok", delay=0.3)}) as server:
        started = time.monotonic()
        answer = get(server, "/readyz")
        elapsed = time.monotonic() - started
    assert answer.body == b"ok"
    assert 0.3 <= elapsed < 2.0


def test_trickle_sends_head_first_then_one_byte_at_a_time() -> None:
    with FakeApiServer({"/readyz": Reply(200, b"abcdef", trickle=0.06)}) as server:
        conn = connect(server)
        try:
            started = time.monotonic()
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            head_after = time.monotonic() - started
            first = response.read(1)
            body = first + response.read()
            body_after = time.monotonic() - started
        finally:
            conn.close()
    assert response.getheader("Content-Length") == "6"
    assert body == b"abcdef"
    assert head_after < 0.2
    assert body_after >= 0.35


def test_close_mid_body() -> None:
    with FakeApiServer({"/readyz": Reply(200, b"0123456789", close_mid_body=True)}) as server:
        conn = connect(server)
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            assert response.getheader("Content-Length") == "10"
            with pytest.raises(http.client.IncompleteRead) as caught:
                response.read()
        finally:
            conn.close()
    assert caught.value.partial == b"01234"


def test_close_mid_body_with_empty_body_still_lies() -> None:
    with FakeApiServer({"/readyz": Reply(200, close_mid_body=True)}) as server:
        conn = connect(server)
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            assert response.getheader("Content-Length") == "1"
            with pytest.raises(http.client.IncompleteRead):
                response.read()
        finally:
            conn.close()


def test_raw_http10_without_length() -> None:
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n[+]ping ok\nreadyz check passed\n"
    with FakeApiServer({"/readyz": Reply(200, raw=raw)}) as server:
        answer = get(server, "/readyz")
        assert raw_exchange(server, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") == raw
    assert (answer.status, answer.body) == (200, b"[+]ping ok\nreadyz check passed\n")
    assert answer.header("Content-Length") is None


def test_raw_garbage() -> None:
    server = FakeApiServer({"/readyz": Reply(200, raw=b"SSH-2.0-OpenSSH_9.6\r\n")})
    with server, pytest.raises(http.client.BadStatusLine):
        get(server, "/readyz")


def test_hang_does_not_block_shutdown() -> None:
    outcome: list[bytes] = []

    def client(port: int, context: ssl.SSLContext) -> None:
        with tls_connect(port, context) as tls:
            tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                outcome.append(tls.recv(65536))
            except OSError as exc:
                outcome.append(repr(exc).encode())

    server = FakeApiServer({"/readyz": Reply(200, b"ok", hang=True)})
    with server:
        thread = threading.Thread(target=client, args=(server.port, client_context(server)), daemon=True)
        thread.start()
        assert len(server.wait_for_requests(1)) == 1
        time.sleep(0.2)
        assert outcome == [], "a hanging reply answered"
        started = time.monotonic()
    stopped_after = time.monotonic() - started
    thread.join(TIMEOUT)

    # The brief allows 1 s; a handler that really wakes on the stop event ends in a few milliseconds, while
    # one that does not makes stop() sit out its 0.5 s grace period, which this bound catches.
    assert stopped_after < 0.45
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert not outcome[0].startswith(b"HTTP/")


def test_stop_is_fast_with_idle_keep_alive_and_slow_replies() -> None:
    server = FakeApiServer({"/readyz": Reply(200, b"ok"), "/slow": Reply(200, b"x" * 100, trickle=1.0)})
    with server:
        idle = connect(server)
        idle.request("GET", "/readyz")
        assert idle.getresponse().read() == b"ok"
        slow = connect(server)
        slow.request("GET", "/slow")
        assert slow.getresponse().status == 200
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    idle.close()
    slow.close()


def test_nothing_reaches_stderr(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with FakeApiServer({"/slow": Reply(200, b"x" * 50, trickle=0.01)}, require_client_cert=True) as server:
        # A plain-HTTP request on the TLS port fails the handshake.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\n\r\n")
            plain.recv(100)
        # A TLS client without certificate is rejected.
        with pytest.raises(OSError):
            get(server, "/slow")
        # An unknown method makes http.server log an error of its own.
        cert = server.issue_client_cert(tmp_path)
        with tls_connect(server.port, client_context(server, cert)) as tls:
            tls.sendall(b"BREW /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert tls.recv(100).startswith(b"HTTP/1.1 501 ")
        # A client giving up in the middle of the TLS handshake.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as plain:
            plain.sendall(b"\x16\x03\x01\x00")
        # A client disconnecting mid-body, while the server is still writing.
        conn = connect(server, client_context(server, cert))
        conn.request("GET", "/slow")
        assert conn.getresponse().status == 200
        conn.close()
        time.sleep(0.2)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# -- mutual TLS -------------------------------------------------------------------------------------------


def test_mtls_rejects_client_without_certificate(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), require_client_cert=True) as server:
        # Several times, because a server that closes too early loses the alert only now and then.
        for _ in range(10):
            with pytest.raises(ssl.SSLError, match=r"(?i)certificate.required"):
                get(server, "/readyz")
        assert server.requests == []
        cert = server.issue_client_cert(tmp_path)
        answer = get(server, "/readyz?verbose", context=client_context(server, cert))
        assert len(server.requests) == 1
    assert answer.status == 200
    assert answer.body == load_capture("healthy/readyz_verbose_none.txt").body


def test_mtls_rejects_certificate_from_another_ca(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), require_client_cert=True) as other:
        foreign = other.issue_client_cert(tmp_path)
    with FakeApiServer(healthy_routes(), require_client_cert=True) as server:
        with pytest.raises(OSError):
            get(server, "/readyz", context=client_context(server, foreign))
        assert server.requests == []


def test_client_certificate_authenticates_without_token(tmp_path: Path) -> None:
    with FakeApiServer(healthy_routes(), token="secret", anonymous=False, require_client_cert=True) as server:
        cert_path, key_path = server.issue_client_cert(tmp_path, common_name="nagios")
        assert (cert_path, key_path) != server.issue_client_cert(tmp_path)
        answer = get(server, "/livez", context=client_context(server, (cert_path, key_path)))
    assert answer.status == 200
    assert Path(cert_path).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE KEY-----" in Path(key_path).read_bytes()


# -- ready-made route sets --------------------------------------------------------------------------------


def test_route_sets_match_the_captured_states() -> None:
    with FakeApiServer(healthy_routes()) as healthy:
        assert {path: get(healthy, path).status for path in ("/readyz", "/livez", "/healthz")} == {
            "/readyz": 200,
            "/livez": 200,
            "/healthz": 200,
        }
    down = etcd_down_routes()
    assert {path: reply.status for path, reply in down.items()} == {
        "/readyz": 500,
        "/livez": 500,
        "/healthz": 500,
        "/readyz/etcd": 500,
    }
    assert b"[-]etcd failed: reason withheld\n" in down["/readyz"].body
    assert b"[-]etcd-readiness failed: reason withheld\n" in down["/readyz"].body
    assert down["/healthz"].body.endswith(b"\nhealthz check failed\n")
    assert down["/healthz"].body.replace(b"healthz check", b"livez check") == down["/livez"].body
    stopping = shutdown_routes()
    assert {path: reply.status for path, reply in stopping.items()} == {
        "/readyz": 500,
        "/livez": 200,
        "/healthz": 200,
        "/readyz/shutdown": 500,
    }
    assert stopping["/readyz/shutdown"].body == b"internal server error: process is shutting down\n"
    assert [line for line in stopping["/readyz"].body.split(b"\n") if line.startswith(b"[-]")] == [
        b"[-]shutdown failed: reason withheld"
    ]


def test_reply_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="three digits"):
        Reply(42)
    with pytest.raises(ValueError, match="negative"):
        Reply(200, delay=-1)
    reply = dataclasses.replace(Reply.from_capture("healthy/readyz_none.txt"), delay=0.5)
    assert (reply.status, reply.body, reply.delay) == (200, b"ok", 0.5)
