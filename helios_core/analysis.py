"""Analysis jobs (the QueryShield seed): one query over several data owners' uploads, released only as safe
aggregates.

A job is created with the seed's fields — ``analysis_name``, ``query_sql``, ``security_level`` (semi | mal),
``cloud_providers`` and ``schema`` (column → unit) — and the query is checked then, before anyone uploads
(:mod:`helios_core.analysis_check`). Data owners get write-only upload URLs on each provider; on submit the job
service runs the stages ``Submitted → Validating uploads → Loading → Checking the analysis → Running the
analysis → Releasing results → Success | Fail``.

Every owner's rows land in the job's input table in the ``helios_analysis`` database with the owner in a hidden
column. The analysis never sees that column; Helios's wrapper uses it to count owners and rows per output row,
withholds rows below ``min_owners``/``min_rows``, and at ``mal`` clips each owner's contribution, adds Laplace
noise calibrated to one owner's largest possible effect, spends a per-job ε budget and refuses a later query
that differs from an earlier one only by its filters. Results, runs and the job's settings are kept in the
``helios`` database.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from helios_core.analysis_check import (
    HIDDEN_OWNERS,
    HIDDEN_ROWS,
    LEVELS,
    MAL,
    OWNER_COLUMN,
    AnalysisRefused,
    CheckedAnalysis,
    InputTable,
    check_analysis,
    explain_lines,
    parse_ast,
    release_sql,
    unit_type,
)
from helios_core.chtypes import base_type, family, is_numeric
from helios_core.clickhouse import ClickHouse, table_columns
from helios_core.errors import Conflict, HeliosError, QueryError, ValidationError
from helios_core.identifiers import check_identifier, qualified, quote_ident, sanitize_name
from helios_core.metadata import METADATA_DB, next_version
from helios_core.sqlguard import ANALYSIS_DB
from helios_core.users import SYSTEM

SEED_FIELDS = ("analysis_name", "query_sql", "security_level", "cloud_providers", "schema")
DEFAULTS: dict[str, Any] = {"min_owners": 2, "min_rows": 5, "max_rows_per_owner": 100, "epsilon": 1.0,
                            "epsilon_budget": 3.0}
_run_lock = threading.Lock()   # one budget decision at a time

METADATA_TABLES = [
    """CREATE TABLE IF NOT EXISTS helios.analysis_jobs (
        job_id String,
        table_name String,
        query_sql String,
        security_level LowCardinality(String),
        cloud_providers String,
        units String,
        options String,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY job_id""",
    """CREATE TABLE IF NOT EXISTS helios.analysis_runs (
        job_id String,
        seq UInt64,
        at DateTime64(3, 'UTC'),
        query_sql String,
        shape String,
        epsilon Float64,
        outcome LowCardinality(String),
        message String
    ) ENGINE = MergeTree ORDER BY (job_id, seq)""",
    """CREATE TABLE IF NOT EXISTS helios.analysis_results (
        job_id String,
        seq UInt64,
        at DateTime64(3, 'UTC'),
        result String
    ) ENGINE = MergeTree ORDER BY (job_id, seq)""",
]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AnalysisSpec:
    job_id: str
    table_name: str                     # the name the query uses for the job's input
    query_sql: str                      # ClickHouse's canonical text, as checked
    security_level: str
    cloud_providers: list[str]
    units: dict[str, str]               # column → unit, in the declared order
    min_owners: int = DEFAULTS["min_owners"]
    min_rows: int = DEFAULTS["min_rows"]
    max_rows_per_owner: int = DEFAULTS["max_rows_per_owner"]
    epsilon: float = DEFAULTS["epsilon"]
    epsilon_budget: float = DEFAULTS["epsilon_budget"]
    bounds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def mal(self) -> bool:
        return self.security_level == MAL

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("min_owners", "min_rows", "max_rows_per_owner", "epsilon",
                                              "epsilon_budget", "bounds")}

    def thresholds(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min_owners": self.min_owners, "min_rows": self.min_rows}
        if self.mal:
            out.update(max_rows_per_owner=self.max_rows_per_owner, epsilon_per_query=self.epsilon,
                       epsilon_budget=self.epsilon_budget, bounds=self.bounds)
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def is_analysis_spec(spec: dict[str, Any] | None) -> bool:
    """A create-job request in the seed's shape (any of its own fields present)."""
    return any(k in (spec or {}) for k in SEED_FIELDS if k != "schema") or isinstance((spec or {}).get("schema"),
                                                                                      dict)


# ---- the store ---------------------------------------------------------------------------------------------


def _write_spec(ch: ClickHouse, spec: AnalysisSpec) -> None:
    ch.insert_rows("analysis_jobs", [[spec.job_id, spec.table_name, spec.query_sql, spec.security_level,
                                      json.dumps(spec.cloud_providers), json.dumps(spec.units),
                                      json.dumps(spec.options()), next_version()]],
                   ["job_id", "table_name", "query_sql", "security_level", "cloud_providers", "units", "options",
                    "version"], database=METADATA_DB)


def get_spec(ch: ClickHouse, job_id: str, user: Any = None) -> AnalysisSpec:
    """The analysis settings of a job the acting user may see (another's job is not found)."""
    from helios_core.jobs import get_job
    get_job(ch, job_id, user)  # NotFound for an unknown id, or one the user may not see
    rows = ch.internal_query("SELECT * FROM helios.analysis_jobs FINAL WHERE job_id = {id:String}", {"id": job_id})
    if not rows:
        raise ValidationError("This job is an import job, not an analysis job.",
                              "Create an analysis job with analysis_name, query_sql, security_level, "
                              "cloud_providers and schema.")
    r = rows[0]
    return AnalysisSpec(job_id=r["job_id"], table_name=r["table_name"], query_sql=r["query_sql"],
                        security_level=r["security_level"], cloud_providers=json.loads(r["cloud_providers"]),
                        units=json.loads(r["units"]), **json.loads(r["options"]))


def _record_run(ch: ClickHouse, job_id: str, sql: str, shape: str, epsilon: float, outcome: str,
                message: str = "") -> None:
    ch.insert_rows("analysis_runs", [[job_id, next_version(), _now(), sql, shape, float(epsilon), outcome,
                                      message]],
                   ["job_id", "seq", "at", "query_sql", "shape", "epsilon", "outcome", "message"], database=METADATA_DB)


def list_runs(ch: ClickHouse, job_id: str) -> list[dict[str, Any]]:
    return ch.internal_query("SELECT seq, at, query_sql, shape, epsilon, outcome, message FROM helios.analysis_runs "
                             "WHERE job_id = {id:String} ORDER BY seq", {"id": job_id})


def epsilon_spent(ch: ClickHouse, job_id: str) -> float:
    return float(sum(r["epsilon"] for r in list_runs(ch, job_id) if r["outcome"] == "released"))


def get_result(ch: ClickHouse, job_id: str, user: Any = None) -> dict[str, Any]:
    """The latest released result: columns with units, rows, what was withheld and why, thresholds, ε spent."""
    from helios_core.jobs import get_job
    job = get_job(ch, job_id, user)  # the job's owner and admins only
    rows = ch.internal_query("SELECT result FROM helios.analysis_results WHERE job_id = {id:String} "
                             "ORDER BY seq DESC LIMIT 1", {"id": job_id})
    if not rows:
        spec = get_spec(ch, job_id, user)  # refuses an import job
        raise Conflict("No result yet", f"The analysis job is {job.status}"
                       + (f": {job.error}" if job.error else "; results appear after it succeeds."),
                       job_id=spec.job_id)
    return json.loads(rows[0]["result"])


# ---- creating ----------------------------------------------------------------------------------------------


def _number(spec: dict[str, Any], key: str, cast: type, low: float) -> Any:
    value = spec.get(key, DEFAULTS[key])
    try:
        number = cast(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{key} must be a number, not {value!r}.") from exc
    if not number >= low or (isinstance(number, float) and not math.isfinite(number)):
        raise ValidationError(f"{key} must be at least {low}, not {value!r}.")
    return number


def _units(schema: Any) -> dict[str, str]:
    if not isinstance(schema, dict) or not schema:
        raise ValidationError("schema must be an object of column → unit, such as {\"speed\": \"mph\"}.")
    units: dict[str, str] = {}
    for name, unit in schema.items():
        name = str(name).strip()
        problems = check_identifier(name, "column")
        if name.lower().startswith("__helios"):
            problems.append(f"The column name {name!r} is reserved for Helios.")
        if problems:
            raise ValidationError(problems[0], "Rename the column in the schema.", problems=problems)
        units[name] = str(unit if unit is not None else "").strip()
    return units


def _bounds(value: Any, units: dict[str, str]) -> dict[str, list[float]]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("bounds must be an object of column → [low, high].")
    out = {}
    for column, pair in value.items():
        if column not in units:
            raise ValidationError(f"bounds names {column!r}, which is not in the schema.")
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"bounds for {column} must be [low, high] numbers.") from exc
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValidationError(f"bounds for {column} must be finite with low < high.")
        out[column] = [low, high]
    return out


def _table_named(ch: ClickHouse, sql: str) -> str:
    """The bare table name a query reads (the job's table name when the request does not give one)."""
    from helios_core.chat.gate import canonical
    try:
        root = parse_ast(explain_lines(ch, f"EXPLAIN AST {canonical(ch, sql)}"))
    except HeliosError:
        return ""
    names = [n.name for n in root.walk() if n.kind == "TableIdentifier"]
    return names[0] if len(names) == 1 and "." not in names[0] else ""


def validate_analysis_spec(ch: ClickHouse, spec: dict[str, Any], job_id: str) -> tuple[AnalysisSpec, CheckedAnalysis]:
    """The seed's create-job checks: every missing field at once, then invalid values, then the query."""
    from helios_core.cloud_urls import check_providers
    spec = {k: (v.strip() if isinstance(v, str) else v) for k, v in (spec or {}).items()}
    missing = [k for k in SEED_FIELDS if spec.get(k) in (None, "", [], {})]
    if missing:
        raise ValidationError("missing necessary fields", "Give analysis_name, query_sql, security_level (semi or "
                              "mal), cloud_providers (aws, gcp, azure) and schema (column → unit).",
                              missing_fields=missing)
    level = str(spec["security_level"]).lower()
    if level not in LEVELS:
        raise ValidationError(f"security_level must be \"semi\" or \"mal\", not {spec['security_level']!r}.",
                              "semi releases aggregates over enough owners and rows; mal adds clipping, an "
                              "allow-list of functions and noise.")
    providers = check_providers(spec["cloud_providers"])
    units = _units(spec["schema"])
    table_name = str(spec.get("table") or _table_named(ch, str(spec["query_sql"])) or sanitize_name(
        str(spec["analysis_name"])))
    problems = check_identifier(table_name, "table")
    if problems:
        raise ValidationError(problems[0], "Name the job's table in the query with letters, digits and underscores.")
    if table_name in units:
        raise ValidationError(f"The table name {table_name!r} is also a column name; choose another table name.")
    fmt = str(spec.get("format") or "csv").lower()
    from helios_core.jobs import FORMATS, normalize_format
    fmt = normalize_format(fmt)
    if fmt not in FORMATS or fmt == "pg_dump":
        raise ValidationError(f"Owners upload CSV, JSON lines or Parquet, not {spec.get('format')!r}.")
    out = AnalysisSpec(job_id=job_id, table_name=table_name, query_sql="", security_level=level,
                       cloud_providers=providers, units=units,
                       min_owners=_number(spec, "min_owners", int, 2), min_rows=_number(spec, "min_rows", int, 1),
                       max_rows_per_owner=_number(spec, "max_rows_per_owner", int, 1),
                       epsilon=_number(spec, "epsilon", float, 1e-6),
                       epsilon_budget=_number(spec, "epsilon_budget", float, 1e-6),
                       bounds=_bounds(spec.get("bounds"), units))
    checked = check_analysis(ch, str(spec["query_sql"]), InputTable(table_name, units), level,
                             {k: tuple(v) for k, v in out.bounds.items()})
    out.query_sql = checked.sql
    return out, checked


def create_analysis_job(service: Any, spec: dict[str, Any], user: Any = None):
    """The seed's ``create_job``: checks everything (the query included), then records the job (the acting
    user's)."""
    from helios_core.users import acting
    owner = acting(user).id
    from helios_core.jobs import ANALYSIS, Job, normalize_format, write_job
    from helios_core.schema import ColumnSpec
    job_id = str(uuid.uuid4())
    analysis, _ = validate_analysis_spec(service.ch, spec, job_id)
    fmt = normalize_format(spec.get("format") or "csv")
    bucket = str(spec.get("bucket") or service.bucket)
    if "aws" in analysis.cloud_providers:
        service.ensure_bucket(bucket)
    job = Job(id=job_id, name=str(spec["analysis_name"]).strip(), format=fmt, target=ANALYSIS, database=ANALYSIS_DB,
              table=f"{analysis.table_name}_{job_id.replace('-', '')[:8]}", bucket=bucket, created_at=_now(),
              schema=[ColumnSpec(name=c, type=unit_type(u), json_path=c) for c, u in analysis.units.items()],
              owner=owner)
    _write_spec(service.ch, analysis)
    write_job(service.ch, job)
    return job


def check_sql(ch: ClickHouse, job_id: str, sql: str, user: Any = None) -> dict[str, Any]:
    """The verdict on an analysis for a job, without running it (the page's live check)."""
    spec = get_spec(ch, job_id, user)
    try:
        checked = check_analysis(ch, sql, _input_table(ch, spec, job_id), spec.security_level,
                                 {k: tuple(v) for k, v in spec.bounds.items()})
    except ValidationError as exc:
        return {"ok": False, "rule": exc.rule or "invalid", "message": exc.message}
    return {"ok": True, "sql": checked.sql, "outputs": [o.to_json() for o in checked.outputs]}


def preview_check(ch: ClickHouse, spec: dict[str, Any]) -> dict[str, Any]:
    """The verdict on a draft job's query (the create form's live check): the SQL rules only."""
    try:
        level = str(spec.get("security_level") or "semi").lower()
        units = _units(spec.get("schema"))
        name = str(spec.get("table") or _table_named(ch, str(spec.get("query_sql") or "")) or "")
        if not name:
            return {"ok": False, "rule": "other_table", "message": "The query must read one table, named without a "
                                                                   "database: that name becomes the job's table."}
        checked = check_analysis(ch, str(spec.get("query_sql") or ""), InputTable(name, units), level,
                                 {k: tuple(v) for k, v in _bounds(spec.get("bounds"), units).items()})
    except ValidationError as exc:
        return {"ok": False, "rule": exc.rule or "invalid", "message": exc.message}
    return {"ok": True, "table": name, "sql": checked.sql, "outputs": [o.to_json() for o in checked.outputs]}


def _input_table(ch: ClickHouse, spec: AnalysisSpec, job_id: str) -> InputTable:
    """The input as loaded (real types) when the table exists, else the declared units' assumed types."""
    from helios_core.jobs import get_job
    from helios_core.users import SYSTEM
    job = get_job(ch, job_id, SYSTEM)  # callers checked the acting user
    rows = table_columns(ch, job.database, job.table) if _exists(ch, job.database, job.table) else []
    if not rows:
        return InputTable(spec.table_name, spec.units)
    types = {r["name"]: r["type"] for r in rows}
    return InputTable(spec.table_name, spec.units, types, qualified(job.database, job.table))


def _exists(ch: ClickHouse, database: str, table: str) -> bool:
    from helios_core.clickhouse import table_exists
    return table_exists(ch, database, table)


# ---- upload URLs -------------------------------------------------------------------------------------------


def owner_urls(service: Any, job: Any, keys: list[str], expires_in: int) -> list[str]:
    """One fresh write-only URL per configured provider for each key (the seed's ``presigned_urls``)."""
    from helios_core.cloud_urls import other_cloud_urls
    spec = get_spec(service.ch, job.id, SYSTEM)  # register_owner checked the acting user
    urls: list[str] = []
    for key in keys:
        if "aws" in spec.cloud_providers:
            with service._aws("s3:PutObject"):
                urls.append(service.s3().generate_presigned_url(
                    "put_object", Params={"Bucket": job.bucket, "Key": key}, ExpiresIn=int(expires_in),
                    HttpMethod="PUT"))
        urls += other_cloud_urls([p for p in spec.cloud_providers if p != "aws"], key, expires_in)
    return urls


# ---- running: the stages after Submitted -------------------------------------------------------------------


def run_analysis(service: Any, job_id: str, rng: np.random.Generator | None = None) -> None:
    """Run a submitted analysis job through its stages (the job service's runner calls this)."""
    from helios_core import jobs
    progress = service.progress[job_id] = jobs.Progress()
    stage = jobs.SUBMITTED

    def enter(name: str, message: str = "") -> None:
        nonlocal stage
        stage = progress.stage = name
        jobs.add_stage(service.ch, job_id, name, message)

    try:  # JobService.run marks the job running around this call
        job = jobs.get_job(service.ch, job_id, SYSTEM)
        spec = get_spec(service.ch, job_id, SYSTEM)
        enter(jobs.VALIDATING)
        with tempfile.TemporaryDirectory(prefix="helios-analysis-") as tmp:
            files, types = _validate_uploads(service, job, spec, Path(tmp))
            enter(jobs.LOADING, f"{len(files)} file(s) from {len({u.owner for u, _ in files})} data owner(s).")
            job.result = {"files": _load(service, job, spec, files, types, progress)}
            jobs.write_job(service.ch, job)
        enter(jobs.CHECKING)
        table = _input_table(service.ch, spec, job_id)
        checked = check_analysis(service.ch, spec.query_sql, table, spec.security_level,
                                 {k: tuple(v) for k, v in spec.bounds.items()})
        enter(jobs.RUNNING)
        with _run_lock:
            _spend_or_refuse(service.ch, spec, checked)
            frame = _run(service.ch, spec, checked, table)
            enter(jobs.RELEASING)
            result = release(spec, checked, frame, rng or np.random.default_rng(),
                             spent=epsilon_spent(service.ch, job_id))
            _store(service.ch, spec, checked, result)
        enter(jobs.SUCCESS, result["summary"])
    except HeliosError as exc:
        progress.stage = jobs.FAIL
        jobs.add_stage(service.ch, job_id, jobs.FAIL, f"Failed. Last status is {stage}. {exc}")
    except Exception as exc:  # noqa: BLE001 - a job must end in Fail, whatever went wrong
        progress.stage = jobs.FAIL
        jobs.add_stage(service.ch, job_id, jobs.FAIL, f"Failed. Last status is {stage}. Unexpected "
                                                f"{type(exc).__name__}: {str(exc)[:500]}")


def run_query(service: Any, job_id: str, sql: str, rng: np.random.Generator | None = None,
              user: Any = None) -> dict[str, Any]:
    """Another analysis over a finished job's loaded data, under the same rules (and the same ε budget);
    it spends the job's budget, so only its owner or an admin runs one."""
    from helios_core import jobs
    job = jobs.job_for_change(service.ch, job_id, user)
    spec = get_spec(service.ch, job_id, SYSTEM)
    if job.status != jobs.SUCCESS:
        raise Conflict("The job's data is not loaded", f"Another analysis can run once the job succeeded; it is "
                                                       f"{job.status}.", job_id=job_id)
    table = _input_table(service.ch, spec, job_id)
    checked = check_analysis(service.ch, sql, table, spec.security_level,
                             {k: tuple(v) for k, v in spec.bounds.items()})
    with _run_lock:
        _spend_or_refuse(service.ch, spec, checked)
        frame = _run(service.ch, spec, checked, table)
        result = release(spec, checked, frame, rng or np.random.default_rng(),
                         spent=epsilon_spent(service.ch, job_id))
        _store(service.ch, spec, checked, result)
    return result


def _spend_or_refuse(ch: ClickHouse, spec: AnalysisSpec, checked: CheckedAnalysis) -> None:
    """At mal: refuse a query that differs from an earlier one only by filters, and one the budget cannot pay."""
    if not spec.mal:
        return
    runs = [r for r in list_runs(ch, spec.job_id) if r["outcome"] == "released"]
    for r in runs:
        if r["shape"] == checked.shape and r["query_sql"] != checked.sql:
            _record_run(ch, spec.job_id, checked.sql, checked.shape, 0.0, "refused", "differencing")
            raise AnalysisRefused("differencing", "This analysis differs from one already run on this job only by "
                                                  "its filters (WHERE, HAVING, ORDER BY or LIMIT). Comparing the two "
                                                  "results could isolate a few people's rows, so it is refused.",
                                  "Ask a different question, or create a new job.")
    spent = sum(r["epsilon"] for r in runs)
    if spent + spec.epsilon > spec.epsilon_budget + 1e-9:
        _record_run(ch, spec.job_id, checked.sql, checked.shape, 0.0, "refused", "budget")
        raise AnalysisRefused("budget", f"The job's privacy budget is spent: ε {spent:g} of {spec.epsilon_budget:g} "
                                        f"used, and each analysis costs {spec.epsilon:g}. More answers would let "
                                        "the noise be averaged away.", "The results already released stay available.")


def _run(ch: ClickHouse, spec: AnalysisSpec, checked: CheckedAnalysis, table: InputTable):
    sql = release_sql(checked, table, rows_per_owner=spec.max_rows_per_owner if spec.mal else None,
                      bounds={k: tuple(v) for k, v in spec.bounds.items()} if spec.mal else None)
    try:
        result = ch.run_guarded(sql)  # Helios's own release SQL (checked analysis inside its wrapper)
    except QueryError as exc:
        # ClickHouse's message can quote a row's value ("Cannot parse 'a1' as UInt8"): only its name is shown.
        raise ValidationError(f"The analysis failed while running ({exc.name or 'ClickHouse error'}).",
                              "ClickHouse's message is withheld because it can quote a data owner's values; "
                              "check conversions and divisions in the analysis.") from exc
    if result.truncated:
        raise ValidationError(f"The analysis has more than {result.limit:,} output rows.",
                              "Group by fewer or coarser columns, or add LIMIT.")
    return result.frame


def _store(ch: ClickHouse, spec: AnalysisSpec, checked: CheckedAnalysis, result: dict[str, Any]) -> None:
    epsilon = result.get("epsilon_spent_now", 0.0)
    _record_run(ch, spec.job_id, checked.sql, checked.shape, epsilon, "released")
    result["epsilon_spent"] = epsilon_spent(ch, spec.job_id) if spec.mal else None
    ch.insert_rows("analysis_results", [[spec.job_id, next_version(), _now(), json.dumps(result, default=str)]],
                   ["job_id", "seq", "at", "result"], database=METADATA_DB)


# ---- releasing: thresholds, clipping, noise ------------------------------------------------------------------


def sensitivity(kind: str, spec: AnalysisSpec, column: str) -> float:
    """How much one data owner (at most max_rows_per_owner rows, values clipped to bounds) can move a value."""
    k = spec.max_rows_per_owner
    if kind == "count":
        return float(k)
    low, high = spec.bounds[column]
    if kind == "sum":
        return k * max(abs(low), abs(high))
    # avg over a released group (>= min_rows rows): one owner's k rows move it by at most k·(high−low)/min_rows.
    return k * (high - low) / max(spec.min_rows, 1)


def laplace_noise(values: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Values plus Laplace(0, scale) noise: unbiased, so the mean of many draws is the true value."""
    return np.asarray(values, dtype=float) + rng.laplace(0.0, scale, size=len(values))


def release(spec: AnalysisSpec, checked: CheckedAnalysis, frame, rng: np.random.Generator,
            spent: float = 0.0) -> dict[str, Any]:
    """Withhold small groups, add noise at mal, and describe it all for the people whose data it is."""
    keep = (frame[HIDDEN_OWNERS] >= spec.min_owners) & (frame[HIDDEN_ROWS] >= spec.min_rows)
    suppressed = int((~keep).sum())
    shown = frame[keep].drop(columns=[HIDDEN_OWNERS, HIDDEN_ROWS]).reset_index(drop=True)
    names: list[str] = []
    for name in map(str, shown.columns):   # two outputs may share a name (count(), count())
        names.append(name if name not in names else f"{name} ({sum(n.startswith(name) for n in names) + 1})")
    shown.columns = names
    columns = []
    noised = [i for i, o in enumerate(checked.outputs) if o.kind in ("count", "sum", "avg")] if spec.mal else []
    # At mal the number of withheld rows is noised too (one share of ε): an exact count would tell whether a
    # narrowly filtered group exists, one bit per analysis. One owner can move it by max_rows_per_owner.
    eps_each = spec.epsilon / (len(noised) + 1) if spec.mal else 0.0
    if spec.mal:
        noisy = laplace_noise(np.array([suppressed]), spec.max_rows_per_owner / eps_each, rng)[0]
        suppressed = max(0, int(round(noisy)))
    for i, name in enumerate(names):
        out = checked.outputs[i] if i < len(checked.outputs) else None
        info: dict[str, Any] = {"name": name, "unit": out.unit if out else "", "kind": out.kind if out else ""}
        if i in noised and len(shown):
            assert out is not None  # a noised column is one of the checked outputs
            scale = sensitivity(out.kind, spec, out.column) / eps_each
            shown[name] = laplace_noise(shown[name].to_numpy(), scale, rng)
            info["noise_scale"] = scale
        columns.append(info)
    rows = json.loads(shown.to_json(orient="values", date_format="iso")) if len(shown) else []
    explanation = _explain(spec, suppressed, noised, eps_each, columns)
    return {"job_id": spec.job_id, "query_sql": checked.sql, "security_level": spec.security_level,
            "columns": columns, "rows": rows, "suppressed_groups": suppressed, "released_groups": len(rows),
            "suppressed_is_noisy": spec.mal,
            "thresholds": spec.thresholds(), "epsilon_spent_now": spec.epsilon if spec.mal else 0.0,
            "epsilon_budget": spec.epsilon_budget if spec.mal else None, "explanation": explanation,
            "summary": f"Released {len(rows)} row(s); withheld {suppressed}.", "released_at": _now().isoformat()}


def _explain(spec: AnalysisSpec, suppressed: int, noised: list[int], eps_each: float,
             columns: list[dict[str, Any]]) -> list[str]:
    lines = [f"Every row shown combines data from at least {spec.min_owners} data owners and at least "
             f"{spec.min_rows} rows; no one's individual rows are shown."]
    if spec.mal:
        lines.append(f"About {suppressed} result row(s) were withheld (a noisy number, so it cannot reveal whether one "
                     f"small group exists) because fewer than {spec.min_owners} data owners or fewer than "
                     f"{spec.min_rows} rows contributed to them.")
    elif suppressed:
        lines.append(f"{suppressed} result row(s) were withheld because fewer than {spec.min_owners} data owners or "
                     f"fewer than {spec.min_rows} rows contributed to them: showing them could reveal one owner's "
                     "data.")
    if spec.mal:
        lines.append(f"Each data owner counts with at most {spec.max_rows_per_owner} rows, and values are clipped "
                     "to their declared bounds, so no single owner can dominate a result.")
        if noised:
            approx = ", ".join(f"{c['name']} ±{c['noise_scale']:.3g}" for c in columns if "noise_scale" in c)
            lines.append(f"Random noise was added to counts, sums and averages (Laplace, ε {spec.epsilon:g} for this "
                         f"analysis of a budget of {spec.epsilon_budget:g}); typical error: {approx}.")
    return lines


# ---- validating and loading uploads -----------------------------------------------------------------------


def _base(type_name: str) -> str:
    """The type without Nullable/LowCardinality wrappers (the input table re-wraps it in Nullable)."""
    return base_type(type_name)


def _merge(types: list[str]) -> str:
    bases = {_base(t) for t in types}
    if len(bases) == 1:
        base = bases.pop()
    elif all(is_numeric(b) for b in bases):
        base = "Float64"
    else:
        base = "String"
    return base if family(base) in ("array", "map") else f"Nullable({base})"


@dataclass
class CloudUpload:
    owner: str
    key: str
    size: int
    provider: str = "aws"

    @property
    def file(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def cloud_uploads(service: Any, job: Any, spec: AnalysisSpec) -> list[CloudUpload]:
    """Every owner's objects on each of the job's providers; an object uploaded to several clouds (same key)
    is loaded once, from the first provider the job names."""
    from helios_core.cloud_urls import list_uploads
    from helios_core.jobs import list_owners
    by_prefix = {o.key_prefix: o.owner for o in list_owners(service.ch, job.id)}
    found: dict[str, CloudUpload] = {}
    for provider in spec.cloud_providers:
        if provider == "aws":
            objects = [(u.key, u.size) for u in service.uploads(job)]
        else:
            objects = list_uploads(provider, job.prefix)
        for key, size in objects:
            owner = by_prefix.get(key.rsplit("/", 1)[0] + "/")
            if owner is not None and key not in found:   # objects outside an owner's folder are not loaded
                found[key] = CloudUpload(owner, key, size, provider)
    return sorted(found.values(), key=lambda u: (u.owner, u.key))


def _download(service: Any, job: Any, upload: CloudUpload, tmp: Path) -> Path:
    from helios_core.cloud_urls import download_upload
    from helios_core.jobs import Upload
    if upload.provider == "aws":
        return service.download(job, Upload(upload.owner, upload.key, upload.size), tmp)
    path = tmp / hashlib.sha256(f"{upload.provider}:{upload.key}".encode()).hexdigest()[:16]
    download_upload(upload.provider, upload.key, str(path))
    return path


def _validate_uploads(service: Any, job: Any, spec: AnalysisSpec, tmp: Path):
    """Every owner uploaded readable files that carry every declared column; the columns' types from them."""
    from helios_core.jobs import file_fields, infer_file_schema, list_owners
    uploads = cloud_uploads(service, job, spec)
    owners = list_owners(service.ch, job.id)
    if not uploads:
        raise ValidationError("Data validation failed: nothing was uploaded.",
                              "Each registered data owner uploads a file to one of their links.")
    without = sorted({o.owner for o in owners} - {u.owner for u in uploads})
    if without:
        raise ValidationError(f"Data validation failed: no upload from {', '.join(without)}.",
                              "Every registered data owner must upload before the analysis can run.")
    files, problems = [], []
    found: dict[str, list[Any]] = {c: [] for c in spec.units}
    for upload in uploads:
        if upload.size == 0:
            problems.append(f"{upload.owner}/{upload.file} is empty")
            continue
        path = _download(service, job, upload, tmp)
        try:
            fields = file_fields(job.format, path)
            inferred = {c.json_path or c.name: c.type for c in infer_file_schema(job.format, path).columns}
        except (ValueError, UnicodeDecodeError, HeliosError) as exc:
            problems.append(f"{upload.owner}/{upload.file}: {exc}")
            continue
        lacking = [c for c in spec.units if c not in fields]
        if lacking:
            problems.append(f"{upload.owner}/{upload.file} lacks the column(s) {', '.join(lacking)}")
            continue
        for column in spec.units:
            if column in inferred:
                found[column].append(inferred[column])
        files.append((upload, path))
    if problems:
        raise ValidationError("Data validation failed: " + "; ".join(problems[:5]) + ".")
    types = {}
    for column, unit in spec.units.items():
        merged = _merge(found[column]) if found[column] else unit_type(unit)
        if unit_type(unit) == "Nullable(String)":
            merged = "Nullable(String)"   # text units stay text (ids keep leading zeros)
        elif unit_type(unit) == "Nullable(Float64)" and not (is_numeric(merged) or family(merged) == "bool"):
            raise ValidationError(f"Data validation failed: {column} is declared in {unit!r} (a number) but the "
                                  "uploads hold text in it.", "Fix the files or the unit.")
        types[column] = merged
    return files, types


def _load(service: Any, job: Any, spec: AnalysisSpec, files: list, types: dict[str, str], progress: Any) -> list:
    """A fresh input table, every owner's rows with the owner in the hidden column (bad rows quarantined)."""
    from helios_core.jobs import iter_rows
    from helios_core.loading import RowSink
    ch = service.ch
    table = qualified(job.database, job.table)
    ch.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(job.database)}")
    ch.execute(f"DROP TABLE IF EXISTS {table}")   # a resumed run loads again from the uploads
    cols = ",\n".join(f"{quote_ident(c)} {t}" for c, t in types.items())
    ch.execute(f"CREATE TABLE {table} ({cols},\n{quote_ident(OWNER_COLUMN)} LowCardinality(String))\n"
               f"ENGINE = MergeTree ORDER BY {quote_ident(OWNER_COLUMN)}")
    text = {c for c, t in types.items() if "String" in t}
    columns = [*types.items(), (OWNER_COLUMN, "LowCardinality(String)")]
    out = []
    progress.files_total = len(files)
    for upload, path in files:
        progress.file = f"{upload.owner}/{upload.file}"
        sink = RowSink(ch, job.database, job.table, columns, source="import", source_id=job.id,
                       origin=f"{upload.owner}/{upload.file}", batch_rows=service.batch_rows)
        rows = 0
        for n, obj, raw, why in iter_rows(job.format, path):
            rows += 1
            if obj is None:
                from helios_core.loading import QuarantineRow
                sink.reject(QuarantineRow(raw, "decode_error", why, "", n))
                continue
            values = {c: (None if job.format == "csv" and obj.get(c) == "" and c not in text else obj.get(c))
                      for c in types}
            values[OWNER_COLUMN] = upload.owner
            sink.add(values, raw, n)
        sink.flush()
        progress.files_done += 1
        progress.rows += rows
        progress.inserted += sink.counts.inserted
        progress.quarantined += sink.counts.quarantined
        out.append({"owner": upload.owner, "file": upload.file, "rows": rows, "inserted": sink.counts.inserted,
                    "quarantined": sink.counts.quarantined})
    return out


# ---- what the pages and the CLI show ----------------------------------------------------------------------------


def owners_view(service: Any, job: Any, creator: bool) -> list[dict[str, Any]]:
    """Who has uploaded what; loaded row counts only for the job's creator."""
    from helios_core.jobs import list_owners
    uploads = cloud_uploads(service, job, get_spec(service.ch, job.id, SYSTEM))  # the caller got the job
    loaded: dict[str, int] = {}
    for f in job.result.get("files", []):
        loaded[f["owner"]] = loaded.get(f["owner"], 0) + int(f.get("inserted", 0))
    out = []
    for o in list_owners(service.ch, job.id):
        mine = [u for u in uploads if u.owner == o.owner]
        row: dict[str, Any] = {"data owner": o.owner, "uploaded": bool(mine), "files": len(mine),
                               "clouds": ", ".join(sorted({u.provider for u in mine})), "links issued": o.urls_issued}
        if creator:
            row["rows loaded"] = loaded.get(o.owner)
        out.append(row)
    return out


def describe(ch: ClickHouse, job_id: str, user: Any = None) -> dict[str, Any]:
    """The job's analysis settings for display (no secrets are ever part of them)."""
    spec = get_spec(ch, job_id, user)
    spent = epsilon_spent(ch, job_id) if spec.mal else None
    return {**spec.to_json(), "thresholds": spec.thresholds(), "epsilon_spent": spent,
            "runs": len([r for r in list_runs(ch, job_id) if r["outcome"] == "released"])}


__all__ = ["ANALYSIS_DB", "AnalysisSpec", "check_sql", "create_analysis_job", "describe", "epsilon_spent",
           "get_result", "get_spec", "is_analysis_spec", "laplace_noise", "owner_urls", "owners_view", "preview_check",
           "release",
           "run_analysis", "run_query", "sensitivity", "validate_analysis_spec"]
