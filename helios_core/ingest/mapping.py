"""The DynamoDB mapping table: which Helios sources a stream feeds, for ingest outside the app (workers, Lambda).

One item per (stream ARN, source): ``stream_arn`` (partition key), ``source_id`` (sort key), ``status``
(``running`` or ``paused``: workers and the Lambda handler take only running items) and the source's
definition as JSON (table, columns with their rules, options). The definition carries no secret: a source's
connection never holds keys, and ClickHouse's URL lives in Secrets Manager.
"""

from __future__ import annotations

import json
from typing import Any

from helios_core.sources import Source


class MappingStore:
    DEFAULT_TABLE = "helios-sources"

    def __init__(self, dynamodb_resource: Any, table_name: str = DEFAULT_TABLE) -> None:
        self.resource = dynamodb_resource
        self.table_name = table_name
        self.table = dynamodb_resource.Table(table_name)

    def ensure_table(self) -> None:
        """Create the table (on-demand billing) when it does not exist yet, and wait until it can be used."""
        client = self.resource.meta.client
        try:
            client.describe_table(TableName=self.table_name)
            return
        except client.exceptions.ResourceNotFoundException:
            pass
        client.create_table(TableName=self.table_name, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "stream_arn", "AttributeType": "S"},
                                                  {"AttributeName": "source_id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "stream_arn", "KeyType": "HASH"},
                                       {"AttributeName": "source_id", "KeyType": "RANGE"}])
        client.get_waiter("table_exists").wait(TableName=self.table_name)

    def put(self, source: Source) -> dict[str, Any]:
        item = mapping_item(source)
        self.table.put_item(Item=item)
        return item

    def delete(self, stream_arn: str, source_id: str) -> None:
        self.table.delete_item(Key={"stream_arn": stream_arn, "source_id": source_id})

    def sources_for(self, stream_arn: str) -> list[Source]:
        from boto3.dynamodb.conditions import Key

        return _running(all_items(self.table.query, KeyConditionExpression=Key("stream_arn").eq(stream_arn),
                                   ConsistentRead=True))


def all_items(call: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a DynamoDB query or scan (``table.query`` / ``table.scan``), page after page."""
    items: list[dict[str, Any]] = []
    while True:
        page = call(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _running(items: list[dict[str, Any]]) -> list[Source]:
    return [Source.from_json(json.loads(i["definition"])) for i in items if i.get("status", "running") == "running"]


def publish(conn: Any, source: Source, table_name: str = MappingStore.DEFAULT_TABLE) -> dict[str, Any]:
    """Put a source's definition and status where workers (and Lambda) read it, creating the table when missing.

    Also how a pause, a resume or new rules reach them: the item is replaced whole, so it never mixes an old
    definition with a new status.
    """
    from helios_core.aws import aws_errors

    with aws_errors("dynamodb:PutItem", conn):
        store = MappingStore(conn.dynamodb(), table_name)
        store.ensure_table()
        return store.put(source)


def unpublish(conn: Any, source: Source, table_name: str = MappingStore.DEFAULT_TABLE) -> None:
    """Remove a source's item (a missing item or table is not an error: nothing reads it then)."""
    from helios_core.aws import aws_errors

    with aws_errors("dynamodb:DeleteItem", conn):
        store = MappingStore(conn.dynamodb(), table_name)
        try:
            store.delete(source.stream_arn, source.id)
        except store.resource.meta.client.exceptions.ResourceNotFoundException:
            pass


def table_of(source: Source) -> str:
    """The mapping table a source was published to (recorded when it was not the default one)."""
    return str(source.options.get("mapping_table") or MappingStore.DEFAULT_TABLE)


def all_sources(store: MappingStore, mode: str | None = None) -> list[Source]:
    """Every running source in the mapping table (of one ingest mode when given)."""
    return mapped_sources(store, mode)[0]


def mapped_sources(store: MappingStore, mode: str | None = None) -> tuple[list[Source], set[str]]:
    """The running sources (of one ingest mode when given), and the ids of every item, paused ones included:
    a source missing from the second was deleted, not paused."""
    items = all_items(store.table.scan, ConsistentRead=True)
    running = [s for s in _running(items) if mode is None or s.mode == mode]
    return running, {str(i["source_id"]) for i in items}


def mapping_item(source: Source) -> dict[str, Any]:
    """The DynamoDB item for a source (also printed for users who deploy through their own pipeline)."""
    return {"stream_arn": source.stream_arn, "source_id": source.id, "table": f"{source.database}.{source.table}",
            "status": "running" if source.status == "running" else "paused",
            "definition": json.dumps(source.to_json(), default=str)}
