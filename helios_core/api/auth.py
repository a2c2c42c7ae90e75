"""Bearer tokens on every endpoint but ``/healthz``: a missing or wrong token is 401, a read-only one on a write 403.

A request acts as the token's owner (:func:`require_user`): the routers pass that user to helios_core, which
checks ownership the same way for the API, the pages and the CLI.
"""

from __future__ import annotations

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from helios_core.api.errors import HttpError
from helios_core.runtime import get_runtime
from helios_core.tokens import ApiToken, cached_token, verify_token
from helios_core.users import User, user_for

_bearer = HTTPBearer(auto_error=False, description="A token from `python -m helios_core tokens create --name NAME`.")
_CREATE_HINT = "Send Authorization: Bearer <token>. Create one with: python -m helios_core tokens create --name NAME"


async def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> ApiToken:
    # Async, with the lookup in a worker thread only when the token is not in memory: most requests
    # then resolve their token without a thread hop.
    if credentials is None or not credentials.credentials:
        raise HttpError(401, "This endpoint needs a bearer token.", _CREATE_HINT)
    known, token = cached_token(credentials.credentials)
    if not known:
        token = await run_in_threadpool(verify_token, get_runtime().clickhouse, credentials.credentials)
    if token is None:
        raise HttpError(401, "The bearer token is not valid (wrong, or revoked).", _CREATE_HINT)
    return token


async def require_write(token: ApiToken = Depends(require_token)) -> ApiToken:
    if not token.write:
        raise HttpError(403, f"The token {token.name!r} is read-only; this request changes data.",
                        "Use a token created with --write.")
    return token


async def require_user(token: ApiToken = Depends(require_token)) -> User:
    """The user the request acts as: the token's owner (an admin when the settings list them)."""
    return user_for(token.owner)
