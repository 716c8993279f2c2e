"""JWTs shaped like Kotak's, so clients that read ``exp`` behave as in production.

Claims follow decoded real tokens (section 3.3 of the API notes): ``scope``, ``exp``, ``jti``,
``iat``, ``iss`` "login-service", ``sub`` (the user id the legacy OTP step needs), ``ucc`` and
``nap`` (PAN). They are signed with a key private to the sandbox instance; the sandbox never
trusts a signature, it looks sessions up by sid and token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any], key: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def user_id(ucc: str) -> str:
    """A stable internal user id per client code (the token's ``sub``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kotak-sandbox:{ucc}"))


def session_token(*, ucc: str, pan: str, scope: str, issued: datetime, expires: datetime,
                  key: bytes) -> str:
    return make_jwt({
        "scope": [scope], "exp": int(expires.timestamp()), "jti": str(uuid.uuid4()),
        "iat": int(issued.timestamp()), "iss": "login-service", "sub": user_id(ucc),
        "ucc": ucc, "nap": pan, "fetchcachingrule": 0, "categorisation": "",
    }, key)


def access_token(*, consumer_key: str, issued: datetime, expires: datetime, key: bytes) -> str:
    return make_jwt({
        "sub": "client1565", "aut": "APPLICATION", "aud": consumer_key, "azp": consumer_key,
        "scope": "default", "iss": "https://napi.kotaksecurities.com:443/oauth2/token",
        "iat": int(issued.timestamp()), "nbf": int(issued.timestamp()),
        "exp": int(expires.timestamp()), "jti": str(uuid.uuid4()),
    }, key)
