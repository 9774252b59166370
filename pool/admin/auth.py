"""Bearer tokens with two scopes. Tokens are kept only as SHA-256 digests and never logged."""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Mapping

from pool.config.admin import AdminConfig, check_token_entry

ENV_ADMIN_TOKENS = "GEOSTRATUM_ADMIN_TOKENS"
ENV_READ_TOKENS = "GEOSTRATUM_READ_TOKENS"


class Scope(enum.IntEnum):
    NONE = 0
    READ = 1
    ADMIN = 2                           # admin implies read


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _entry_digest(entry: str) -> bytes:
    if entry.startswith("sha256:"):
        return bytes.fromhex(entry[len("sha256:") :])
    return _digest(entry)


def _env_entries(environ: Mapping[str, str], name: str) -> list[str]:
    entries = [part.strip() for part in environ.get(name, "").split(",") if part.strip()]
    for i, entry in enumerate(entries):
        check_token_entry(entry, f"{name}[{i}]")
    return entries


class TokenBook:
    """Maps a presented bearer token to its scope and to a stable, non-secret client id."""

    def __init__(self, config: AdminConfig, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._digests: list[tuple[bytes, Scope]] = []
        for entry in [*config.admin_tokens, *_env_entries(env, ENV_ADMIN_TOKENS)]:
            self._digests.append((_entry_digest(entry), Scope.ADMIN))
        for entry in [*config.read_tokens, *_env_entries(env, ENV_READ_TOKENS)]:
            self._digests.append((_entry_digest(entry), Scope.READ))

    def __len__(self) -> int:
        return len(self._digests)

    def lookup(self, token: str) -> tuple[Scope, str]:
        """(scope, client id) of a token; (NONE, "") when unknown.

        Every stored digest is compared (constant time each) so the time taken does not tell
        which token came close. The client id is a digest prefix: safe to log and to key on.
        """
        presented = _digest(token)
        best = Scope.NONE
        for digest, scope in self._digests:
            if hmac.compare_digest(presented, digest) and scope > best:
                best = scope
        if best is Scope.NONE:
            return Scope.NONE, ""
        return best, "token:" + presented.hex()[:12]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
