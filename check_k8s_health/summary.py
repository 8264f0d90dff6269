"""Presentation: the status line and the long output.

nagiosplugin's defaults show only the first result (OK) or the first worst one (problem); an operator woken at
night needs every endpoint asked, worst first, the failed sub-checks by name, and the caveats of the run (TLS not
verified, token withheld) on the one line that reaches the pager.
"""

from __future__ import annotations

import time

import nagiosplugin
from nagiosplugin.state import Ok

from check_k8s_health.settings import Settings
from check_k8s_health.text import one_line
from check_k8s_health.verdict import Verdict

#: The status line is cut here: it aims at 100 characters and must never pass 200 (SPEC section 4).
MAX_SUMMARY = 200 - len("K8S_HEALTH CRITICAL - ")


class HealthSummary(nagiosplugin.Summary):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def ok(self, results: nagiosplugin.Results) -> str:
        return self._line(results)

    def problem(self, results: nagiosplugin.Results) -> str:
        return self._line(results)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        level = self._settings.verbose
        lines = self._request_lines() if level >= 2 else []
        if level >= 1:
            lines += self._token_lines()
        for result in results.results:  # the order the endpoints were asked in, like the command line
            if isinstance(result.hint, Verdict):
                lines += [text for shown_from, text in result.hint.lines if shown_from <= level]
        return lines

    def _line(self, results: nagiosplugin.Results) -> str:
        verdicts = [r for r in results if isinstance(r.hint, Verdict)]
        # Worst first (Results iterates that way); endpoints failing with the same words are merged, so an
        # unreachable server reads "livez, readyz: cannot connect ..." once.
        groups: dict[str, tuple[str, list[str]]] = {}
        for result in verdicts:
            name = result.metric.name if result.metric else ""
            key = str(result.hint) if result.state != Ok else f"{name}\0ok"
            groups.setdefault(key, (str(result.hint), []))[1].append(name)
        parts = [f"{', '.join(names)}: {words}" for words, names in groups.values()]
        parts += [str(r.hint) for r in results if not isinstance(r.hint, Verdict) and r.state != Ok and r.hint]
        parts += self._caveats()
        return one_line("; ".join(parts), MAX_SUMMARY)

    def _caveats(self) -> list[str]:
        target = self._settings.target
        caveats = []
        if not target.tls.verify and not target.plain_http:
            caveats.append("TLS not verified")
        if target.token_withheld:
            caveats.append("token withheld (plain http)")
        return caveats

    def _request_lines(self) -> list[str]:
        target = self._settings.target
        tls = target.tls
        if target.plain_http:
            how = "none (plain http)"
        elif not tls.verify:
            how = "certificate NOT verified (--insecure-skip-tls-verify)"
        else:
            how = f"verified against {f'the CA {tls.ca_file}' if tls.ca_file else 'the default CA bundle'}"
            if tls.server_name:
                how += f" for the name {tls.server_name}"
            how += f" (from {target.tls_source})"
        cred = target.credential
        who = "anonymous" if cred.token is None else f"bearer token from {cred.source}"
        if target.token_withheld:
            who += " (withheld: plain http)"
        if tls.client_cert:
            who += f", client certificate {tls.client_cert}"
        lines = [f"server: {target.url} (from {target.source})", f"TLS: {how}", f"credentials: {who}"]
        if target.proxy:
            lines.append(f"proxy: {one_line(target.proxy, 100)} (kubeconfig proxy-url)")
        return lines

    def _token_lines(self) -> list[str]:
        """When the token expires: the next 401 is easier to read when yesterday's output said so."""
        credential = self._settings.target.credential
        if credential.token is None:
            return []
        if credential.expires is None:
            return [f"token from {credential.source}: no expiry (not a JWT, or a long-lived Secret token)"]
        left = credential.expires - time.time()
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(credential.expires))
        if left <= 0:
            return [f"token from {credential.source} expired at {when}"]
        return [f"token from {credential.source} expires at {when} (in {_duration(left)})"]


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 72 else f"{hours // 24} days"

