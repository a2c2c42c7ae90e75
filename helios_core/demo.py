"""A small, deterministic demo dataset so every page has something to show.

Generated inside ClickHouse from ``numbers()`` with hash-based pseudo-random
values: fast, the same on every machine, with timestamps over the 30 days
before loading (so "last 7 days" questions have answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from helios_core.clickhouse import ClickHouse

DEMO_DB = "demo"

_TABLES = {
    "users": """
        CREATE TABLE demo.users (
            user_id UInt32, signup_date Date, country LowCardinality(String), plan LowCardinality(String),
            age UInt8
        ) ENGINE = MergeTree ORDER BY user_id""",
    "user_activity": """
        CREATE TABLE demo.user_activity (
            event_time DateTime64(3, 'UTC'), user_id UInt32, event_type LowCardinality(String),
            device LowCardinality(String), country LowCardinality(String), ip IPv4, page String,
            session_id UUID, duration_ms UInt32
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY (event_type, event_time)""",
    "purchase_events": """
        CREATE TABLE demo.purchase_events (
            event_time DateTime64(3, 'UTC'), order_id UUID, user_id UInt32, amount Float64,
            currency LowCardinality(String), items Array(String), item_count UInt8,
            payment_method LowCardinality(String), status LowCardinality(String)
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY (currency, event_time)""",
    "captcha_events": """
        CREATE TABLE demo.captcha_events (
            time DateTime64(3, 'UTC'), type LowCardinality(String), correlation_id UUID, site_id UUID
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(time) ORDER BY (site_id, type, time)""",
}

_COUNTRIES = "['US','US','US','GB','DE','FR','IN','BR','CA','JP']"
_H = "cityHash64(number, {salt})"  # pseudo-random, deterministic per row

_FILL = {
    "users": f"""
        INSERT INTO demo.users
        SELECT toUInt32(number + 1),
               toDate('2024-01-01') + toUInt32({_H.format(salt=1)} % 600),
               {_COUNTRIES}[1 + {_H.format(salt=2)} % 10],
               ['free','free','free','pro','pro','enterprise'][1 + {_H.format(salt=3)} % 6],
               toUInt8(18 + {_H.format(salt=4)} % 50)
        FROM numbers(2000)""",
    "user_activity": f"""
        INSERT INTO demo.user_activity
        SELECT toDateTime64({{end:String}}, 3, 'UTC') - toIntervalMillisecond({_H.format(salt=11)} % (30 * 86400000)),
               toUInt32(1 + {_H.format(salt=12)} % 2000),
               ['page_view','page_view','page_view','page_view','click','click','search','login','logout',
                'add_to_cart'][1 + {_H.format(salt=13)} % 10],
               ['desktop','desktop','mobile','mobile','mobile','tablet'][1 + {_H.format(salt=14)} % 6],
               {_COUNTRIES}[1 + {_H.format(salt=15)} % 10],
               toIPv4(toUInt32(167772160 + {_H.format(salt=16)} % 16777216)),
               ['/','/pricing','/docs','/blog','/checkout','/signup','/login','/product'][1 + {_H.format(salt=17)} % 8],
               generateUUIDv4(number),
               toUInt32(50 + {_H.format(salt=18)} % 30000)
        FROM numbers(40000)""",
    "purchase_events": f"""
        INSERT INTO demo.purchase_events
        SELECT toDateTime64({{end:String}}, 3, 'UTC') - toIntervalMillisecond({_H.format(salt=21)} % (30 * 86400000)),
               generateUUIDv4(number + 1000000),
               toUInt32(1 + {_H.format(salt=22)} % 2000),
               round(5 + ({_H.format(salt=23)} % 49500) / 100, 2),
               ['USD','USD','USD','EUR','EUR','GBP'][1 + {_H.format(salt=24)} % 6],
               arrayMap(i -> ['book','shirt','mug','poster','sticker','hat'][1 + cityHash64(number, i) % 6],
                        range(1 + {_H.format(salt=25)} % 4)),
               toUInt8(1 + {_H.format(salt=25)} % 4),
               ['card','card','paypal','apple_pay'][1 + {_H.format(salt=26)} % 4],
               ['completed','completed','completed','completed','refunded','failed'][1 + {_H.format(salt=27)} % 6]
        FROM numbers(8000)""",
    # A serve per procedure; about 70% (varying by site) are followed by a solve 2–60 s later.
    "captcha_events": f"""
        INSERT INTO demo.captcha_events
        WITH toDateTime64({{end:String}}, 3, 'UTC')
               - toIntervalMillisecond({_H.format(salt=31)} % (30 * 86400000)) AS served,
             ['3f1c2a4e-8b7d-4c21-9a6e-0d5b7f3e2a11','7a9e4b2c-1d3f-4e5a-8b6c-2f7e9d1a3b45',
              'c2d4e6f8-0a1b-4c3d-9e5f-7a8b6c4d2e10','e5f7a9b1-c3d5-4e6f-8a0b-1c2d3e4f5a6b']
               [1 + {_H.format(salt=32)} % 4]
             AS site,
             generateUUIDv4(number + 2000000) AS cid,
             ({_H.format(salt=33)} % 100) < (55 + 10 * ({_H.format(salt=32)} % 4)) AS solved,
             arrayJoin(if(solved, [0, 1], [0])) AS step
        SELECT if(step = 0, served, served + toIntervalMillisecond(2000 + {_H.format(salt=34)} % 58000)),
               if(step = 0, 'serve', 'solve'), cid, toUUID(site)
        FROM numbers(12000)""",
}


@dataclass
class DemoLoad:
    database: str
    tables: dict[str, int]

    def to_json(self) -> dict:
        return {"database": self.database, "tables": self.tables, "rows": sum(self.tables.values())}


def demo_loaded(ch: ClickHouse) -> bool:
    rows = ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = {db:String}", {"db": DEMO_DB})
    return rows[0]["n"] >= len(_TABLES)


def load_demo(ch: ClickHouse, replace: bool = False) -> DemoLoad:
    """Create the ``demo`` database; a no-op when it is already complete (unless ``replace``)."""
    if demo_loaded(ch) and not replace:
        return DemoLoad(DEMO_DB, demo_counts(ch))
    ch.execute(f"DROP DATABASE IF EXISTS {DEMO_DB} SYNC")
    ch.execute(f"CREATE DATABASE {DEMO_DB}")
    end = ch.internal_query("SELECT toString(toStartOfHour(now64(3, 'UTC'))) AS end")[0]["end"]
    for name, ddl in _TABLES.items():
        ch.execute(ddl)
        fill = _FILL[name]
        ch.execute(fill, {"end": end} if "{end:" in fill else None)
    return DemoLoad(DEMO_DB, demo_counts(ch))


def demo_counts(ch: ClickHouse) -> dict[str, int]:
    return {name: int(ch.internal_query(f"SELECT count() AS n FROM demo.{name}")[0]["n"]) for name in _TABLES}
