"""Schema inference on realistic events, and how it compares with ClickHouse's own."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helios_core.ddl import clickhouse_type_problem
from helios_core.sandbox import generate_events
from helios_core.schema import ColumnSpec, InferredSchema, clickhouse_describe, infer_schema

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def web_analytics(n: int = 300, seed: int = 1) -> list[dict]:
    """Segment-style track calls."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = T0 + timedelta(milliseconds=i * 1500 + rng.randint(0, 999))
        event = {
            "anonymousId": _uuid(rng),
            "userId": None if rng.random() < 0.3 else f"u_{rng.randint(1, 5000)}",
            "event": rng.choice(["Page Viewed", "Page Viewed", "Button Clicked", "Signed Up", "Product Viewed"]),
            "timestamp": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "sentAt": int(t.timestamp() * 1000) + rng.randint(5, 80),
            "context": {
                "ip": rng.choice([f"81.2.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                                  f"2001:db8::{rng.randint(1, 9999):x}"]),
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
                             f"Gecko) Chrome/{rng.randint(100, 125)}.0.0.0 Safari/537.36",
                "locale": rng.choice(["en-US", "en-GB", "de-DE", "fr-FR"]),
                "page": {"url": f"https://shop.example.com/p/{rng.randint(1, 10**6)}",
                         "title": rng.choice(["Home", "Pricing", "Docs"])},
            },
            "properties": {"button": rng.choice(["buy", "cart", "share"]), "position": rng.randint(1, 12)},
        }
        if rng.random() < 0.2:
            event["context"]["campaign"] = {"source": rng.choice(["google", "newsletter"]), "medium": "cpc"}
        events.append(event)
    return events


def ecommerce(n: int = 200, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        items = [{"sku": f"SKU-{rng.randint(100, 999)}", "qty": rng.randint(1, 3), "price": rng.choice([9.99, 25, 4.5])}
                 for _ in range(rng.randint(1, 3))]
        events.append({
            "order_id": _uuid(rng),
            "customer_email": f"customer{rng.randint(1, 10**5)}@example.com",
            "amount": rng.choice([round(rng.uniform(5, 500), 2), rng.randint(5, 500)]),
            "currency": rng.choice(["USD", "EUR", "GBP"]),
            "items": items,
            "tags": rng.sample(["gift", "express", "promo", "b2b"], rng.randint(0, 2)),
            "coupon": rng.choice([None, "SPRING", "WELCOME10"]),
            "created_at": (T0 + timedelta(seconds=i * 37)).strftime("%Y-%m-%d %H:%M:%S"),
            "ship_date": (T0 + timedelta(days=rng.randint(1, 9))).date().isoformat(),
            "customer_birth_date": f"{rng.randint(1940, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "is_gift": rng.random() < 0.1,
            "item_count": len(items),
        })
    return events


def logs(n: int = 250, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        labels = {f"label_{rng.randint(1, 60)}": "x" for _ in range(3)}
        events.append({
            "ts": int(T0.timestamp()) + i * 2,
            "level": rng.choice(["INFO"] * 8 + ["WARN", "ERROR"]),
            "logger": rng.choice(["app.db", "app.http", "app.auth"]),
            "message": f"request {rng.randint(1, 10**6)} finished after {rng.randint(1, 900)} ms for user "
                       f"{rng.randint(1, 999)} with a rather long explanation attached",
            "host": rng.choice(["web-1", "web-2", "web-3"]),
            "status": rng.choice([200, 200, 200, 201, 304, 404, 500, 503]),
            "latency_ms": round(rng.uniform(0.5, 900), 3),
            "request_id": _uuid(rng),
            "client_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "trace": {"span_id": f"{rng.getrandbits(64):016x}", "parent_id": None},
            "labels": labels,
        })
    return events


def iot(n: int = 200, seed: int = 4) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        base = T0.timestamp() + i * 5
        events.append({
            "device_id": f"sensor-{rng.randint(1, 40):04d}",
            "ts_ns": int(base * 1e9) + rng.randint(0, 999_999),
            "reading_time": round(base + rng.random(), 3),
            "temperature": round(rng.uniform(-10, 35), 2),
            "battery_pct": rng.randint(5, 100),
            "location": {"lat": round(rng.uniform(50, 51), 5), "lon": round(rng.uniform(4, 5), 5)},
            "firmware": rng.choice(["1.2.3", "1.2.4"]),
            "online": rng.random() < 0.95,
            "readings": [round(rng.uniform(0, 1), 3) for _ in range(rng.randint(1, 4))],
            "errors": [],
            "metadata": None,
        })
    return events


def types_of(schema: InferredSchema) -> dict[str, str]:
    return {c.name: c.type for c in schema.columns}


def column(schema: InferredSchema, name: str) -> ColumnSpec:
    return next(c for c in schema.columns if c.name == name)


# ---------------------------------------------------------------- the four fixtures

def test_web_analytics():
    schema = infer_schema(web_analytics())
    types = types_of(schema)
    assert types["anonymousId"] == "UUID"
    assert types["userId"] == "Nullable(String)"
    assert types["event"] == "LowCardinality(String)"
    assert types["timestamp"] == "DateTime64(3, 'UTC')"
    assert types["sentAt"] == "DateTime64(3, 'UTC')" and column(schema, "sentAt").time_unit == "ms"
    assert types["context_ip"] == "IPv6"  # v4 and v6 mixed
    assert types["context_userAgent"] in ("String", "LowCardinality(String)")
    assert types["context_locale"] == "LowCardinality(String)"
    assert types["context_page_url"] == "String"
    assert types["properties_position"] == "UInt64"
    assert types["context_campaign_source"] == "LowCardinality(Nullable(String))"
    assert column(schema, "context_page_url").json_path == "context.page.url"
    assert not column(schema, "context_campaign_medium").present_in_all
    assert column(schema, "event").present_in_all and column(schema, "event").required
    assert schema.time_column == "timestamp"
    assert schema.order_by[-1] == "timestamp" and schema.partition_by == "toYYYYMM(timestamp)"
    assert "Nullable" not in " ".join(types[c] for c in schema.order_by)


def test_ecommerce():
    schema = infer_schema(ecommerce())
    types = types_of(schema)
    assert types["order_id"] == "UUID"
    assert types["customer_email"] == "String" and column(schema, "customer_email").format == "email"
    assert types["amount"] == "Float64"
    assert any(c.startswith("amount: whole and decimal numbers") for c in schema.conflicts)
    assert types["currency"] == "LowCardinality(String)"
    assert types["items"] == "Array(JSON)"
    assert types["tags"] == "Array(LowCardinality(String))"
    assert types["coupon"] == "LowCardinality(Nullable(String))"
    created = column(schema, "created_at")
    assert created.type == "DateTime64(0, 'UTC')" and "read as UTC" in created.reason
    assert types["ship_date"] == "Date"
    assert types["customer_birth_date"] == "Date32"
    assert types["is_gift"] == "Bool"
    assert types["item_count"] == "UInt64"
    assert schema.time_column == "created_at"
    assert infer_schema(ecommerce(), decimal=True).columns[2].type == "Decimal(18, 4)"


def test_logs():
    schema = infer_schema(logs())
    types = types_of(schema)
    assert types["ts"] == "DateTime64(0, 'UTC')" and column(schema, "ts").time_unit == "s"
    assert types["level"] == "LowCardinality(String)"
    assert types["message"] == "String" and "long text" in column(schema, "message").reason
    assert types["status"] == "UInt16" and "HTTP status" in column(schema, "status").reason
    assert types["latency_ms"] == "Float64"
    assert types["request_id"] == "UUID"
    assert types["client_ip"] == "IPv4"
    assert types["trace_span_id"] == "String"
    assert types["trace_parent_id"] == "Nullable(String)" and "only nulls" in column(schema, "trace_parent_id").reason
    labels = column(schema, "labels")
    assert labels.type == "JSON" and "wide object" in labels.reason and labels.json_path == "labels"
    assert schema.order_by[:2] == ["level", "logger"] or schema.order_by[0] in ("level", "logger", "host")
    assert schema.order_by[-1] == "ts"


def test_iot():
    schema = infer_schema(iot())
    types = types_of(schema)
    assert types["device_id"] == "String"  # an identifier, not LowCardinality
    assert types["ts_ns"] == "DateTime64(9, 'UTC')" and column(schema, "ts_ns").time_unit == "ns"
    assert types["reading_time"] == "DateTime64(3, 'UTC')" and column(schema, "reading_time").time_unit == "s"
    assert types["temperature"] == "Float64"
    assert types["battery_pct"] == "UInt8"
    assert types["location_lat"] == "Float64" and column(schema, "location_lon").json_path == "location.lon"
    assert types["firmware"] == "LowCardinality(String)"
    assert types["online"] == "Bool"
    assert types["readings"] == "Array(Float64)"
    assert types["errors"] == "Array(String)" and "only empty arrays" in column(schema, "errors").reason
    assert types["metadata"] == "Nullable(String)"
    assert schema.time_column == "ts_ns"


def test_every_inferred_type_is_accepted_by_clickhouse(ch):
    seen = set()
    for events in (web_analytics(), ecommerce(), logs(), iot(),
                   *[[g.event for g in generate_events(s, 300, seed=5) if g.event]
                     for s in ("user_activity", "purchase_events", "captcha_events")]):
        seen |= {c.type for c in infer_schema(events).columns}
    problems = {t: clickhouse_type_problem(ch, t) for t in seen}
    assert {t: p for t, p in problems.items() if p} == {}


# ---------------------------------------------------------------- rules

def test_conflicts_widen_and_are_reported():
    events = [{"id": 1, "v": 1, "mixed": "a", "obj": {"x": 1}}, {"id": "two", "v": 2.5, "mixed": 3, "obj": 5}]
    schema = infer_schema(events)
    types = types_of(schema)
    assert types["id"] == "String" and types["v"] == "Float64" and types["mixed"] == "String"
    assert types["obj"] == "String" and "JSON text" in column(schema, "obj").reason
    assert len(schema.conflicts) == 4
    assert any("id:" in c and "'two'" in c for c in schema.conflicts)


def test_rare_outliers_are_quarantined_rather_than_widening():
    events = [{"user_id": i, "time": f"2025-01-01T00:00:{i % 60:02d}Z", "kind": "a"} for i in range(199)]
    events.append({"user_id": "user-7", "time": "yesterday"})
    schema = infer_schema(events)
    types = types_of(schema)
    assert types["user_id"] == "UInt64" and types["time"] == "DateTime64(0, 'UTC')"
    assert types["kind"] == "LowCardinality(String)" and column(schema, "kind").required
    assert len(schema.conflicts) == 3 and all("quarantined" in c for c in schema.conflicts)
    strict = infer_schema(events, outlier_ratio=0)
    assert types_of(strict)["user_id"] == "String" and types_of(strict)["kind"] == "LowCardinality(Nullable(String))"


def test_outliers_stay_outliers_in_big_samples():
    events = [g.event for g in generate_events("captcha_events", 10_000, seed=21) if g.event is not None]
    schema = infer_schema(events)
    assert types_of(schema) == {"time": "DateTime64(3, 'UTC')", "type": "LowCardinality(String)",
                                "correlation_id": "UUID", "site_id": "UUID"}
    assert any(c.startswith("time:") and "quarantined" in c for c in schema.conflicts)


def test_nullable_only_where_nulls_or_missing_keys_were_seen():
    events = [{"a": 1, "b": "x", "c": None, "d": [1]}, {"a": 2, "b": "y", "d": [None, 2]}, {"a": 3, "b": None}]
    schema = infer_schema(events)
    types = types_of(schema)
    assert types["a"] == "Int64" and column(schema, "a").present_in_all
    assert types["b"] == "Nullable(String)" and column(schema, "b").present_in_all
    assert types["c"] == "Nullable(String)" and not column(schema, "c").present_in_all
    assert types["d"] == "Array(Nullable(Int64))" and "empty array then" in column(schema, "d").reason


def test_nested_objects_flatten_or_stay_json():
    events = [{"user": {"id": 7, "geo": {"country": "DE", "city": "Berlin"}},
               "counts": {str(1000 + i): i for i in range(5)},
               "attrs": {f"k{j}": j for j in range(i % 12, i % 12 + 10)}} for i in range(40)]
    schema = infer_schema(events)
    types = types_of(schema)
    assert column(schema, "user_geo_city").json_path == "user.geo.city"
    assert types["user_id"] == "UInt64"
    assert types["counts"] == "JSON" and "keys are data" in column(schema, "counts").reason
    assert types["attrs"] == "JSON" and "irregular" in column(schema, "attrs").reason


def test_names_are_sanitized_and_unique():
    schema = infer_schema([{"user-name": "a", "1st": 1, "order": 2, "a.b": 1, "a": {"b": 2}, "A_B": 3}])
    names = [c.name for c in schema.columns]
    assert names == ["user_name", "c_1st", "order_", "a_b", "a_b_2", "A_B_3"]
    assert [c.json_path for c in schema.columns][3:5] == ["a.b", "a.b"]  # (a literal dotted key reads the same)


def test_timestamps_in_several_formats():
    events = [{"iso_z": "2025-01-01T10:00:00.123456Z", "iso_offset": "2025-01-01T10:00:00+02:00",
               "iso_space": "2025-01-01 10:00:00.5", "epoch_s": 1735725600, "created_ms": 1735725600123,
               "when_us": 1735725600123456, "plain_date": "2025-01-01", "reference": 1735725600,
               "big_number": 1735725600123} for _ in range(3)]
    schema = infer_schema(events)
    types = types_of(schema)
    assert types["iso_z"] == "DateTime64(6, 'UTC')"
    assert types["iso_offset"] == "DateTime64(0, 'UTC')" and column(schema, "iso_offset").format == "iso_time"
    assert types["iso_space"] == "DateTime64(3, 'UTC')"
    assert types["epoch_s"] == "DateTime64(0, 'UTC')"
    assert types["created_ms"] == "DateTime64(3, 'UTC')"
    assert types["when_us"] == "DateTime64(6, 'UTC')"
    assert types["plain_date"] == "Date"
    assert types["reference"] == "Int64"  # seconds-sized numbers need a time-like name
    assert types["big_number"] == "DateTime64(3, 'UTC')"  # milliseconds-sized numbers do not


def test_sorting_key_partition_and_seed_shape():
    events = [g.event for g in generate_events("captcha_events", 400, seed=9, bad_ratio=0)]
    schema = infer_schema(events)
    assert schema.order_by == ["type", "site_id", "time"]
    assert schema.partition_by == "toYYYYMM(time)" and schema.time_column == "time"
    assert schema.to_api() == [{"name": "time", "type": "DateTime64(3, 'UTC')"},
                                   {"name": "type", "type": "LowCardinality(String)"},
                                   {"name": "correlation_id", "type": "UUID"}, {"name": "site_id", "type": "UUID"}]
    fast = [{"time": (T0 + timedelta(microseconds=100 * i)).isoformat(), "v": i} for i in range(500)]
    assert infer_schema(fast).partition_by == "toYYYYMMDD(time)"
    again = InferredSchema.from_json(schema.to_json())
    assert again.columns == schema.columns and again.order_by == schema.order_by


def test_odd_inputs():
    empty = infer_schema([])
    assert empty.columns == [] and empty.sample_size == 0
    schema = infer_schema([{"a": 1}, "not an object", [1, 2], {"a": 2}])
    assert schema.sample_size == 2 and "2 items" in schema.conflicts[0]
    only_nulls = infer_schema([{"x": None}, {"x": None}])
    assert types_of(only_nulls) == {"x": "Nullable(String)"}


# ---------------------------------------------------------------- versus ClickHouse's own inference

def test_beats_clickhouse_describe_where_it_is_weak(ch):
    rng = random.Random(8)
    events = [{"session_id": _uuid(rng), "client_ip": f"10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
               "country": rng.choice(["US", "DE", "FR"]), "created_ms": 1735725600123 + i * 250,
               "device": {"os": rng.choice(["iOS", "Android"]), "model": "X"}, "note": None,
               "comment": "it's a \"quoted\" value; DROP TABLE x; --"} for i in range(200)]
    theirs = {d["name"]: d["type"] for d in clickhouse_describe(ch, events)}
    ours = types_of(infer_schema(events))
    differences = {
        "session_id": ("UUID", "String"),
        "client_ip": ("IPv4", "String"),
        "country": ("LowCardinality(String)", "String"),
        "created_ms": ("DateTime64(3, 'UTC')", "Int64"),
    }
    for name, (helios, clickhouse) in differences.items():
        assert ours[name] == helios
        assert theirs[name] in (clickhouse, f"Nullable({clickhouse})"), (name, theirs[name])
    assert theirs["device"].startswith(("Tuple", "Nullable(Tuple", "JSON", "Object"))  # one opaque column
    assert ours["device_os"] == "LowCardinality(String)" and ours["device_model"] == "LowCardinality(String)"
    assert theirs["note"] == "Nullable(String)" and ours["note"] == "Nullable(String)"
    assert ours["comment"] == "LowCardinality(String)" and theirs["comment"] in ("String", "Nullable(String)")
    # Helios marks only what was missing as Nullable; ClickHouse makes everything Nullable.
    assert sum(t.startswith("Nullable") for t in ours.values()) == 1
    assert all(t.startswith("Nullable") for n, t in theirs.items() if n != "device")


@pytest.mark.parametrize("make", [web_analytics, logs])
def test_inference_is_fast_enough_to_be_interactive(make):
    # No wall-clock assertion (see bench/infer.py); this only proves 10k events run through.
    events = make(200) * 50
    assert infer_schema(events).sample_size == 10_000
