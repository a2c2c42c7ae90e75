"""Settings, resolved once, from the environment and ``.streamlit/secrets.toml``.

Precedence: explicit environment variables win over secrets.toml, which wins
over defaults. Secrets stay in memory: nothing here writes them anywhere.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from helios_core.errors import ConfigError

DEFAULT_DATA_DIR = ".helios"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    clickhouse_url: str | None = None  # None: the embedded engine in data_dir
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    query_timeout_s: int = 30
    max_result_rows: int = 10_000
    reader_pool_size: int = 4
    api_host: str = "127.0.0.1"          # the HTTP API (python -m helios_core serve, HELIOS_API_PORT in the app)
    api_port: int | None = None          # set: the app serves the API from its own process on this port
    api_max_body_bytes: int = 16 * 1024 * 1024   # larger request bodies get 413

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


def mask_url(url: str) -> str:
    """Hide the password of a ``scheme://user:pass@host`` URL."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


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
    secrets = read_secrets(secrets_paths if secrets_paths is not None else _secrets_files(cwd))

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
        aws_region=pick("AWS_DEFAULT_REGION", "aws_region") or pick("AWS_REGION", "aws_region") or "us-east-1",
    )
    overrides: dict[str, Any] = {}
    for field, env_name in (("query_timeout_s", "HELIOS_QUERY_TIMEOUT"), ("max_result_rows", "HELIOS_MAX_RESULT_ROWS"),
                            ("reader_pool_size", "HELIOS_READER_POOL"),
                            ("api_port", "HELIOS_API_PORT"), ("api_max_body_bytes", "HELIOS_API_MAX_BODY")):
        raw = pick(env_name, field)
        if raw not in (None, ""):
            overrides[field] = _int(raw, env_name)
    if overrides.get("api_port", 1) > 65535:
        raise ConfigError(f"HELIOS_API_PORT must be a port number (1-65535), not {overrides['api_port']}.")
    host = pick("HELIOS_API_HOST", "api_host")
    return replace(settings, **overrides, **({"api_host": str(host)} if host else {}))


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
