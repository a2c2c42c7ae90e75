"""AWS connections: boto3 sessions, validation, error mapping and stream listing.

An :class:`AwsConnection` describes *how* to reach AWS (explicit keys, a named
profile, the default credential chain, or the local sandbox) and hands out
cached boto3 clients. It never shows its secret: ``repr``/``str`` give the key
id's last four characters at most. Connections live in memory only (the app
keeps one per browser session in ``st.session_state``).

Every botocore failure is turned into an :class:`~helios_core.errors.AwsError`
whose message names the cause (wrong keys, expired token, no network, a region
without Kinesis, a missing IAM permission with the action needed).

The local sandbox (moto server + demo producers) lives in
:mod:`helios_core.sandbox`, which builds on this module (never the other way round).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from helios_core.config import get_settings
from helios_core.errors import AwsError, NotFound, ValidationError

# Used when botocore's endpoint data cannot be read (it always can in practice).
_FALLBACK_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3",
                     "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
                     "ap-southeast-1", "ap-southeast-2", "ca-central-1", "sa-east-1"]

_clients: weakref.WeakKeyDictionary[AwsConnection, dict[str, Any]] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()  # boto3 sessions are not thread-safe; clients are


def kinesis_regions() -> list[str]:
    """Regions that offer Kinesis (from botocore's bundled endpoint data, no network)."""
    try:
        regions = boto3.session.Session().get_available_regions("kinesis")
    except Exception:  # pragma: no cover - botocore data is always bundled
        regions = []
    return sorted(regions) or list(_FALLBACK_REGIONS)


def _mask(key_id: str | None) -> str:
    if not key_id:
        return ""
    return "…" + key_id[-4:] if len(key_id) > 4 else "…"


@dataclass(frozen=True, eq=False)
class CallerIdentity:
    account: str | None
    arn: str | None
    user_id: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "arn": self.arn, "note": self.note} if self.note else \
            {"account": self.account, "arn": self.arn}


@dataclass(frozen=True, eq=False)
class AwsConnection:
    """How to reach AWS. Secrets are held in memory and never shown.

    ``method`` is one of ``keys`` (explicit access key + secret, optional session
    token), ``profile`` (a named profile in ``~/.aws``), ``default`` (boto3's
    default chain: environment, ``~/.aws``, SSO, instance role) or ``sandbox``.
    """

    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False

    def __post_init__(self) -> None:
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValidationError("Give both the access key id and the secret access key, or neither.",
                                  "Leave both empty to use a profile or the default credential chain.")
        if self.access_key_id and self.profile:
            raise ValidationError("Choose either access keys or a named profile, not both.")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValidationError(f"The endpoint URL must start with http:// or https://, not {self.endpoint_url!r}.",
                                  "Example: http://127.0.0.1:4566 for LocalStack.")
        if not self.region:
            raise ValidationError("Choose a region.")

    # ---- presentation (never a secret) ----
    @property
    def method(self) -> str:
        if self.sandbox:
            return "sandbox"
        if self.access_key_id:
            return "keys"
        if self.profile:
            return "profile"
        return "default"

    @property
    def masked_key_id(self) -> str:
        return _mask(self.access_key_id)

    def describe(self) -> str:
        if self.sandbox:
            where = f"local sandbox at {self.endpoint_url}"
        elif self.method == "keys":
            where = f"access key {self.masked_key_id}" + (" with session token" if self.session_token else "")
        elif self.method == "profile":
            where = f"profile {self.profile!r}"
        else:
            where = "default credential chain"
        endpoint = f" via {self.endpoint_url}" if self.endpoint_url and not self.sandbox else ""
        return f"{where} in {self.region}{endpoint}"

    def __repr__(self) -> str:
        return f"AwsConnection({self.describe()})"

    __str__ = describe

    def to_json(self) -> dict[str, Any]:
        """Public description: no secret, key id masked."""
        return {"method": self.method, "region": self.region, "access_key_id": self.masked_key_id or None,
                "profile": self.profile, "endpoint_url": self.endpoint_url, "sandbox": self.sandbox}

    # ---- boto3 ----
    def session(self) -> boto3.Session:
        """A new boto3 session for these credentials (use :meth:`client` for cached clients)."""
        try:
            if self.access_key_id:
                return boto3.Session(aws_access_key_id=self.access_key_id,
                                     aws_secret_access_key=self.secret_access_key,
                                     aws_session_token=self.session_token or None, region_name=self.region)
            return boto3.Session(profile_name=self.profile or None, region_name=self.region)
        except (BotoCoreError, ClientError) as exc:
            raise to_aws_error(exc, "", self) from None

    def client(self, service: str, **config: Any):
        """A cached, thread-safe boto3 client for ``service`` (timeouts and retries set)."""
        key = service + repr(sorted(config.items()))
        with _clients_lock:
            cache = _clients.setdefault(self, {})
            if key not in cache:
                options = {"connect_timeout": 5, "read_timeout": 20,
                           "retries": {"mode": "standard", "max_attempts": 4}}
                options.update(config)
                try:
                    cache[key] = self.session().client(service, endpoint_url=self.endpoint_url or None,
                                                       config=Config(**options))
                except (BotoCoreError, ClientError) as exc:
                    raise to_aws_error(exc, "", self) from None
            return cache[key]

    def dynamodb(self) -> Any:
        """A boto3 DynamoDB resource on this connection's endpoint (the mapping and lease tables use one)."""
        return self.session().resource("dynamodb", endpoint_url=self.endpoint_url or None)

    def validate(self) -> CallerIdentity:
        """Prove the credentials work with STS ``GetCallerIdentity``."""
        return caller_identity(self)


def connection_from_settings(**overrides: Any) -> AwsConnection:
    """The CLI's connection: boto3's standard chain, the configured region and ``HELIOS_AWS_ENDPOINT_URL``."""
    settings = get_settings()
    options: dict[str, Any] = {"region": settings.aws_region, "endpoint_url": settings.aws_endpoint_url}
    options.update({k: v for k, v in overrides.items() if v is not None})
    return AwsConnection(**options)


def default_credentials_available(profile: str | None = None) -> bool:
    """Whether boto3's chain finds any credentials (used to pick the sandbox automatically)."""
    try:
        return boto3.Session(profile_name=profile or None).get_credentials() is not None
    except Exception:  # a broken ~/.aws file or profile: treat as "none found"
        return False


def available_profiles() -> list[str]:
    try:
        return sorted(boto3.Session().available_profiles)
    except Exception:
        return []


# ---------------------------------------------------------------- error mapping

_WRONG_KEY = {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId", "AuthFailure"}
_WRONG_SECRET = {"SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}
_THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
              "Throttling", "RequestLimitExceeded", "KMSThrottlingException"}
# Codes that mean "these credentials are missing, wrong or expired": only the user can fix them.
CREDENTIAL_CODES = _WRONG_KEY | _WRONG_SECRET | _EXPIRED | {"MissingAuthenticationToken"}


def client_error_code(exc: ClientError) -> tuple[str, str]:
    """The error code and message of a ClientError, also from an XML body where JSON was expected (some emulators)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    text = str(error.get("Message", "")) or code
    if "<Code>" in text:
        found = re.search(r"<Code>([^<]*)</Code>", text)
        said = re.search(r"<Message>([^<]*)</Message>", text)
        code = found.group(1) if found else code
        text = said.group(1) if said else code
    return code, text


def to_aws_error(exc: Exception, action: str = "", conn: AwsConnection | None = None) -> Exception:
    """Translate a botocore exception into a user-facing error.

    ``action`` is the IAM action of the failed call (``kinesis:ListStreams``),
    named in the message when permission is missing.
    """
    region = conn.region if conn else "the chosen region"
    doing = f" ({action})" if action else ""
    if isinstance(exc, ClientError):
        code, text = client_error_code(exc)
        if code in _WRONG_KEY:
            return AwsError(f"AWS does not recognise the access key{doing}: {text}",
                            "Check the access key id (and its session token), or that it is active in IAM. "
                            "Opt-in regions also reject keys until the region is enabled for the account.")
        if code in _WRONG_SECRET:
            return AwsError(f"The secret access key does not match the key id{doing}.",
                            "Paste the secret again (no spaces), or create a new key pair in IAM.")
        if code in _EXPIRED:
            return AwsError(f"The AWS credentials have expired{doing}: {text}",
                            "Get fresh temporary credentials (a new session token, or `aws sso login`).")
        if code in _DENIED:
            needed = action or _action_from(exc)
            return AwsError(f"AWS denied {needed or 'the request'}: these credentials lack that permission.",
                            f"Ask your AWS administrator to allow the IAM action {needed or '(see message)'} "
                            f"in {region}. Details: {text}")
        if code == "ResourceNotFoundException":
            return NotFound(f"AWS could not find it{doing}: {text}", "Check the stream name and the region.")
        if code in _THROTTLED:
            return AwsError(f"AWS is throttling requests{doing}: {text}",
                            "Wait a few seconds and try again, or sample fewer events.")
        if code in {"InvalidArgumentException", "ValidationException", "InvalidParameterValue"}:
            return ValidationError(f"AWS rejected the request{doing}: {text}")
        if code in {"OptInRequired", "SubscriptionRequiredException"}:
            return AwsError(f"The account is not subscribed to this service in {region}{doing}.",
                            "Enable the region for the account, or pick another region.")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return AwsError(f"AWS returned {code or 'an error'}{doing}: {text}",
                        f"HTTP {status}. Try again; if it persists, check the AWS service health." if status else "")
    if isinstance(exc, NoCredentialsError):
        return AwsError("No AWS credentials were found.",
                        "Enter an access key, choose a profile, or start the local sandbox.")
    if isinstance(exc, PartialCredentialsError):
        return AwsError(f"The AWS credentials are incomplete: {exc}", "Give both the key id and the secret.")
    if isinstance(exc, ProfileNotFound):
        return AwsError(f"There is no AWS profile named {getattr(exc, 'kwargs', {}).get('profile', '')!r}.",
                        "Check ~/.aws/config and ~/.aws/credentials, or leave the profile empty.")
    if isinstance(exc, NoRegionError):
        return AwsError("No AWS region is set.", "Choose a region.")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "") or (conn.endpoint_url if conn else "")
        custom = bool(conn and conn.endpoint_url)
        hint = ("Check that the endpoint URL is right and the server (LocalStack, kinesalite, moto) is running."
                if custom else
                f"Check the network connection. If other AWS calls work, {region} may not offer this service: "
                "pick another region.")
        if conn and not custom and conn.region not in kinesis_regions() and "kinesis" in str(url):
            hint = f"Kinesis is not offered in {conn.region}: pick another region."
        return AwsError(f"Could not reach AWS at {url or 'its endpoint'}{doing}.", hint)
    if isinstance(exc, ReadTimeoutError):
        return AwsError(f"AWS did not answer in time{doing}.", "Check the network and try again.")
    name = type(exc).__name__
    if "SSO" in name or "Token" in name:
        return AwsError(f"The SSO session cannot be used: {exc}", "Run `aws sso login` (with --profile) and retry.")
    if isinstance(exc, BotoCoreError):
        return AwsError(f"AWS client error{doing}: {exc}")
    return exc


def _action_from(exc: ClientError) -> str:
    operation = getattr(exc, "operation_name", "") or ""
    return f"kinesis:{operation}" if operation else ""


@contextmanager
def aws_errors(action: str, conn: AwsConnection | None = None) -> Iterator[None]:
    """Run AWS calls, translating botocore failures (see :func:`to_aws_error`)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise to_aws_error(exc, action, conn) from None


# ---------------------------------------------------------------- identity and streams

def caller_identity(conn: AwsConnection) -> CallerIdentity:
    """STS ``GetCallerIdentity``. Custom endpoints without STS (kinesalite) give an identity with a note."""
    try:
        with aws_errors("sts:GetCallerIdentity", conn):
            reply = conn.client("sts", retries={"mode": "standard", "max_attempts": 2}).get_caller_identity()
    except AwsError as exc:
        if conn.endpoint_url and "Could not reach" not in exc.message and "AWS returned" in exc.message:
            return CallerIdentity(None, None, note="the endpoint does not offer STS; identity unknown")
        raise
    return CallerIdentity(reply.get("Account"), reply.get("Arn"), reply.get("UserId"))


@dataclass
class StreamInfo:
    name: str
    arn: str | None = None
    status: str | None = None
    mode: str | None = None              # PROVISIONED or ON_DEMAND
    open_shards: int | None = None
    retention_hours: int | None = None
    created: datetime | None = None
    note: str = ""                       # e.g. details not readable (permission)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn, "status": self.status, "mode": self.mode,
                "openShards": self.open_shards, "retentionHours": self.retention_hours,
                "created": self.created.isoformat() if self.created else None,
                **({"note": self.note} if self.note else {})}


def _summary_info(summary: dict[str, Any]) -> StreamInfo:
    return StreamInfo(name=summary["StreamName"], arn=summary.get("StreamARN"), status=summary.get("StreamStatus"),
                      mode=(summary.get("StreamModeDetails") or {}).get("StreamMode"),
                      open_shards=summary.get("OpenShardCount"),
                      retention_hours=summary.get("RetentionPeriodHours"),
                      created=summary.get("StreamCreationTimestamp"))


def list_stream_pages(conn: AwsConnection, page_size: int = 100, max_pages: int = 1000) -> list[StreamInfo]:
    """All streams, following ``NextToken`` (or ``ExclusiveStartStreamName`` on older servers)."""
    client = conn.client("kinesis")
    found: dict[str, StreamInfo] = {}
    kwargs: dict[str, Any] = {"Limit": page_size}
    with aws_errors("kinesis:ListStreams", conn):
        for _ in range(max_pages):
            reply = client.list_streams(**kwargs)
            names = reply.get("StreamNames", [])
            summaries = {s["StreamName"]: s for s in reply.get("StreamSummaries", []) or []}
            for name in names:
                found.setdefault(name, _summary_info(summaries[name]) if name in summaries else StreamInfo(name))
            if not reply.get("HasMoreStreams") or not names:
                break
            token = reply.get("NextToken")
            kwargs = {"NextToken": token} if token else {"Limit": page_size, "ExclusiveStartStreamName": names[-1]}
    return list(found.values())


def describe_stream(conn: AwsConnection, name: str) -> StreamInfo:
    """``DescribeStreamSummary``: status, mode, open shards, retention."""
    with aws_errors("kinesis:DescribeStreamSummary", conn):
        reply = conn.client("kinesis").describe_stream_summary(StreamName=name)
    return _summary_info(reply["StreamDescriptionSummary"])


def list_streams(conn: AwsConnection, details: bool = True, page_size: int = 100,
                 workers: int = 4) -> list[StreamInfo]:
    """Every stream with status, mode, open shard count and retention (sorted by name).

    Details come from one ``DescribeStreamSummary`` per stream, a few in
    parallel (its limit is 20 calls/s per account; throttling is retried).
    A stream whose details cannot be read keeps its name with a note.
    """
    streams = sorted(list_stream_pages(conn, page_size=page_size), key=lambda s: s.name)
    if not details or not streams:
        return streams

    def detail(info: StreamInfo) -> StreamInfo:
        try:
            return describe_stream(conn, info.name)
        except (AwsError, NotFound) as exc:
            info.note = exc.message
            return info

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(streams)))) as pool:
        return list(pool.map(detail, streams))


def authenticate(conn: AwsConnection, details: bool = True) -> dict[str, Any]:
    """The seed's ``/api/authenticate`` shape (``authenticated``, ``streamNames``) plus identity and details."""
    identity = caller_identity(conn)
    streams = list_streams(conn, details=details)
    return {"authenticated": True, "streamNames": [s.name for s in streams], "account": identity.account,
            "arn": identity.arn, "connection": conn.to_json(), "streams": [s.to_json() for s in streams]}
