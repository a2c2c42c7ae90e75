"""Write-only upload URLs on the three clouds an analysis job may use (the seed's ``cloud_providers``).

* ``aws`` — an S3 presigned ``PUT`` (signed by the job service, as for import jobs).
* ``gcp`` — a presigned ``PUT`` through Cloud Storage's S3-interoperable XML API: HMAC keys sign it with
  Signature V4 exactly as for S3, at ``https://storage.googleapis.com``.
* ``azure`` — a Blob SAS URL (create + write on one blob) from azure-storage-blob's ``generate_blob_sas``.

All signing is computed locally (no network). The keys come from the environment or secrets.toml
(:mod:`helios_core.config`) and are never stored or echoed: only the signed URLs leave this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from helios_core.config import Settings, get_settings
from helios_core.errors import ValidationError

PROVIDERS = ("aws", "gcp", "azure")
GCS_ENDPOINT = "https://storage.googleapis.com"
_NEEDS = {
    "gcp": "HELIOS_GCS_HMAC_KEY_ID, HELIOS_GCS_HMAC_SECRET and HELIOS_GCS_BUCKET (an HMAC key of a service "
           "account that may write to that bucket)",
    "azure": "HELIOS_AZURE_ACCOUNT_NAME, HELIOS_AZURE_ACCOUNT_KEY and HELIOS_AZURE_CONTAINER (the storage "
             "account's access key and an existing container)",
}


@dataclass(frozen=True)
class GcsTarget:
    key_id: str
    secret: str
    bucket: str
    endpoint: str = GCS_ENDPOINT

    def __repr__(self) -> str:  # never print the secret
        return f"GcsTarget(key_id={self.key_id!r}, bucket={self.bucket!r})"


@dataclass(frozen=True)
class AzureTarget:
    account: str
    key: str
    container: str

    def __repr__(self) -> str:
        return f"AzureTarget(account={self.account!r}, container={self.container!r})"


def gcs_target(settings: Settings | None = None) -> GcsTarget | None:
    s = settings or get_settings()
    if s.gcs_hmac_key_id and s.gcs_hmac_secret and s.gcs_bucket:
        return GcsTarget(s.gcs_hmac_key_id, s.gcs_hmac_secret, s.gcs_bucket, s.gcs_endpoint_url or GCS_ENDPOINT)
    return None


def azure_target(settings: Settings | None = None) -> AzureTarget | None:
    s = settings or get_settings()
    if s.azure_account_name and s.azure_account_key and s.azure_container:
        return AzureTarget(s.azure_account_name, s.azure_account_key, s.azure_container)
    return None


def configured(provider: str, settings: Settings | None = None) -> bool:
    if provider == "aws":
        return True  # the job service always has S3: real AWS, an endpoint, or the local sandbox
    if provider == "gcp":
        return gcs_target(settings) is not None
    if provider == "azure":
        return azure_target(settings) is not None
    return False


def check_providers(value: Any, settings: Settings | None = None) -> list[str]:
    """The seed's ``cloud_providers``: a non-empty list of aws/gcp/azure, each one configured."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValidationError("cloud_providers must be a list such as [\"aws\"].",
                              f"Choose one or more of {', '.join(PROVIDERS)}.")
    providers: list[str] = []
    for item in value:
        name = str(item or "").strip().lower()
        if name not in PROVIDERS:
            raise ValidationError(f"Unknown cloud provider {item!r}.", f"Use {', '.join(PROVIDERS)}.")
        if name not in providers:
            providers.append(name)
    for name in providers:
        if not configured(name, settings):
            raise ValidationError(f"The cloud provider {name!r} is not configured, so Helios cannot give data "
                                  "owners upload links there.",
                                  f"Set {_NEEDS[name]} in the environment or .streamlit/secrets.toml, "
                                  "or leave it out of cloud_providers.")
    return providers


def gcs_client(target: GcsTarget) -> Any:
    """An S3 client speaking to Cloud Storage's XML API with the HMAC key (Signature V4)."""
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=target.endpoint, region_name="auto",
                        aws_access_key_id=target.key_id, aws_secret_access_key=target.secret,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def gcs_put_url(target: GcsTarget, key: str, expires_in: int) -> str:
    """A V4-signed ``PUT`` of one object through the XML API (HMAC keys), computed offline."""
    client = gcs_client(target)
    return client.generate_presigned_url("put_object", Params={"Bucket": target.bucket, "Key": key},
                                         ExpiresIn=int(expires_in), HttpMethod="PUT")


def azure_put_url(target: AzureTarget, blob: str, expires_in: int, now: datetime | None = None) -> str:
    """A SAS URL that may create and write one blob (upload with ``x-ms-blob-type: BlockBlob``)."""
    from urllib.parse import quote

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas
    start = now or datetime.now(UTC)
    sas = generate_blob_sas(account_name=target.account, container_name=target.container, blob_name=blob,
                            account_key=target.key, permission=BlobSasPermissions(create=True, write=True),
                            expiry=start + timedelta(seconds=int(expires_in)), protocol="https")
    return f"https://{target.account}.blob.core.windows.net/{target.container}/{quote(blob)}?{sas}"


def other_cloud_urls(providers: Iterable[str], key: str, expires_in: int,
                     settings: Settings | None = None) -> list[str]:
    """One URL for each non-AWS provider (the job service signs the S3 one)."""
    urls: list[str] = []
    for name in providers:
        if name == "gcp":
            gcs = gcs_target(settings)
            if gcs is None:
                check_providers([name], settings)
            assert gcs is not None  # check_providers raised: GCS is not configured
            urls.append(gcs_put_url(gcs, key, expires_in))
        elif name == "azure":
            azure = azure_target(settings)
            if azure is None:
                check_providers([name], settings)
            assert azure is not None  # check_providers raised: Azure is not configured
            urls.append(azure_put_url(azure, key, expires_in))
    return urls


# ---- reading what owners uploaded (the job's run) ----------------------------------------------------------


def _cloud_error(provider: str, exc: Exception) -> Exception:
    from helios_core.errors import AwsError
    return AwsError(f"Could not read the uploads on {provider}: {str(exc)[:300]}",
                    f"Check the {provider} settings ({_NEEDS.get(provider, 'AWS credentials')}).")


def list_uploads(provider: str, prefix: str, settings: Settings | None = None) -> list[tuple[str, int]]:
    """(key, size) of every object under ``prefix`` on a non-AWS provider."""
    try:
        if provider == "gcp":
            target = gcs_target(settings)
            if target is None:
                return []
            client = gcs_client(target)
            out = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix):
                out += [(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", []) or []]
            return out
        if provider == "azure":
            azure = azure_target(settings)
            if azure is None:
                return []
            container = _azure_container(azure)
            return [(b.name, int(b.size or 0)) for b in container.list_blobs(name_starts_with=prefix)]
    except Exception as exc:  # noqa: BLE001 - each SDK raises its own kinds
        raise _cloud_error(provider, exc) from exc
    return []


def download_upload(provider: str, key: str, path: str, settings: Settings | None = None) -> None:
    try:
        if provider == "gcp":
            gcs = gcs_target(settings)
            assert gcs is not None, "GCS is not configured"
            gcs_client(gcs).download_file(gcs.bucket, key, path)
        elif provider == "azure":
            azure = azure_target(settings)
            assert azure is not None, "Azure is not configured"
            with open(path, "wb") as fh:
                _azure_container(azure).download_blob(key).readinto(fh)
    except Exception as exc:  # noqa: BLE001
        raise _cloud_error(provider, exc) from exc


def _azure_container(target: AzureTarget) -> Any:
    from azure.storage.blob import ContainerClient
    return ContainerClient(f"https://{target.account}.blob.core.windows.net", target.container,
                           credential={"account_name": target.account, "account_key": target.key})
