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


# ---- the settings table ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_and_the_settings_object_agree(tmp_path):
    from dataclasses import fields

    from helios_core.config import _PARSERS, DERIVED, SETTINGS, Settings
    assert [s.field for s in SETTINGS] == [f.name for f in fields(Settings) if f.name not in DERIVED]
    assert {s.kind for s in SETTINGS} <= set(_PARSERS)
    assert len({name for s in SETTINGS for name in s.env}) == sum(len(s.env) for s in SETTINGS)
    defaults = load_settings(env={}, cwd=tmp_path, secrets_paths=[])
    for s in SETTINGS:
        if s.field != "data_dir":
            assert getattr(defaults, s.field) == s.default, s.field
        assert s.help and s.env and s.key


def test_settings_once_read_elsewhere_come_from_the_environment(tmp_path):
    env = {"HELIOS_IMPORT_BUCKET": " my-uploads ", "HELIOS_SANDBOX_RATE": "0", "HELIOS_LLM_BASE_URL": "http://llm/v1",
           "HELIOS_LLM_MODEL": "qwen", "OPENAI_API_KEY": "sk-openai", "HELIOS_API_TOKEN": "helios_worker",
           "HELIOS_MAPPING_TABLE": "my-sources", "HELIOS_CLICKHOUSE_SECRET_ARN": "arn:aws:secretsmanager:x"}
    settings = load_settings(env=env, cwd=tmp_path, secrets_paths=[])
    assert (settings.import_bucket, settings.sandbox_rate) == ("my-uploads", 0.0)
    assert (settings.llm_base_url, settings.llm_model, settings.llm_api_key) == ("http://llm/v1", "qwen", "sk-openai")
    assert settings.api_token == "helios_worker"
    assert (settings.mapping_table, settings.clickhouse_secret_arn) == ("my-sources", "arn:aws:secretsmanager:x")
    # HELIOS_LLM_API_KEY is read before OPENAI_API_KEY, as before.
    both = load_settings(env={**env, "HELIOS_LLM_API_KEY": "sk-helios"}, cwd=tmp_path, secrets_paths=[])
    assert both.llm_api_key == "sk-helios"


def test_a_mistyped_sandbox_rate_keeps_the_default(tmp_path):
    assert load_settings(env={"HELIOS_SANDBOX_RATE": "fast"}, cwd=tmp_path, secrets_paths=[]).sandbox_rate == 2.0
    assert load_settings(env={"HELIOS_SANDBOX_RATE": "0.5"}, cwd=tmp_path, secrets_paths=[]).sandbox_rate == 0.5


def test_every_setting_can_come_from_secrets_toml(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[helios]\nimport_bucket = "from-secrets"\nllm_api_key = "sk-secret"\napi_port = 8123\n'
                       'allowed_table_functions = ["URL", "s3"]\nsandbox_rate = 5\n')
    settings = load_settings(env={}, cwd=tmp_path, secrets_paths=[secrets])
    assert (settings.import_bucket, settings.llm_api_key, settings.api_port) == ("from-secrets", "sk-secret", 8123)
    assert (settings.allowed_table_functions, settings.sandbox_rate) == (("s3", "url"), 5.0)
    over = load_settings(env={"HELIOS_IMPORT_BUCKET": "from-env"}, cwd=tmp_path, secrets_paths=[secrets])
    assert over.import_bucket == "from-env"


def test_secrets_never_show_in_repr(tmp_path):
    from helios_core.config import SETTINGS
    env = {"HELIOS_CLICKHOUSE_URL": "https://u:pw-ch-1@h:8443", "HELIOS_LLM_API_KEY": "sk-llm-2",
           "HELIOS_API_TOKEN": "helios_tok-3", "HELIOS_GCS_HMAC_SECRET": "gcs-4", "HELIOS_AZURE_ACCOUNT_KEY": "az-5"}
    text = repr(load_settings(env=env, cwd=tmp_path, secrets_paths=[]))
    for secret in ("pw-ch-1", "sk-llm-2", "helios_tok-3", "gcs-4", "az-5"):
        assert secret not in text
    assert {s.field for s in SETTINGS if s.secret} == {"clickhouse_url", "llm_api_key", "api_token",
                                                       "gcs_hmac_secret", "azure_account_key"}


@pytest.mark.parametrize("env", [{"HELIOS_API_PORT": "70000"}, {"HELIOS_API_MAX_BODY": "0"},
                                 {"HELIOS_READER_POOL": "many"}])
def test_bad_numbers_name_their_variable(tmp_path, env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        load_settings(env=env, cwd=tmp_path, secrets_paths=[])


def test_readme_names_every_setting():
    from helios_core.config import SETTINGS
    readme = (ROOT / "README.md").read_text()
    missing = [name for s in SETTINGS for name in s.env if f"`{name}`" not in readme]
    assert not missing, f"README.md does not name {missing}: add them to its Settings table"


def test_only_config_reads_the_environment():
    """Every setting is a row of config.SETTINGS: no other module reads os.environ or getenv."""
    import ast
    readers = []
    for path in sorted((ROOT / "helios_core").rglob("*.py")):
        if path.name == "config.py" and path.parent.name == "helios_core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not readers, readers
