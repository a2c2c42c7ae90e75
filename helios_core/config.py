"""Settings, resolved once, from the environment and ``.streamlit/secrets.toml``.

Precedence: explicit environment variables win over secrets.toml, which wins
over defaults. Secrets stay in memory: nothing here writes them anywhere.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from helios_core.errors import ConfigError

DEFAULT_DATA_DIR = ".helios"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    clickhouse_url: str | None = field(default=None, repr=False)  # None: the embedded engine; may hold a password
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    query_timeout_s: int = 30
    max_result_rows: int = 10_000
    reader_pool_size: int = 4
    # Other clouds for analysis jobs' upload URLs (helios_core.cloud_urls); secrets never shown in repr.
    gcs_bucket: str | None = None
    gcs_endpoint_url: str | None = None   # default https://storage.googleapis.com (an emulator or test server)
    gcs_hmac_key_id: str | None = None
    gcs_hmac_secret: str | None = field(default=None, repr=False)
    azure_account_name: str | None = None
    azure_account_key: str | None = field(default=None, repr=False)
    azure_container: str | None = None
    clickhouse_cluster: str | None = None  # a server's cluster: Helios's own tables are created ON CLUSTER
    max_memory_usage: int = 2 * 1024 ** 3      # bytes one user query may use (readers, server path)
    max_result_bytes: int = 256 * 1024 ** 2    # bytes of one user query's result; more is cut (truncated)
    allowed_table_functions: tuple[str, ...] = ()  # admin allow-list beyond the safe ones (sqlguard)
    api_host: str = "127.0.0.1"          # the HTTP API (python -m helios_core serve, HELIOS_API_PORT in the app)
    api_port: int | None = None          # set: the app serves the API from its own process on this port
    api_max_body_bytes: int = 16 * 1024 * 1024   # larger request bodies get 413
    admins: tuple[str, ...] = ()          # e-mail addresses of admins (HELIOS_ADMINS / admins), lower case
    sign_in: bool = False                 # an identity provider is configured ([auth] in secrets.toml)

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


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  secrets_paths: list[Path] | None = None) -> Settings:
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    paths = secrets_paths if secrets_paths is not None else _secrets_files(cwd)
    secrets = read_secrets(paths)

    def pick(env_name: str, secret_name: str) -> Any:
        value = env.get(env_name)
        if value not in (None, ""):
            return value
        return secrets.get(secret_name)

    data_dir = Path(pick("HELIOS_DATA_DIR", "data_dir") or cwd / DEFAULT_DATA_DIR).expanduser()
    url = pick("HELIOS_CLICKHOUSE_URL", "clickhouse_url") or None
    if url and not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"HELIOS_CLICKHOUSE_URL must start with http:// or https://, not {mask_url(str(url))!r}.",
                          "Example: https://user:password@host:8443/default. Leave it unset for the embedded engine.")
    settings = Settings(
        data_dir=data_dir.resolve(),
        clickhouse_url=url,
        aws_endpoint_url=pick("HELIOS_AWS_ENDPOINT_URL", "aws_endpoint_url") or None,
        clickhouse_cluster=pick("HELIOS_CLICKHOUSE_CLUSTER", "clickhouse_cluster") or None,
        aws_region=pick("AWS_DEFAULT_REGION", "aws_region") or pick("AWS_REGION", "aws_region") or "us-east-1",
        gcs_bucket=pick("HELIOS_GCS_BUCKET", "gcs_bucket") or None,
        gcs_endpoint_url=pick("HELIOS_GCS_ENDPOINT_URL", "gcs_endpoint_url") or None,
        gcs_hmac_key_id=pick("HELIOS_GCS_HMAC_KEY_ID", "gcs_hmac_key_id") or None,
        gcs_hmac_secret=pick("HELIOS_GCS_HMAC_SECRET", "gcs_hmac_secret") or None,
        azure_account_name=pick("HELIOS_AZURE_ACCOUNT_NAME", "azure_account_name") or None,
        azure_account_key=pick("HELIOS_AZURE_ACCOUNT_KEY", "azure_account_key") or None,
        azure_container=pick("HELIOS_AZURE_CONTAINER", "azure_container") or None,
    )
    overrides: dict[str, Any] = {}
    for field, env_name in (("query_timeout_s", "HELIOS_QUERY_TIMEOUT"), ("max_result_rows", "HELIOS_MAX_RESULT_ROWS"),
                            ("reader_pool_size", "HELIOS_READER_POOL"),
                            ("max_memory_usage", "HELIOS_MAX_MEMORY_USAGE"),
                            ("max_result_bytes", "HELIOS_MAX_RESULT_BYTES"),
                            ("api_port", "HELIOS_API_PORT"), ("api_max_body_bytes", "HELIOS_API_MAX_BODY")):
        raw = pick(env_name, field)
        if raw not in (None, ""):
            overrides[field] = _int(raw, env_name)
    if overrides.get("api_port", 1) > 65535:
        raise ConfigError(f"HELIOS_API_PORT must be a port number (1-65535), not {overrides['api_port']}.")
    host = pick("HELIOS_API_HOST", "api_host")
    if host:
        overrides["api_host"] = str(host)
    allowed = pick("HELIOS_ALLOWED_TABLE_FUNCTIONS", "allowed_table_functions") or ""
    names = allowed if isinstance(allowed, list) else str(allowed).split(",")
    functions = tuple(sorted({str(n).strip().lower() for n in names if str(n).strip()}))
    raw_admins = pick("HELIOS_ADMINS", "admins") or ""
    admin_names = raw_admins if isinstance(raw_admins, list) else str(raw_admins).split(",")
    admins = tuple(sorted({str(a).strip().lower() for a in admin_names if str(a).strip()}))
    return replace(settings, allowed_table_functions=functions, admins=admins, sign_in=_has_auth(paths),
                   **overrides)


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
