"""Deploying a source's ingest to AWS Lambda, in the user's account, or printing it as CloudFormation.

What gets made (every name derived from the source id, so a second deploy updates rather than duplicates):

* the DynamoDB mapping item (stream ARN → the source's table, columns and rules);
* a Secrets Manager secret holding the ClickHouse URL — the function's environment names the
  secret's ARN only, never the URL or a password;
* an IAM role Lambda can assume, allowed to read the stream, the mapping table and that one secret,
  and to write its logs;
* the function (the zip from :func:`package`), handler ``helios_core.ingest.lambda_handler.handler``;
* the Kinesis event source mapping with ``ReportBatchItemFailures`` (batch size, batching window,
  bisect on error, parallelization factor, starting position as chosen).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helios_core.errors import ValidationError
from helios_core.ingest.lambda_handler import MAPPING_TABLE_ENV, SECRET_ENV
from helios_core.ingest.mapping import MappingStore, mapping_item
from helios_core.sources import Source

HANDLER = "helios_core.ingest.lambda_handler.handler"
RUNTIME = "python3.11"
# What the handler imports beyond the Lambda runtime's own boto3.
HANDLER_REQUIREMENTS = ["clickhouse-connect>=1.12,<2", "pyarrow>=17", "orjson>=3.8,<4"]
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
PACKAGE_ROOT = Path(__file__).resolve().parent


@dataclass
class LambdaOptions:
    """How the function reads the stream (the event source mapping's settings)."""

    batch_size: int = 500
    batching_window_s: int = 1
    bisect_on_error: bool = True
    parallelization_factor: int = 1
    starting_position: str = "TRIM_HORIZON"
    memory_mb: int = 1024
    timeout_s: int = 120
    mapping_table: str = MappingStore.DEFAULT_TABLE

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.batch_size <= 10_000:
            out.append("Batch size must be between 1 and 10,000 records.")
        if not 0 <= self.batching_window_s <= 300:
            out.append("The batching window must be between 0 and 300 seconds.")
        if self.parallelization_factor != 1:
            # With more than one batch of a shard in flight, a later batch can commit a checkpoint past records
            # of an earlier one that is still running or being retried: exactly-once needs one at a time.
            out.append("The parallelization factor must be 1: Helios keeps exactly-once with one batch per shard "
                       "at a time. Add shards to the stream to ingest faster.")
        if self.starting_position not in STARTING_POSITIONS:
            out.append(f"The starting position must be one of {', '.join(STARTING_POSITIONS)}.")
        if not 128 <= self.memory_mb <= 10_240:
            out.append("Memory must be between 128 and 10,240 MB.")
        if not 1 <= self.timeout_s <= 900:
            out.append("The timeout must be between 1 and 900 seconds.")
        return out

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise ValidationError("The Lambda settings are not valid.", "Fix each problem listed.", problems=problems)


@dataclass
class Names:
    function: str
    role: str
    secret: str

    @classmethod
    def for_source(cls, source: Source) -> Names:
        base = f"helios-ingest-{source.id}"
        return cls(function=base, role=base, secret=f"helios/{source.id}/clickhouse-url")


@dataclass
class Deployment:
    function_arn: str
    role_arn: str
    secret_arn: str
    mapping_uuid: str
    mapping_table: str
    names: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- the zip ---------------------------------------------------------------------------------------

def package(dest: Path, with_requirements: bool = True) -> Path:
    """The function's zip: helios_core (Python sources only) and, unless told not to, the handler's
    requirements installed for Lambda's Linux x86_64 Python 3.11 (``pip install --target``)."""
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE_ROOT.rglob("*.py")):
            zf.write(path, Path("helios_core") / path.relative_to(PACKAGE_ROOT))
        if with_requirements:
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", tmp, "--platform",
                       "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
                       "--only-binary=:all:", *HANDLER_REQUIREMENTS]
                result = subprocess.run(cmd, capture_output=True, text=True)
                if result.returncode != 0:
                    raise ValidationError("Could not download the function's requirements.",
                                          (result.stderr.strip().splitlines() or ["pip failed"])[-1])
                for path in sorted(Path(tmp).rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts:
                        zf.write(path, path.relative_to(tmp))
    return dest


def package_bytes(with_requirements: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = package(Path(tmp) / "helios-lambda.zip", with_requirements)
        buffer.write(path.read_bytes())
    return buffer.getvalue()


# ---- policies --------------------------------------------------------------------------------------

TRUST_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                       "Principal": {"Service": "lambda.amazonaws.com"}}]}


def role_policy(stream_arn: str, table_arn: str, secret_arn: str) -> dict[str, Any]:
    """Least privilege: this stream, this mapping table (read), this secret, its own logs."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": stream_arn,
         "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary", "kinesis:ListShards"]},
        {"Effect": "Allow", "Action": ["kinesis:ListStreams"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:GetItem"], "Resource": table_arn},
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"}]}


# ---- deploying -------------------------------------------------------------------------------------

def deploy(conn: Any, source: Source, clickhouse_url: str, options: LambdaOptions | None = None,
           code: bytes | None = None) -> Deployment:
    """Create (or update) everything the source needs to ingest through Lambda, in ``conn``'s account."""
    from helios_core.aws import aws_errors

    options = options or LambdaOptions()
    options.check()
    if not clickhouse_url.startswith(("https://", "http://")):
        raise ValidationError("Lambda needs a ClickHouse server it can reach over HTTP(S).",
                              "Give the server's URL (for example https://user:password@host:8443); the "
                              "embedded engine lives inside this process and cannot be reached from AWS.")
    names = Names.for_source(source)
    with aws_errors("dynamodb:CreateTable", conn):
        store = MappingStore(conn.dynamodb(), options.mapping_table)
        store.ensure_table()
        store.put(source)
        table_arn = store.resource.meta.client.describe_table(TableName=options.mapping_table)["Table"]["TableArn"]
    with aws_errors("secretsmanager:CreateSecret", conn):
        secret_arn = _put_secret(conn.client("secretsmanager"), names.secret, clickhouse_url)
    with aws_errors("iam:CreateRole", conn):
        role_arn = _put_role(conn.client("iam"), names.role, role_policy(source.stream_arn, table_arn, secret_arn))
    with aws_errors("lambda:CreateFunction", conn):
        lam = conn.client("lambda")
        function_arn = _put_function(lam, names.function, role_arn, options,
                                     code if code is not None else package_bytes(with_requirements=True),
                                     secret_arn)
        mapping_uuid = _put_event_source_mapping(lam, names.function, source.stream_arn, options,
                                                 enabled=source.status == "running")
    return Deployment(function_arn, role_arn, secret_arn, mapping_uuid, options.mapping_table, asdict(names))


def _put_secret(client: Any, name: str, url: str) -> str:
    value = json.dumps({"url": url})
    try:
        return client.create_secret(Name=name, SecretString=value,
                                    Description="ClickHouse URL for a Helios ingest function")["ARN"]
    except client.exceptions.ResourceExistsException:
        return client.put_secret_value(SecretId=name, SecretString=value)["ARN"]


def _put_role(client: Any, name: str, policy: dict[str, Any]) -> str:
    try:
        arn = client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                                 Description="Helios ingest function")["Role"]["Arn"]
    except client.exceptions.EntityAlreadyExistsException:
        arn = client.get_role(RoleName=name)["Role"]["Arn"]
    client.put_role_policy(RoleName=name, PolicyName="helios-ingest", PolicyDocument=json.dumps(policy))
    return arn


def _function_settings(role_arn: str, options: LambdaOptions, secret_arn: str) -> dict[str, Any]:
    return {"Runtime": RUNTIME, "Role": role_arn, "Handler": HANDLER, "Timeout": options.timeout_s,
            "MemorySize": options.memory_mb,
            "Environment": {"Variables": {SECRET_ENV: secret_arn, MAPPING_TABLE_ENV: options.mapping_table}}}


def _put_function(client: Any, name: str, role_arn: str, options: LambdaOptions, code: bytes,
                  secret_arn: str) -> str:
    settings = _function_settings(role_arn, options, secret_arn)
    try:
        return client.create_function(FunctionName=name, Code={"ZipFile": code}, **settings)["FunctionArn"]
    except client.exceptions.ResourceConflictException:
        client.update_function_code(FunctionName=name, ZipFile=code)
        return client.update_function_configuration(FunctionName=name, **settings)["FunctionArn"]


def _mapping_settings(options: LambdaOptions) -> dict[str, Any]:
    return {"BatchSize": options.batch_size, "MaximumBatchingWindowInSeconds": options.batching_window_s,
            "BisectBatchOnFunctionError": options.bisect_on_error,
            "ParallelizationFactor": options.parallelization_factor,
            "FunctionResponseTypes": ["ReportBatchItemFailures"]}


def _put_event_source_mapping(client: Any, function: str, stream_arn: str, options: LambdaOptions,
                              enabled: bool = True) -> str:
    # A paused source deployed again stays paused: its mapping item says so, and an enabled mapping would
    # only fail every batch until the resume.
    existing = client.list_event_source_mappings(FunctionName=function, EventSourceArn=stream_arn)
    for mapping in existing.get("EventSourceMappings", []):
        client.update_event_source_mapping(UUID=mapping["UUID"], FunctionName=function, Enabled=enabled,
                                           **_mapping_settings(options))
        return str(mapping["UUID"])
    reply = client.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=function,
                                               StartingPosition=options.starting_position, Enabled=enabled,
                                               **_mapping_settings(options))
    return str(reply["UUID"])


# ---- reading back ----------------------------------------------------------------------------------

@dataclass
class LambdaStatus:
    state: str                      # the event source mapping's State (Enabled, Creating, Disabled, …)
    last_result: str = ""
    iterator_age_ms: float | None = None   # CloudWatch IteratorAge (maximum over the last 15 minutes)


def status(conn: Any, source: Source) -> LambdaStatus:
    """The mapping's state and, where CloudWatch has it, how far behind the stream the function is."""
    from helios_core.aws import aws_errors

    names = Names.for_source(source)
    with aws_errors("lambda:ListEventSourceMappings", conn):
        mappings = conn.client("lambda").list_event_source_mappings(FunctionName=names.function,
                                                                      EventSourceArn=source.stream_arn)
    found = mappings.get("EventSourceMappings") or []
    if not found:
        return LambdaStatus("Not deployed")
    age: float | None = None
    try:
        now = datetime.now(UTC)
        stats = conn.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="IteratorAge", Statistics=["Maximum"], Period=60,
            Dimensions=[{"Name": "FunctionName", "Value": names.function}],
            StartTime=now - timedelta(minutes=15), EndTime=now)
        points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
        age = float(points[-1]["Maximum"]) if points else None
    except Exception:  # CloudWatch is optional: the state alone is still worth showing
        age = None
    return LambdaStatus(str(found[0].get("State", "")), str(found[0].get("LastProcessingResult", "")), age)


# ---- pausing, resuming, removing --------------------------------------------------------------------

def _mappings_of(lam: Any, source: Source) -> list[dict[str, Any]]:
    """The source's event source mappings, found by the function's name: deploy() derives every name from
    the source id and keeps no UUID, so a CloudFormation deployment of the same template is found too."""
    names = Names.for_source(source)
    try:
        reply = lam.list_event_source_mappings(FunctionName=names.function, EventSourceArn=source.stream_arn)
    except lam.exceptions.ResourceNotFoundException:
        return []
    return list(reply.get("EventSourceMappings") or [])


def set_enabled(conn: Any, source: Source, enabled: bool) -> list[str]:
    """Enable or disable the source's event source mapping(s): disabled, Lambda stops reading the stream and the
    records wait there (within its retention) for the resume. Returns the UUIDs changed ([]: not deployed)."""
    from helios_core.aws import aws_errors

    with aws_errors("lambda:UpdateEventSourceMapping", conn):
        lam = conn.client("lambda")
        found = _mappings_of(lam, source)
        for mapping in found:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    return [str(m["UUID"]) for m in found]


def mapping_table_of(conn: Any, source: Source) -> str | None:
    """The mapping table the deployed function reads (its environment), or None when it is not deployed."""
    from helios_core.aws import aws_errors

    with aws_errors("lambda:GetFunctionConfiguration", conn):
        lam = conn.client("lambda")
        try:
            config = lam.get_function_configuration(FunctionName=Names.for_source(source).function)
        except lam.exceptions.ResourceNotFoundException:
            return None
    variables = (config.get("Environment") or {}).get("Variables") or {}
    return variables.get(MAPPING_TABLE_ENV) or None


def remove(conn: Any, source: Source) -> list[str]:
    """Delete what deploy() made for a source that is being deleted: the event source mapping, the function,
    its role and the secret holding the ClickHouse URL. Returns what was deleted.

    The mapping is deleted, not disabled: with the source, its mapping item and checkpoints gone, a mapping
    enabled again later could only fail every batch; and the secret holds a ClickHouse password that should
    not outlive the source. Resources already gone are skipped.
    """
    from helios_core.aws import aws_errors

    names = Names.for_source(source)
    done: list[str] = []
    with aws_errors("lambda:DeleteEventSourceMapping", conn):
        lam = conn.client("lambda")
        for mapping in _mappings_of(lam, source):
            lam.delete_event_source_mapping(UUID=mapping["UUID"])
            done.append(f"event source mapping {mapping['UUID']}")
    with aws_errors("lambda:DeleteFunction", conn):
        try:
            lam.delete_function(FunctionName=names.function)
            done.append(f"function {names.function}")
        except lam.exceptions.ResourceNotFoundException:
            pass
    with aws_errors("iam:DeleteRole", conn):
        iam = conn.client("iam")
        try:
            iam.delete_role_policy(RoleName=names.role, PolicyName="helios-ingest")
        except iam.exceptions.NoSuchEntityException:
            pass
        try:
            iam.delete_role(RoleName=names.role)
            done.append(f"role {names.role}")
        except iam.exceptions.NoSuchEntityException:
            pass
    with aws_errors("secretsmanager:DeleteSecret", conn):
        secrets = conn.client("secretsmanager")
        try:
            secrets.delete_secret(SecretId=names.secret, ForceDeleteWithoutRecovery=True)
            done.append(f"secret {names.secret}")
        except secrets.exceptions.ResourceNotFoundException:
            pass
    return done


# ---- CloudFormation --------------------------------------------------------------------------------

def cloudformation_template(source: Source, options: LambdaOptions | None = None,
                            code_bucket: str = "CODE_BUCKET", code_key: str = "helios-lambda.zip") -> dict[str, Any]:
    """The same resources as :func:`deploy`, for users who deploy through their own pipeline.

    The ClickHouse URL is a ``NoEcho`` parameter stored in the secret; the mapping item is in the
    template's ``Metadata`` (put it with ``aws dynamodb put-item`` or ``python -m helios_core lambda map``).
    """
    options = options or LambdaOptions()
    options.check()
    names = Names.for_source(source)
    table_arn = {"Fn::GetAtt": ["MappingTable", "Arn"]}
    policy = role_policy(source.stream_arn, "TABLE_ARN", "SECRET_ARN")
    for statement in policy["Statement"]:
        if statement["Resource"] == "TABLE_ARN":
            statement["Resource"] = table_arn
        elif statement["Resource"] == "SECRET_ARN":
            statement["Resource"] = {"Ref": "ClickHouseSecret"}
    settings = _function_settings("ROLE", options, "SECRET")
    settings["Role"] = {"Fn::GetAtt": ["Role", "Arn"]}
    settings["Environment"]["Variables"][SECRET_ENV] = {"Ref": "ClickHouseSecret"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Helios ingest for {source.stream_name} → {source.database}.{source.table}",
        "Metadata": {"HeliosMappingItem": mapping_item(source)},
        "Parameters": {"ClickHouseUrl": {"Type": "String", "NoEcho": True,
                                         "Description": "https://user:password@host:8443 of your ClickHouse"}},
        "Resources": {
            "MappingTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "TableName": options.mapping_table, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "stream_arn", "AttributeType": "S"},
                                         {"AttributeName": "source_id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "stream_arn", "KeyType": "HASH"},
                              {"AttributeName": "source_id", "KeyType": "RANGE"}]}},
            "ClickHouseSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
                "Name": names.secret, "SecretString": {"Fn::Sub": '{"url": "${ClickHouseUrl}"}'}}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": names.role, "AssumeRolePolicyDocument": TRUST_POLICY,
                "Policies": [{"PolicyName": "helios-ingest", "PolicyDocument": policy}]}},
            "Function": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": names.function, "Code": {"S3Bucket": code_bucket, "S3Key": code_key}, **settings}},
            "EventSourceMapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                "EventSourceArn": source.stream_arn, "FunctionName": {"Ref": "Function"},
                "StartingPosition": options.starting_position, **_mapping_settings(options)}},
        },
    }


# ---- one call for the wizard and the command line --------------------------------------------------------

def clickhouse_url_for_lambda(settings: Any) -> str:
    """The ClickHouse server URL the function will write to (the one Helios itself uses), or a clear refusal."""
    if settings.embedded:
        raise ValidationError("Lambda ingest needs a ClickHouse server that AWS can reach; Helios is using its "
                              "embedded engine.",
                              "Set HELIOS_CLICKHOUSE_URL to your server (for example https://user:password@host:8443) "
                              "and create the table there, or choose 'CloudFormation template'.")
    return str(settings.clickhouse_url or "")


def deploy_or_template(conn: Any, source: Source, options: LambdaOptions, template: bool,
                       with_requirements: bool = True) -> dict[str, Any]:
    """Deploy the source's Lambda resources now, or return them as a CloudFormation template."""
    from helios_core.config import get_settings

    if template:
        return {"cloudFormation": cloudformation_template(source, options)}
    url = clickhouse_url_for_lambda(get_settings())
    code = package_bytes(with_requirements=with_requirements)
    return {"lambda": deploy(conn, source, url, options, code=code).to_json()}

