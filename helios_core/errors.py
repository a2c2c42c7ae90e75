"""The few exceptions Helios raises on purpose.

Every message is written for the person using Helios: what went wrong, and a
hint of what to do about it. Pages and the CLI show ``str(error)`` and never a
traceback.
"""

from __future__ import annotations


class HeliosError(Exception):
    """Base class: a user-facing message plus an optional hint.

    ``job_id`` names the import or analysis job the error is about (the CLI and the API add it to the
    error payload, as the seed does).
    """

    def __init__(self, message: str, hint: str = "", *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.job_id = job_id

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class ConfigError(HeliosError):
    """A setting is missing or malformed."""


class ClickHouseUnavailable(HeliosError):
    """ClickHouse could not be reached or opened."""


class QueryError(HeliosError):
    """ClickHouse refused or failed a query; carries its error code and name."""

    def __init__(self, message: str, hint: str = "", code: int | None = None, name: str = "", *,
                 job_id: str | None = None) -> None:
        super().__init__(message, hint, job_id=job_id)
        self.code = code
        self.name = name


class ValidationError(HeliosError):
    """Input that Helios will not accept; ``problems`` lists each one, ``missing_fields`` the fields not given,
    and ``rule`` (when set) names the rule that refused it (an analysis's rule, for example)."""

    def __init__(self, message: str, hint: str = "", problems: list[str] | None = None,
                 missing_fields: list[str] | None = None, rule: str = "", *, job_id: str | None = None) -> None:
        super().__init__(message, hint, job_id=job_id)
        self.problems = problems or []
        self.missing_fields = missing_fields or []
        self.rule = rule


class NotFound(HeliosError):
    """The thing asked for does not exist (an HTTP 404 in the seeds)."""


class Forbidden(HeliosError):
    """The acting user may see the record but not do this to it (an HTTP 403)."""


class Conflict(HeliosError):
    """The request clashes with the current state (an HTTP 409 in the seeds)."""


class AwsError(HeliosError):
    """AWS refused a call or could not be reached."""


def error_payload(exc: HeliosError) -> dict:
    """The JSON error shape the CLI prints and the HTTP API answers: ``error``, ``hint`` and any details."""
    payload: dict = {"error": exc.message}
    if exc.hint:
        payload["hint"] = exc.hint
    if isinstance(exc, ValidationError):
        if exc.missing_fields:
            payload["missing_fields"] = exc.missing_fields
        if exc.problems:
            payload["problems"] = exc.problems
    if exc.job_id:
        payload["job_id"] = exc.job_id
    return payload
