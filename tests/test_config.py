from pathlib import Path

import pytest

from helios_core.config import load_settings, mask_url
from helios_core.errors import ConfigError


def test_defaults_use_embedded_engine_in_dot_helios(tmp_path):
    settings = load_settings(env={}, cwd=tmp_path, secrets_paths=[])
    assert settings.embedded
    assert settings.data_dir == (tmp_path / ".helios").resolve()
    assert settings.clickhouse_dir == settings.data_dir / "clickhouse"


def test_environment_wins_over_secrets(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('clickhouse_url = "https://a:pw@secret-host:8443"\n[helios]\ndata_dir = "/srv/from-secrets"\n')
    from_secrets = load_settings(env={}, cwd=tmp_path, secrets_paths=[secrets])
    assert from_secrets.clickhouse_url == "https://a:pw@secret-host:8443"
    assert from_secrets.data_dir == Path("/srv/from-secrets")
    env = {"HELIOS_CLICKHOUSE_URL": "http://b@env-host:8123", "HELIOS_DATA_DIR": str(tmp_path / "d")}
    from_env = load_settings(env=env, cwd=tmp_path, secrets_paths=[secrets])
    assert from_env.clickhouse_url == "http://b@env-host:8123"
    assert from_env.data_dir == (tmp_path / "d").resolve()
    assert not from_env.embedded


def test_aws_endpoint_and_limits_from_environment(tmp_path):
    env = {"HELIOS_AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "HELIOS_QUERY_TIMEOUT": "5",
           "HELIOS_MAX_RESULT_ROWS": "123"}
    settings = load_settings(env=env, cwd=tmp_path, secrets_paths=[])
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"
    assert (settings.query_timeout_s, settings.max_result_rows) == (5, 123)


@pytest.mark.parametrize("env", [{"HELIOS_CLICKHOUSE_URL": "mysql://x"}, {"HELIOS_QUERY_TIMEOUT": "soon"},
                                 {"HELIOS_MAX_RESULT_ROWS": "-1"}])
def test_bad_settings_give_clear_errors(tmp_path, env):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env, cwd=tmp_path, secrets_paths=[])
    assert "HELIOS_" in str(info.value)


def test_broken_secrets_file_is_reported(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, cwd=tmp_path, secrets_paths=[secrets])


def test_passwords_are_masked_when_described(tmp_path):
    assert mask_url("https://user:s3cret@host:8443/db") == "https://user:***@host:8443/db"
    settings = load_settings(env={"HELIOS_CLICKHOUSE_URL": "https://u:s3cret@h:8443"}, cwd=tmp_path, secrets_paths=[])
    assert "s3cret" not in settings.describe_clickhouse()
    assert "s3cret" not in repr(mask_url(settings.clickhouse_url))
