"""Settings, resolved once, from the environment and ``.streamlit/secrets.toml``.

Precedence: explicit environment variables win over secrets.toml, which wins
over defaults. Secrets stay in memory: nothing here writes them anywhere.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from helios_core.errors import ConfigError

DEFAULT_DATA_DIR = ".helios"


@dataclass(frozen=True)
class Setting:
    """One row of :data:`SETTINGS`: where a value comes from, how it is read, and what it is for."""

    field: str                 # the attribute on Settings
    env: tuple[str, ...]       # environment variables, first set wins
    key: str                   # the secrets.toml key (top level or under [helios])
    kind: str                  # how the text is read: see _PARSERS
    default: Any
    help: str
    secret: bool = False       # never shown in repr; like every setting, never written anywhere


# Every setting Helios reads, in one place: load_settings is driven by this table, and README's settings table
# (tests/test_config.py checks it names every variable) is written from it.
SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", ("HELIOS_DATA_DIR",), "data_dir", "path", DEFAULT_DATA_DIR,
            "Helios's own directory (the embedded engine lives in its clickhouse/); relative to the working "
            "directory"),
    Setting("clickhouse_url", ("HELIOS_CLICKHOUSE_URL",), "clickhouse_url", "url", None,
            "a ClickHouse server (http:// or https://, may carry a password); unset: the embedded engine",
            secret=True),
    Setting("clickhouse_cluster", ("HELIOS_CLICKHOUSE_CLUSTER",), "clickhouse_cluster", "text", None,
            "a server's cluster: Helios's own tables are created ON CLUSTER"),
    Setting("query_timeout_s", ("HELIOS_QUERY_TIMEOUT",), "query_timeout_s", "int", 30,
            "seconds one user query may run"),
    Setting("max_result_rows", ("HELIOS_MAX_RESULT_ROWS",), "max_result_rows", "int", 10_000,
            "rows one user query returns; more is cut (truncated)"),
    Setting("reader_pool_size", ("HELIOS_READER_POOL",), "reader_pool_size", "int", 4,
            "parallel read-only handles on the embedded engine"),
    Setting("max_memory_usage", ("HELIOS_MAX_MEMORY_USAGE",), "max_memory_usage", "int", 2 * 1024 ** 3,
            "bytes one user query may use"),
    Setting("max_result_bytes", ("HELIOS_MAX_RESULT_BYTES",), "max_result_bytes", "int", 256 * 1024 ** 2,
            "bytes of one user query's result; more is cut (truncated)"),
    Setting("allowed_table_functions", ("HELIOS_ALLOWED_TABLE_FUNCTIONS",), "allowed_table_functions", "names", (),
            "table functions user SQL may call beyond the safe ones (comma-separated, e.g. url,s3)"),
    Setting("aws_endpoint_url", ("HELIOS_AWS_ENDPOINT_URL",), "aws_endpoint_url", "text", None,
            "an AWS-compatible endpoint (LocalStack, moto, an S3-compatible server) instead of AWS"),
    Setting("aws_region", ("AWS_DEFAULT_REGION", "AWS_REGION"), "aws_region", "text", "us-east-1",
            "the AWS region"),
    Setting("import_bucket", ("HELIOS_IMPORT_BUCKET",), "import_bucket", "text", None,
            "the S3 bucket import jobs upload to; unset: helios-imports in the sandbox, else one per account"),
    Setting("sandbox_rate", ("HELIOS_SANDBOX_RATE",), "sandbox_rate", "rate", 2.0,
            "events per second per stream of the local sandbox's producer (0: none)"),
    Setting("sandbox_seed", ("HELIOS_SANDBOX_SEED",), "sandbox_seed", "int", None,
            "a fixed seed for the sandbox's demo events: the same prefill and event sequence at every start"),
    Setting("gcs_bucket", ("HELIOS_GCS_BUCKET",), "gcs_bucket", "text", None,
            "analysis jobs: the Cloud Storage bucket for gcp upload URLs"),
    Setting("gcs_endpoint_url", ("HELIOS_GCS_ENDPOINT_URL",), "gcs_endpoint_url", "text", None,
            "analysis jobs: Cloud Storage's endpoint (default https://storage.googleapis.com)"),
    Setting("gcs_hmac_key_id", ("HELIOS_GCS_HMAC_KEY_ID",), "gcs_hmac_key_id", "text", None,
            "analysis jobs: the HMAC key id that signs gcp upload URLs"),
    Setting("gcs_hmac_secret", ("HELIOS_GCS_HMAC_SECRET",), "gcs_hmac_secret", "text", None,
            "analysis jobs: that HMAC key's secret", secret=True),
    Setting("azure_account_name", ("HELIOS_AZURE_ACCOUNT_NAME",), "azure_account_name", "text", None,
            "analysis jobs: the storage account for azure upload URLs"),
    Setting("azure_account_key", ("HELIOS_AZURE_ACCOUNT_KEY",), "azure_account_key", "text", None,
            "analysis jobs: that account's key (signs SAS URLs)", secret=True),
    Setting("azure_container", ("HELIOS_AZURE_CONTAINER",), "azure_container", "text", None,
            "analysis jobs: the blob container for azure upload URLs"),
    Setting("api_host", ("HELIOS_API_HOST",), "api_host", "text", "127.0.0.1",
            "the HTTP API's address"),
    Setting("api_port", ("HELIOS_API_PORT",), "api_port", "port", None,
            "the HTTP API's port; set in the app: the app serves the API from its own process"),
    Setting("api_max_body_bytes", ("HELIOS_API_MAX_BODY",), "api_max_body_bytes", "int", 16 * 1024 * 1024,
            "larger HTTP request bodies get 413"),
    Setting("api_token", ("HELIOS_API_TOKEN",), "api_token", "text", None,
            "an ingest worker's write token for --api-url", secret=True),
    Setting("llm_base_url", ("HELIOS_LLM_BASE_URL",), "llm_base_url", "text", None,
            "the chat's OpenAI-compatible base URL (python -m helios_core ask --provider openai)"),
    Setting("llm_model", ("HELIOS_LLM_MODEL",), "llm_model", "text", None,
            "that provider's model name"),
    Setting("llm_api_key", ("HELIOS_LLM_API_KEY", "OPENAI_API_KEY"), "llm_api_key", "text", None,
            "that provider's key (never a flag)", secret=True),
    Setting("mapping_table", ("HELIOS_MAPPING_TABLE",), "mapping_table", "text", None,
            "the Lambda handler's DynamoDB mapping table (set by the deployment; default helios-sources)"),
    Setting("clickhouse_secret_arn", ("HELIOS_CLICKHOUSE_SECRET_ARN",), "clickhouse_secret_arn", "text", None,
            "the Lambda handler's Secrets Manager secret holding the ClickHouse URL (set by the deployment)"),
    Setting("admins", ("HELIOS_ADMINS",), "admins", "names", (),
            "e-mail addresses of admins (comma-separated): they may open and change every user's records"),
    Setting("worker_journal", ("HELIOS_WORKER_JOURNAL",), "worker_journal", "path", None,
            "headless workers: a directory where each worker appends one line per GetRecords (shard, lease "
            "counter, time, lease expiry it believed) to <worker id>.jsonl, for checking leases (tests)"),
)
_BY_FIELD = {s.field: s for s in SETTINGS}
# Settings fields worked out from other facts, not read from a variable: an [auth] table in secrets.toml.
DERIVED = ("sign_in",)


def setting(name: str) -> Setting:
    """The row of :data:`SETTINGS` for a Settings field."""
    return _BY_FIELD[name]


@dataclass(frozen=True, repr=False)
class Settings:
    """The resolved values of :data:`SETTINGS` (one attribute per row; defaults, help and sources are there)."""

    data_dir: Path
    clickhouse_url: str | None           # None: the embedded engine
    clickhouse_cluster: str | None
    query_timeout_s: int
    max_result_rows: int
    reader_pool_size: int
    max_memory_usage: int
    max_result_bytes: int
    allowed_table_functions: tuple[str, ...]
    aws_endpoint_url: str | None
    aws_region: str
    import_bucket: str | None
    sandbox_rate: float
    sandbox_seed: int | None
    gcs_bucket: str | None
    gcs_endpoint_url: str | None
    gcs_hmac_key_id: str | None
    gcs_hmac_secret: str | None
    azure_account_name: str | None
    azure_account_key: str | None
    azure_container: str | None
    api_host: str
    api_port: int | None
    api_max_body_bytes: int
    api_token: str | None
    llm_base_url: str | None
    llm_model: str | None
    llm_api_key: str | None
    mapping_table: str | None
    clickhouse_secret_arn: str | None
    admins: tuple[str, ...] = ()
    worker_journal: Path | None = None
    sign_in: bool = False      # an identity provider is configured ([auth] in secrets.toml): not a variable

    def __repr__(self) -> str:
        shown = ", ".join(f"{s.field}={getattr(self, s.field)!r}" for s in SETTINGS if not s.secret)
        return f"Settings({shown})"

    @property
    def embedded(self) -> bool:
        return not self.clickhouse_url

    @property
    def clickhouse_dir(self) -> Path:
        return self.data_dir / "clickhouse"

    def describe_clickhouse(self) -> str:
        """Where ClickHouse lives, with any password masked."""
        if self.embedded:
            return f"embedded engine in {self.clickhouse_dir}"
        return mask_url(self.clickhouse_url or "")


# scheme://user:password@host — any scheme (https, clickhouse, postgresql, …).
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@?#]*:)[^\s/@]*@")
# password=… as a URL query parameter (?password= / &password=) or a DSN key (password=… / password: …).
_PASSWORD_PARAM = re.compile(r"(?i)(\b(?:password|passwd|pwd)\s*[=:]\s*)(?!\*\*\*)([^\s&;,'\"]+)")


def mask_secrets(text: str) -> str:
    """Hide URL passwords (``user:pass@``) and ``password=`` values (URL parameters, DSN keys) in any text."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _PASSWORD_PARAM.sub(r"\1***", text)


def url_passwords(url: str) -> list[str]:
    """The passwords a connection URL carries (its user info and any ``password`` parameter)."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, vs in parse_qs(parts.query).items() if k.lower() in ("password", "passwd", "pwd") for v in vs]
    return [unquote(p) for p in found if p]


def mask_url(url: str) -> str:
    """Hide the password of a ``scheme://user:pass@host`` URL or its ``?password=`` parameter."""
    return mask_secrets(url)


def mask_error(text: str, url: str | None) -> str:
    """An error message about ``url`` with every password it carries hidden, however the driver quoted it."""
    for password in url_passwords(url or ""):
        if len(password) >= 3:
            text = text.replace(password, "***")
    return mask_secrets(text)


def _secrets_files(cwd: Path) -> list[Path]:
    return [Path.home() / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml"]


def read_secrets(paths: list[Path]) -> dict[str, Any]:
    """Merge the secrets.toml files that exist; later files win (as Streamlit does)."""
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}).", "Fix or remove that file.") from exc
        helios = data.get("helios", {})
        merged.update({k: v for k, v in data.items() if not isinstance(v, dict)})
        if isinstance(helios, dict):
            merged.update(helios)
    return merged


def secrets_toml_paths(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit reads secrets, read fresh on every call (named connections can change while Helios runs):
    ``HELIOS_SECRETS_TOML`` when set (one file), else the project's .streamlit/secrets.toml, then the user's."""
    override = os.environ.get("HELIOS_SECRETS_TOML")
    if override:
        return [Path(override)]
    return [(cwd or Path.cwd()) / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def _has_auth(paths: list[Path]) -> bool:
    """Whether a secrets.toml configures Streamlit's sign-in (an ``[auth]`` table)."""
    for path in paths:
        if path.is_file():
            try:
                with path.open("rb") as fh:
                    if isinstance(tomllib.load(fh).get("auth"), dict):
                        return True
            except (OSError, tomllib.TOMLDecodeError):
                continue  # read_secrets already reported it
    return False


def _int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a whole number, not {value!r}.") from exc
    if number <= 0:
        raise ConfigError(f"{name} must be positive, not {number}.")
    return number


def _port(value: Any, name: str) -> int:
    number = _int(value, name)
    if number > 65535:
        raise ConfigError(f"{name} must be a port number (1-65535), not {number}.")
    return number


def _rate(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float(setting("sandbox_rate").default)  # a sandbox knob: a typo keeps the default, as it always has


def _url(value: Any, name: str) -> str:
    url = str(value)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://, not {mask_url(url)!r}.",
                          "Example: https://user:password@host:8443/default. Leave it unset for the embedded engine.")
    return url


def _names(value: Any, name: str) -> tuple[str, ...]:
    names = value if isinstance(value, list) else str(value).split(",")
    return tuple(sorted({str(n).strip().lower() for n in names if str(n).strip()}))


def _text(value: Any, name: str) -> str | None:
    return str(value).strip() or None


def _path(value: Any, name: str) -> Path:
    return Path(str(value)).expanduser().resolve()


# How each kind of setting is read from its text (or secrets.toml value); errors name the variable.
_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "int": _int, "port": _port, "rate": _rate, "url": _url, "names": _names, "text": _text, "path": _path,
}


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  secrets_paths: list[Path] | None = None) -> Settings:
    """Every row of :data:`SETTINGS`: its first environment variable that is set, else secrets.toml, else default."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    paths = secrets_paths if secrets_paths is not None else _secrets_files(cwd)
    secrets = read_secrets(paths)
    values: dict[str, Any] = {"sign_in": _has_auth(paths)}
    for s in SETTINGS:
        raw = next((env[name] for name in s.env if env.get(name) not in (None, "")), None)
        if raw is None:
            raw = secrets.get(s.key)
        if raw is None or raw == "":
            values[s.field] = s.default
        else:
            values[s.field] = _PARSERS[s.kind](raw, s.env[0])
    if values["data_dir"] == DEFAULT_DATA_DIR:
        values["data_dir"] = (cwd / DEFAULT_DATA_DIR).resolve()
    return Settings(**values)


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, resolved on first use."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Replace the process settings (tests, the CLI's flags)."""
    global _settings
    _settings = settings
