"""One source's consumer: reads every shard, inserts batches, moves checkpoints.

Per shard the loop is: GetRecords (at most ``5/s``), buffer, and flush when the
buffer holds ``batch_rows`` records or is ``flush_seconds`` old. A flush is:

1. write the intent (``pending_from``..``pending_seq``) to the checkpoint store;
2. insert the valid rows into the table and the rest into the quarantine table,
   each with an ``insert_deduplication_token`` derived from the shard and the
   sequence range;
3. move the checkpoint (``committed_seq``) and clear the intent.

After a crash anywhere in there, the consumer rebuilds exactly the intended
batch (same records, same token) so a batch that had landed is dropped by
ClickHouse's deduplication, and one that had not lands now. Nothing advances
while ClickHouse is unreachable; a batch ClickHouse rejects is bisected and the
rows it refuses go to quarantine.

Resharding: a child shard starts only when its parents are finished (read to
the end of their closed range), which keeps the order per partition key.

Where a shard with no checkpoint starts: TRIM_HORIZON, or ``AT_TIMESTAMP`` at the
source's anchor (:meth:`Source.start_anchor`) for AT_TIMESTAMP and LATEST sources —
LATEST is pinned to a time once, so a restart before the first checkpoint resumes
there instead of skipping what arrived while the consumer was down.

Kinesis faults: ``ProvisionedThroughputExceededException`` (and the other
throttles) back the shard off exponentially, counted in the metrics;
``ExpiredIteratorException`` gets a fresh iterator after the newest record
received (buffered records stay buffered, so nothing is lost or read twice).
Missing or rejected credentials several times in a row stop the consumer with a
message for the user (the manager marks the source failed), instead of failing
every call while the source looks "running".
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from helios_core.aws import CREDENTIAL_CODES, client_error_code, to_aws_error
from helios_core.ingest.batch import MAX_EVENT_BYTES, BatchBuilder, RawRecord
from helios_core.ingest.leases import LeaseLost
from helios_core.ingest.metrics import SourceMetrics
from helios_core.ingest.sink import write_range
from helios_core.ingest.store import Checkpoint, CheckpointStore, records_after, records_up_to, seq_int
from helios_core.sources import Source, latest_anchor
from helios_core.streams import list_shards

log = logging.getLogger("helios.ingest")

MIN_CALL_INTERVAL = 0.2       # Kinesis: 5 GetRecords calls per second per shard
SHARD_REFRESH_SECONDS = 5.0
THROTTLE_MAX_BACKOFF = 10.0
CREDENTIAL_FAILURES_TO_STOP = 3   # in a row, with no successful call between
THROTTLE_CODES = {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
                  "KMSThrottlingException"}
KEYS_HINT = "Open Connect and sign in again; Helios never stores keys. Then resume the source on the Sources page."


class SimulatedCrash(BaseException):
    """Raised by a test's crash hook: the consumer stops on the spot, with no cleanup."""


class CredentialsProblem(Exception):
    """AWS keeps finding no credentials, or rejecting them: only the user can fix it."""


def is_credentials_error(exc: BaseException) -> bool:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    return client_error_code(exc)[0] in CREDENTIAL_CODES


def credentials_message(source: Source, detail: str) -> str:
    """What the user reads on the Sources page (status failed); no secret is in it."""
    auth = source.connection.auth
    if auth == "keys":
        return (f"Needs credentials: this source was connected with access keys, which Helios keeps in memory "
                f"only, so since Helios restarted it has none ({detail}). {KEYS_HINT}")
    if auth in ("profile", "default"):
        return (f"Needs credentials: AWS found no valid credentials for this source ({detail}). Make them "
                f"available to Helios (environment, ~/.aws profile or instance role) or open Connect and sign "
                f"in again, then resume the source on the Sources page.")
    return (f"Needs credentials: AWS found no valid credentials for this source ({detail}). If it was connected "
            f"with access keys: {KEYS_HINT}")


@dataclass
class IngestConfig:
    batch_rows: int = 20_000          # flush at this many records …
    flush_seconds: float = 1.0        # … or when the oldest buffered record waited this long
    get_records_limit: int = 10_000
    max_event_bytes: int = MAX_EVENT_BYTES
    idle_sleep: float = 0.05
    max_backoff: float = 30.0


@dataclass
class ShardState:
    shard_id: str
    parents: list[str]
    ending_seq: str = ""                  # set when the shard is closed
    starting_seq: str = ""
    checkpoint: Checkpoint = field(default_factory=lambda: Checkpoint(""))
    iterator: str | None = None
    from_anchor: bool = False              # the iterator started AT_TIMESTAMP at the source's anchor
    buffer: list[RawRecord] = field(default_factory=list)
    buffer_since: float = 0.0
    last_seen: str = ""                    # newest sequence number received (buffered or committed)
    next_call: float = 0.0
    backoff: float = 0.0
    recover_to: str = ""                   # rebuild the pending batch up to here first
    millis_behind: int = 0
    empty_polls: int = 0
    leased: bool = False                   # headless workers: this worker holds the shard's lease


class InsertRejected(Exception):
    pass


class SourceConsumer:
    """Reads one source's stream into its table until stopped. Runs in its own thread."""

    def __init__(self, source: Source, clickhouse_client_factory: Callable[[], Any],
                 kinesis_client_factory: Callable[[], Any], config: IngestConfig | None = None,
                 metrics: SourceMetrics | None = None,
                 crash_hook: Callable[[str], None] | None = None,
                 on_fatal: Callable[[str], None] | None = None,
                 store_factory: Callable[[Any], Any] | None = None,
                 shard_filter: Callable[[str], bool] | None = None) -> None:
        self.source = source
        self.new_ch = clickhouse_client_factory
        self.new_kinesis = kinesis_client_factory
        self.config = config or IngestConfig()
        self.metrics = metrics or SourceMetrics(source.id)
        self.crash_hook = crash_hook or (lambda point: None)
        self.on_fatal = on_fatal
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.shards: dict[str, ShardState] = {}
        self.crashed = False
        self._last_refresh = 0.0
        self._credential_failures = 0
        # Headless workers: checkpoints live in the shard leases, and only leased shards are read
        # (helios_core.ingest.leases); the in-app consumer reads every shard, checkpoints in ClickHouse.
        self.store_factory = store_factory
        self.shard_filter = shard_filter

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SourceConsumer:
        self.thread = threading.Thread(target=self._run, name=f"ingest-{self.source.id}", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return bool(self.thread and self.thread.is_alive())

    def _run(self) -> None:
        if self.source.start_position == "LATEST" and not self.source.start_timestamp:
            # A source from before anchors existed, run without the manager (which pins it in the
            # source record): pin it for this run at least.
            log.warning("source %s: LATEST without an anchor; pinned in memory to now", self.source.id)
            self.source.start_timestamp = latest_anchor(datetime.now(UTC))
        try:
            self.ch = self.new_ch()
            self.kinesis = self.new_kinesis()
            self.store = self.store_factory(self.ch) if self.store_factory else CheckpointStore(self.ch, self.source.id)
            self.builders: dict[str, BatchBuilder] = {}
            self._loop()
            self._flush_all()  # a clean stop: nothing buffered is left behind
        except SimulatedCrash:
            self.crashed = True
        except CredentialsProblem as exc:
            self.metrics.record_error(str(exc))
            if self.on_fatal:
                self.on_fatal(str(exc))
        except Exception as exc:  # unexpected: record it, never die silently
            log.exception("ingest consumer %s stopped", self.source.id)
            self.metrics.record_error(f"The consumer stopped: {type(exc).__name__}: {exc}")
            if self.on_fatal:
                self.on_fatal(f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.running = False
            try:
                self.ch.close()
            except Exception:
                pass

    # ---- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        self.metrics.running = True
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - self._last_refresh >= SHARD_REFRESH_SECONDS or not self.shards:
                if not self._refresh_shards():
                    self._sleep(1.0)
                    continue
            did_work = False
            for state in list(self.shards.values()):
                if self.stop_event.is_set():
                    break
                if not self._leased(state):
                    continue
                if state.checkpoint.finished or not self._parents_done(state):
                    continue
                if time.monotonic() >= state.next_call:
                    did_work |= self._poll(state)
                if self._due(state):
                    self._flush_with_retry(state)
                    did_work = True
                self._maybe_finish(state)
            self.metrics.millis_behind = max((s.millis_behind for s in self.shards.values()
                                              if not s.checkpoint.finished), default=0)
            if not did_work:
                self._sleep(self.config.idle_sleep)

    def _sleep(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    # ---- shards -----------------------------------------------------------------------------------

    def _refresh_shards(self) -> bool:
        self._last_refresh = time.monotonic()
        try:
            listed = list_shards(self.kinesis, self.source.stream_name)
        except (ClientError, BotoCoreError) as exc:
            self._aws_problem(exc)
            return False
        self._credential_failures = 0
        listed_ids = {s["ShardId"] for s in listed}
        # Checkpoints matter only for shards not seen before: read them then, not on every refresh.
        checkpoints = self.store.load() if listed_ids - self.shards.keys() else {}
        for info in listed:
            shard_id = info["ShardId"]
            rng = info.get("SequenceNumberRange", {})
            state = self.shards.get(shard_id)
            if state is None:
                parents = [p for p in (info.get("ParentShardId"), info.get("AdjacentParentShardId"))
                           if p and p in listed_ids]
                state = ShardState(shard_id, parents, starting_seq=rng.get("StartingSequenceNumber", ""))
                cp = checkpoints.get(shard_id)
                if cp is not None:
                    state.checkpoint = cp
                    state.last_seen = cp.committed_seq
                    if cp.has_pending:
                        state.recover_to = cp.pending_seq
                else:
                    state.checkpoint = Checkpoint(shard_id)
                self.shards[shard_id] = state
            state.ending_seq = rng.get("EndingSequenceNumber", "") or ""
        return True

    def _leased(self, state: ShardState) -> bool:
        """Without leases every shard is ours. With them: start a newly leased shard from its lease's
        checkpoint, and drop what was read (uncommitted) from a shard whose lease is gone."""
        if self.shard_filter is None:
            return True
        held = self.shard_filter(state.shard_id)
        if held and not state.leased:
            cp = self.store.load_one(state.shard_id) or Checkpoint(state.shard_id)
            fresh = ShardState(state.shard_id, state.parents, ending_seq=state.ending_seq,
                               starting_seq=state.starting_seq, checkpoint=cp, last_seen=cp.committed_seq,
                               recover_to=cp.pending_seq if cp.has_pending else "", leased=True)
            state.__dict__.update(fresh.__dict__)  # the loop holds this object: renew it in place
        elif not held and state.leased:
            self._drop_lease(state)
        return held

    def _drop_lease(self, state: ShardState) -> None:
        state.leased = False
        state.buffer, state.iterator, state.recover_to = [], None, ""
        self.metrics.count("leases_lost")

    def _parents_done(self, state: ShardState) -> bool:
        if self.shard_filter is not None:
            return True  # leases: a child's lease is granted only once its parents' leases are finished
        for parent in state.parents:
            p = self.shards.get(parent)
            if p is not None and not p.checkpoint.finished:
                return False
        return True

    def _start_iterator(self, state: ShardState) -> dict[str, Any]:
        cp = state.checkpoint
        if state.recover_to and cp.pending_from:
            return {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": cp.pending_from}
        if state.last_seen:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": state.last_seen}
        parents = [self.shards.get(p) for p in state.parents]
        if any(p is not None and p.checkpoint.committed_seq for p in parents) or \
                any(p is not None and p.last_seen for p in parents):
            return {"ShardIteratorType": "TRIM_HORIZON"}  # the parent was read here: continue from the child's start
        anchor = self.source.start_anchor()
        if anchor is not None:
            state.from_anchor = True
            return {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": anchor}
        return {"ShardIteratorType": "TRIM_HORIZON"}

    def _poll(self, state: ShardState) -> bool:
        """One GetRecords call for the shard; True when records arrived."""
        state.next_call = time.monotonic() + MIN_CALL_INTERVAL
        try:
            if state.iterator is None:
                reply = self.kinesis.get_shard_iterator(StreamName=self.source.stream_name, ShardId=state.shard_id,
                                                        **self._start_iterator(state))
                state.iterator = reply["ShardIterator"]
            reply = self.kinesis.get_records(ShardIterator=state.iterator, Limit=self.config.get_records_limit)
        except LeaseLost:  # headless workers: the lease went between the loop's check and the read
            self._drop_lease(state)
            return False
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ExpiredIteratorException":
                state.iterator = None  # a fresh one after the newest record received (see _start_iterator)
                self.metrics.count("iterator_refreshes")
                return False
            if code in THROTTLE_CODES:
                cap = min(self.config.max_backoff, THROTTLE_MAX_BACKOFF)
                state.backoff = min(max(min(0.5, cap), state.backoff * 2), cap)
                wait = state.backoff * (0.5 + random.random())
                state.next_call = time.monotonic() + wait
                self.metrics.count("throttled", wait)
                return False
            if code == "ResourceNotFoundException" and "Shard" in str(exc):
                state.checkpoint.finished = True  # expired from the stream
                return False
            self._aws_problem(exc)
            state.next_call = time.monotonic() + 2.0
            return False
        except BotoCoreError as exc:
            self._aws_problem(exc)
            state.next_call = time.monotonic() + 2.0
            return False
        state.backoff = 0.0
        self._credential_failures = 0
        state.iterator = reply.get("NextShardIterator")
        state.millis_behind = int(reply.get("MillisBehindLatest", 0) or 0)
        records = reply.get("Records", [])
        if state.iterator is None:
            state.empty_polls = 1_000_000  # the shard ended
        if not records:
            state.empty_polls += 1
            return False
        state.empty_polls = 0
        new = [RawRecord.from_kinesis(r) for r in records]
        new = records_after(new, state.last_seen)  # never take a record twice
        if new:
            if not state.buffer:
                state.buffer_since = time.monotonic()
            state.buffer.extend(new)
            state.last_seen = new[-1].sequence_number
            self.metrics.records_read += len(new)
        return bool(new)

    def _due(self, state: ShardState) -> bool:
        if not state.buffer:
            return False
        if state.recover_to:
            return seq_int(state.buffer[-1].sequence_number) >= seq_int(state.recover_to) or \
                (state.empty_polls >= 3 and state.millis_behind == 0)
        return len(state.buffer) >= self.config.batch_rows or \
            time.monotonic() - state.buffer_since >= self.config.flush_seconds

    def _maybe_finish(self, state: ShardState) -> None:
        """A closed shard read to its end is finished: its children may start."""
        if state.buffer or state.recover_to or state.checkpoint.finished:
            if state.recover_to and not state.buffer and state.empty_polls >= 3 and state.millis_behind == 0:
                state.recover_to = ""  # the intended records are gone from the stream (retention)
            return
        ended = state.empty_polls >= 1_000_000
        if state.ending_seq and state.empty_polls >= 1:
            reached = seq_int(state.last_seen) >= seq_int(state.ending_seq)
            empty_range = seq_int(state.ending_seq) <= seq_int(state.starting_seq) and not state.last_seen
            # Started at the anchor, which lies after everything the closed shard holds (Kinesis then
            # ends the iterator; emulators may keep returning empty pages at the tip instead).
            past_anchor = state.from_anchor and not state.last_seen and state.empty_polls >= 3 and \
                state.millis_behind == 0
            ended = ended or reached or empty_range or past_anchor
        if ended:
            state.checkpoint.finished = True
            try:
                self.store.save(state.checkpoint)
            except LeaseLost:
                state.checkpoint.finished = False
                self._drop_lease(state)
                return
            self._last_refresh = 0.0  # look for its children now

    # ---- flushing ---------------------------------------------------------------------------------

    def _flush_all(self) -> None:
        for state in self.shards.values():
            if state.buffer:
                try:
                    self._flush(state)
                except Exception:
                    return  # ClickHouse is away: the checkpoint did not move, nothing is lost

    def _flush_with_retry(self, state: ShardState) -> None:
        delay = 0.5
        while True:
            try:
                self._flush(state)
                return
            except SimulatedCrash:
                raise
            except LeaseLost:
                self._drop_lease(state)  # the new owner replays the batch in flight, with the same token
                return
            except Exception as exc:
                self.metrics.record_error(f"ClickHouse insert failed, retrying (checkpoint not moved): {exc}")
                if self.stop_event.is_set():
                    raise
                self._sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.config.max_backoff)
                if self.stop_event.is_set():
                    raise

    def _flush(self, state: ShardState) -> None:
        cp = state.checkpoint
        if state.recover_to:
            batch = records_up_to(state.buffer, state.recover_to)
        else:
            batch = state.buffer[: self.config.batch_rows]
        rest = state.buffer[len(batch):]
        if not batch:
            state.recover_to = ""
            return
        builder = self.builders.get(state.shard_id)
        if builder is None:
            builder = self.builders[state.shard_id] = BatchBuilder(self.source.columns, state.shard_id)
        inserted, quarantined = write_range(self.ch, self.store, self.source, builder, state.shard_id, cp, batch,
                                            self.config.max_event_bytes, replay=bool(state.recover_to),
                                            hook=self.crash_hook)
        state.buffer = rest
        state.recover_to = ""
        state.buffer_since = time.monotonic()
        self.metrics.record_batch(inserted, quarantined)

    # ---- errors -----------------------------------------------------------------------------------

    def _aws_problem(self, exc: BaseException) -> None:
        error = to_aws_error(exc) if isinstance(exc, (ClientError, BotoCoreError)) else exc
        self.metrics.record_error(str(error))
        if is_credentials_error(exc) and not self.source.connection.sandbox:
            self._credential_failures += 1
            if self._credential_failures >= CREDENTIAL_FAILURES_TO_STOP:
                raise CredentialsProblem(credentials_message(self.source, getattr(error, "message", str(error))))


