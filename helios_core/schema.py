"""Schema model shared by inference, the wizard, DDL generation and the ingester.

A :class:`ColumnSpec` says where a column's value comes from in each event
(``json_path``), its ClickHouse type, and the validation rules the ingester
enforces. Inference (``infer_schema``) lives in this module too; DDL generation
and the type catalogue live in :mod:`helios_core.ddl`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Virtual columns filled from Kinesis record metadata rather than the payload (as ClickPipes offers).
VIRTUAL_SOURCES = {
    "_arrival_time": "DateTime64(3, 'UTC')",
    "_partition_key": "String",
    "_shard_id": "LowCardinality(String)",
    "_sequence_number": "String",
    "_raw_message": "String",
}
FORMATS = ("", "uuid", "iso_time", "email", "ip")


@dataclass
class ColumnSpec:
    name: str
    type: str
    json_path: str = ""           # dotted path into the event, e.g. "device.os"; "" for virtual columns
    required: bool = False        # missing or null → the event is quarantined
    allowed_values: list[str] = field(default_factory=list)  # enum-like columns; empty = any
    default: str | None = None    # a literal value used when the field is missing (not an SQL expression)
    format: str = ""              # one of FORMATS: extra check beyond the type
    virtual: str = ""             # one of VIRTUAL_SOURCES when filled from record metadata
    present_in_all: bool = True   # inference: seen in every sampled event
    reason: str = ""              # inference: why this type was chosen

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ColumnSpec":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "json_path" not in known and "virtual" not in known:
            known["json_path"] = data.get("path", data.get("name", ""))
        return cls(**known)


@dataclass
class InferredSchema:
    columns: list[ColumnSpec]
    order_by: list[str] = field(default_factory=list)       # suggested sorting key
    partition_by: str = ""                                   # suggested partition expression
    time_column: str | None = None
    conflicts: list[str] = field(default_factory=list)       # type conflicts that were widened
    sample_size: int = 0

    def seed_shape(self) -> list[dict[str, str]]:
        """The seed's ``inferredSchema``: ``[{name, type}]``."""
        return [{"name": c.name, "type": c.type} for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {"inferredSchema": [c.to_json() for c in self.columns], "orderBy": self.order_by,
                "partitionBy": self.partition_by, "timeColumn": self.time_column,
                "conflicts": self.conflicts, "sampleSize": self.sample_size}
