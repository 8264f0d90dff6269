"""Every way a check can go wrong, and the state each one means.

Expected failures are exceptions of this module, so the boundary in ``cli`` can turn each into one status line
with the right exit code, and nothing else (argparse, nagiosplugin, requests) decides an exit code by accident::

    PluginError                   UNKNOWN unless a subclass says otherwise
    +-- UsageError                bad arguments (the parser reports these itself)
    +-- ConfigError               unreadable or malformed files, impossible combinations
    +-- OutOfTime                 the deadline left no time to ask (the plugin's own limit, not the server)
    +-- TransportError            CRITICAL: no usable HTTP answer arrived
        +-- ConnectFailed         refused, reset, DNS, unreachable, proxy
        |   +-- TlsFailed         handshake or certificate verification
        +-- ConnectTimedOut       no connection within the time left
        +-- ReadTimedOut          connected, but the answer did not complete in time
        +-- AnswerBroken          the connection ended in the middle of the answer

    DeadlineExceeded (BaseException)  UNKNOWN: the plugin's own -t ran out somewhere unbounded

``DeadlineExceeded`` derives from ``BaseException`` on purpose: it is raised from the SIGALRM handler at any
point, and libraries that catch ``Exception`` on the way must not swallow it.
"""

from __future__ import annotations


class PluginError(Exception):
    """A failure the user can act on; ``str()`` is the sentence shown to them."""

    exit_code = 3


class UsageError(PluginError):
    """The command line cannot work as given."""


class ConfigError(PluginError):
    """A file or setting the check depends on is missing, unreadable or malformed."""


class OutOfTime(PluginError):
    """The deadline was used up before a request could be sent: the server was never asked."""


class TransportError(PluginError):
    """No complete HTTP answer: the server (or the way to it) is down, which is what monitoring is for."""

    exit_code = 2
    #: Whether the failure happened before any request reached the server, so that other requests to the same
    #: server in this run would fail the same way and need not be tried.
    before_request = False


class ConnectFailed(TransportError):
    before_request = True


class TlsFailed(ConnectFailed):
    pass


class ConnectTimedOut(TransportError):
    before_request = True


class ReadTimedOut(TransportError):
    pass


class AnswerBroken(TransportError):
    pass


class DeadlineExceeded(BaseException):
    """The overall deadline fired; ``phase`` says what the plugin was waiting for at that moment."""

    def __init__(self, seconds: float, phase: str) -> None:
        super().__init__(seconds, phase)
        self.seconds = seconds
        self.phase = phase

    def __str__(self) -> str:
        return f"the {self.seconds:g} s deadline (-t) ran out while {self.phase}"


#: The failures that mean "not in time": the server's slowness, or this host's (see ``starvation``).
LATE = (ConnectTimedOut, ReadTimedOut, OutOfTime)
