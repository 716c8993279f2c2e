"""Which address of the sandbox plays which of Kotak's hosts.

Kotak spreads its API over several hosts, and a client that sends a call to the wrong one
fails live (HTTP 404 from the gateway), so the sandbox keeps them apart too:

=========  =====================================  ==========================================
role       Kotak's host                           what it serves
=========  =====================================  ==========================================
login      ``mis.kotaksecurities.com``            tradeApiLogin, tradeApiValidate,
                                                  get-client-ip; and, before a session
                                                  exists, the access-token calls (scrip-master
                                                  file list, quotes): the SDK falls back to
                                                  this host when it has no ``baseUrl``
trading    the ``baseUrl`` of tradeApiValidate    orders, books, positions, holdings, limits,
           (``e21/e22/e41/e43/cis...``)           margin, the scrip-master file list, quotes
files      ``lapi.kotaksecurities.com``           the scrip-master CSVs, the feed config
oauth      ``napi.kotaksecurities.com``           the legacy OAuth2 token
gateway    ``gw-napi.kotaksecurities.com``        the legacy login, trading and files
=========  =====================================  ==========================================

Whoever serves the sandbox says which role each address plays: the loopback server listens
on one port per role, paper mode mounts one ``.invalid`` host name per role. The roles of a
request's address travel in the WSGI environ under :data:`ROLE_KEY` (``login`` or, for an
address playing several, ``login+oauth+gateway``); a request without one (a sandbox called
directly) may use every route, as one host would.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    LOGIN = "login"
    TRADING = "trading"
    FILES = "files"
    OAUTH = "oauth"
    GATEWAY = "gateway"


#: the WSGI environ key carrying the role(s) of the address a request arrived at
ROLE_KEY = "kotak.sandbox.role"


def roles_text(roles: frozenset[Role]) -> str:
    return "+".join(role.value for role in Role if role in roles)


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(part) for part in text.split("+") if part)


class Hosts:
    """The base URL of each role, as clients must address it."""

    def __init__(self, urls: Mapping[Role, str]) -> None:
        missing = [role.value for role in Role if role not in urls]
        if missing:
            raise ValueError(f"no address for the sandbox's {', '.join(missing)} host")
        self._urls = {role: url.rstrip("/") for role, url in urls.items()}

    def url(self, role: Role) -> str:
        return self._urls[role]

    def items(self) -> list[tuple[Role, str]]:
        return list(self._urls.items())
