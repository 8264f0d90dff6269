"""Acquisition over HTTP: the only module that imports requests.

One ``requests.Session`` per server and run, so every endpoint asked reuses one TLS connection. Every wait is
bounded by what is left of the deadline, redirects are never followed (a token must not travel to another
host), and the body is read up to a bound, so a hostile or broken server costs at most ``MAX_BODY`` bytes and
the time left. Failures leave this module only as ``TransportError`` subclasses carrying a sentence for the
operator; requests' own exception texts (which can be long and repeat the URL) stay inside.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

import requests
import urllib3
from requests.adapters import HTTPAdapter

from check_k8s_health import __version__
from check_k8s_health.base.deadline import Deadline
from check_k8s_health.base.errors import (
    AnswerBroken,
    ConfigError,
    ConnectFailed,
    ConnectTimedOut,
    OutOfTime,
    ReadTimedOut,
    TransportError,
)
from check_k8s_health.base.text import one_line
from check_k8s_health.model.settings import Target
from check_k8s_health.transport.answer import MAX_BODY, Answer

#: Under nagiosplugin's logger, so ``-vvv`` shows these lines in the plugin output and nothing reaches stderr.
_log = logging.getLogger("nagiosplugin.k8s_health.client")

_CHUNK = 16 * 1024
#: A scanned body is searched, not kept: larger pieces mean fewer reads of a body of megabytes.
_SCAN_CHUNK = 256 * 1024
#: Takes the next piece of a body; True once it has found what it looks for.
Scan = Callable[[bytes], bool]
#: Connections kept per server: every endpoint asked at once has its own, and so has every reason look-up in
#: flight; a run needs no more than that.
POOL_SIZE = 8


class BearerAuth(requests.auth.AuthBase):
    """Sets the Authorization header; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


class _ServerNameAdapter(HTTPAdapter):
    """Verifies the certificate against (and sends SNI for) a name other than the URL's host."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__(pool_maxsize=POOL_SIZE)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class _Session(requests.Session):
    """A session that never looks at redirects: requests reads a redirect's whole body to release the
    connection even with ``allow_redirects=False``, which would bypass ``MAX_BODY``. Redirects are reported,
    never followed, so there is nothing to resolve."""

    def get_redirect_target(self, resp: requests.Response) -> Optional[str]:
        return None


class HealthClient:
    """Asks one server for health answers within the run's deadline."""

    def __init__(self, target: Target, deadline: Deadline) -> None:
        self._target = target
        self._deadline = deadline
        #: notAfter of the server certificate (seconds since the epoch), read from the first verified connection.
        self.cert_not_after: Optional[float] = None
        self._session = _Session()
        self._session.mount("https://", HTTPAdapter(pool_maxsize=POOL_SIZE))
        self._session.mount("http://", HTTPAdapter(pool_maxsize=POOL_SIZE))
        # No .netrc credentials, no REQUESTS_CA_BUNDLE surprises: only what the settings say, plus proxies.
        self._session.trust_env = False
        tls = target.tls
        verify: Union[bool, str] = False
        if tls.verify:
            verify = tls.ca_file or True
        else:
            # The status line says "TLS not verified"; urllib3's warning would only reach stderr.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        self._session.verify = verify
        if tls.client_cert:
            self._session.cert = (tls.client_cert, tls.client_key) if tls.client_key else tls.client_cert
        if tls.server_name and not target.plain_http:
            self._session.mount("https://", _ServerNameAdapter(tls.server_name))
        self._session.headers.update({"User-Agent": f"check_k8s_health/{__version__}",
                                      "Accept": "application/json, */*"})
        if target.sends_token and target.credential.token is not None:
            self._session.auth = BearerAuth(target.credential.token.reveal())
        if target.proxy:
            self._session.proxies.update({"https": target.proxy, "http": target.proxy})
        elif any(name.lower().endswith("_proxy") for name in os.environ):
            # requests reads every variable twice to find none: with no *_proxy (or *_PROXY) set, it finds none.
            self._session.proxies.update(requests.utils.get_environ_proxies(target.url))

    def __enter__(self) -> HealthClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.close()

    def get(self, path: str, params: Sequence[tuple[str, str]] = (), budget: Optional[Deadline] = None,
            describe: Optional[str] = None, max_body: int = MAX_BODY, *, scan: Optional[Scan] = None) -> Answer:
        """``budget``: a share of the run's deadline when this request must end earlier than the run;
        ``describe``: how messages name what was asked, where the URL would be too long for a status line
        ("the EndpointSlice default/kubernetes from 10.0.0.1:6443"); ``max_body``: where the body is cut, for
        lists that can hold thousands of objects; ``scan``: hands the body over piece by piece instead of keeping
        it, until it says it has found what it looks for (the answer's body is then empty, and ``truncated``
        says that ``max_body`` bytes passed without that)."""
        return self._exchange("GET", path, params, budget=budget, describe=describe, max_body=max_body, scan=scan)

    def patch(self, path: str, document: bytes, content_type: str, budget: Optional[Deadline] = None,
              describe: Optional[str] = None) -> Answer:
        """A write (the ``--write-probe`` renewal of the plugin's own Lease): like ``get``, with a body."""
        return self._exchange("PATCH", path, (), budget=budget, describe=describe, max_body=MAX_BODY,
                              data=document, headers={"Content-Type": content_type})

    def _exchange(self, method: str, path: str, params: Sequence[tuple[str, str]], *, budget: Optional[Deadline],
                  describe: Optional[str], max_body: int, data: Optional[bytes] = None,
                  headers: Optional[Mapping[str, str]] = None, scan: Optional[Scan] = None) -> Answer:
        budget = budget or self._deadline
        url = self._target.url + path
        query = "?" + "&".join(k if v == "" else f"{k}={v}" for k, v in params) if params else ""
        shown = describe or url + query
        wait = budget.remaining()
        if wait <= 0:
            raise OutOfTime(f"{budget.label} left no time to ask {shown}")
        budget.enter(f"waiting for {shown}")
        started = time.monotonic()
        within = budget.label
        # total= caps connecting and reading together: a slow handshake leaves less time to wait for the answer.
        # requests hands a urllib3 Timeout through unchanged; its type hints only know numbers.
        timeout: Any = urllib3.Timeout(connect=wait, read=wait, total=wait)
        try:
            response = self._session.request(method, url, params=list(params), data=data, headers=headers,
                                             timeout=timeout, stream=True, allow_redirects=False)
            with response:
                body, truncated = self._read_body(response, shown, budget, max_body, scan)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # urllib3's own errors (ProtocolError, DecodeError) can escape requests while the body is read.
            _log.debug("%s failed after %.3f s: %r", shown, time.monotonic() - started, exc)
            raise _transport_error(exc, shown, within, self._target) from None
        except (ValueError, UnicodeError) as exc:
            # A URL urllib3 cannot parse (a host label over 63 characters, say) is the settings' fault.
            raise ConfigError(f"cannot build a request for {one_line(shown, 100)}: {one_line(str(exc), 80)}") from None
        _log.debug("%s %s -> HTTP %s, %d bytes in %.3f s, headers: %s", method, shown, response.status_code,
                   len(body), time.monotonic() - started, _one_header_line(response.headers))
        return Answer(url=url + query, status=response.status_code, reason=response.reason or "",
                      body=body.decode("utf-8", errors="replace"), elapsed=time.monotonic() - started,
                      truncated=truncated, location=response.headers.get("Location"),
                      retry_after=response.headers.get("Retry-After"), date=response.headers.get("Date"))

    def _read_body(self, response: requests.Response, shown: str, budget: Deadline, limit: int,
                   scan: Optional[Scan] = None) -> tuple[bytes, bool]:
        """Read at most ``limit`` bytes, re-arming the socket timeout so a trickling server cannot outlast
        the deadline one byte at a time. A ``scan`` of a successful answer takes each piece instead, and the
        rest of the body is never read once it has what it wants: a 30 MB ``/metrics`` costs what lies before
        the line it needs."""
        if scan is not None and response.status_code != 200:
            scan = None  # an error's body is kept, for the words of the failure
        sock = _socket_of(response)
        if self.cert_not_after is None and sock is not None and self._target.tls.verify:
            self.cert_not_after = _not_after(sock)
        chunks: list[bytes] = []
        size = 0
        read = _body_reader(response.raw)
        while size <= limit:
            left = budget.remaining()
            if left <= 0:
                raise ReadTimedOut(f"{shown} did not finish its answer within {budget.label}")
            if sock is not None:
                with contextlib.suppress(OSError):  # closed already when the body ended with the connection
                    sock.settimeout(left)
            chunk = read(_CHUNK if scan is None else _SCAN_CHUNK)
            if not chunk:
                return b"".join(chunks), False
            size += len(chunk)
            if scan is None:
                chunks.append(chunk)
            elif scan(chunk):
                return b"", False
        return b"".join(chunks)[:limit], True


def _body_reader(raw: Any) -> Callable[[int], bytes]:
    """Up to n bytes of what has arrived (urllib3 2's ``read1``): ``read(n)`` waits for n bytes, so against a
    server trickling a byte at a time the deadline check between reads would never run.

    urllib3 1.26 (Debian 12) has no ``read1``. There the steps of its own ``read`` run around http.client's
    ``read1``: its exception mapping, its Content-Encoding decoder, and a body shorter than its Content-Length
    reported as broken off, as urllib3 2 reports it. Should even those parts be missing, ``read`` it is."""
    read1 = getattr(raw, "read1", None)
    if read1 is not None:
        return lambda amount: bytes(read1(amount, decode_content=True))
    fp: Any = getattr(raw, "_fp", None)
    if not (hasattr(fp, "read1") and all(hasattr(raw, name) for name in ("_error_catcher", "_init_decoder",
                                                                          "_decode"))):
        return lambda amount: bytes(raw.read(amount, decode_content=True))

    def read(amount: int) -> bytes:
        raw._init_decoder()
        with raw._error_catcher():
            data = fp.read1(amount)
            left = getattr(fp, "length", None)
            if not data and left:
                raise http.client.IncompleteRead(b"", left)
            if data and left == 0:
                fp.read(0)  # only read() marks a finished body closed, which hands the connection back for reuse
        return bytes(raw._decode(data, True, not data))

    return read


def _not_after(sock: socket.socket) -> Optional[float]:
    """The server certificate's expiry; only a verified connection reports it (``getpeercert`` is empty
    otherwise), which is what SPEC section 6 asks: judge expiry only when the certificate was verified."""
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        certificate = getpeercert()
        return cert_time(certificate["notAfter"]) if certificate else None
    except (ValueError, KeyError, TypeError, OSError):
        return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cert_time(text: str) -> float:
    """``ssl.cert_time_to_seconds`` without ``time.strptime``, whose first use imports _strptime, locale and
    calendar (several milliseconds on every run): "May  9 12:00:00 2027 GMT" is always in this C-locale form."""
    month, day, clock, year = text.split()[:4]
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    # Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse, H. Hinnant).
    y, m = int(year) - (_MONTHS.index(month) + 1 <= 2), _MONTHS.index(month) + 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + int(day) - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def _one_header_line(headers: Mapping[str, str]) -> str:
    return one_line("; ".join(f"{name}: {value}" for name, value in headers.items()), 400)


def _socket_of(response: requests.Response) -> Optional[socket.socket]:
    try:
        sock = response.raw._fp.fp.raw._sock  # type: ignore[union-attr]
    except AttributeError:
        return None
    return sock if isinstance(sock, socket.socket) else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Every exception wrapped inside requests' and urllib3's, outermost first."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [arg for arg in current.args if isinstance(arg, BaseException)]
        # A context raised "from None" is hidden on purpose: urllib3 1.26 hides the TypeError of its Python 2
        # getresponse(buffering=True) attempt that way, and it says nothing about the server.
        for attr in ("reason", "__cause__") if current.__suppress_context__ else ("reason", "__cause__", "__context__"):
            value = getattr(current, attr, None)
            if isinstance(value, BaseException):
                nested.append(value)
        todo.extend(nested)


def _transport_error(exc: Exception, shown: str, within: str, target: Target) -> Exception:
    from check_k8s_health.transport.tls import reason, tls_error  # only a failure needs the words

    host = target.name
    causes = list(_causes(exc))
    text = " ".join(str(cause) for cause in causes)
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
        return tls_error(text, host, str(causes[-1]))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectTimedOut(f"cannot connect to {host}: no connection within {within}")
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return ReadTimedOut(f"{shown} did not answer within {within}")
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectFailed(f"cannot reach {host} through the proxy from the environment: {reason(text)}")
    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return AnswerBroken(f"{host} sent an answer to {shown} that cannot be decoded (broken Content-Encoding)")
    if any(isinstance(c, http.client.BadStatusLine) and not isinstance(c, http.client.RemoteDisconnected)
           for c in causes):
        return AnswerBroken(f"{host} answered {shown} with something that is not HTTP: check the port and scheme")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)) and \
            "without response" not in text and "RemoteDisconnected" not in text:
        return AnswerBroken(f"{host} broke off its answer to {shown}: the connection closed before the body "
                            "was complete")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        return ConfigError(f"cannot build a request for {shown}: {one_line(type(exc).__name__)}")
    if any(isinstance(c, socket.gaierror) for c in causes):
        return ConnectFailed(f"cannot resolve the host name of {host}: check the name or use its address")
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return ConnectFailed(f"cannot connect to {host}: connection refused (API server down or wrong port?)")
    if any(isinstance(c, ConnectionResetError) for c in causes):
        hint = " (a TLS port? use https://)" if target.plain_http else ""
        return ConnectFailed(f"{host} reset the connection{hint}")
    if "RemoteDisconnected" in text or "without response" in text:
        return AnswerBroken(f"{host} closed the connection without answering {shown}")
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return ConnectFailed(f"cannot connect to {host}: {cause.strerror.lower()}")
    return TransportError(f"request to {shown} failed: {reason(str(causes[-1]))}")
