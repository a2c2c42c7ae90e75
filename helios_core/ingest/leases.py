"""Shard leases in DynamoDB, so several headless workers share the shards of every source (the KCL's model).

One item per (source, shard): its owner, a counter the owner bumps on every renewal, the shard's
checkpoint (committed sequence number and the intent of an insert in flight) and whether the shard is
finished. Every change is a conditional write:

* renew: only the owner, only from the counter it last wrote;
* take: only from the counter this worker last *observed* — a lease whose counter has not moved for
  ``timeout`` seconds (its owner stopped renewing) or that has no owner is taken over;
* checkpoint: only the owner. A worker that lost its lease can therefore never move the checkpoint,
  and the new owner replays an insert that was in flight with the same deduplication token.

A worker also fences itself: when its last successful renewal is older than the timeout it stops
reading the shard, whether or not anyone took the lease yet. Reads go through :meth:`Coordinator.reading`,
which checks the lease at the moment of the read and holds it while the read runs.

Balancing never takes a live lease: a worker short of its share asks the busiest worker for one
(``handoff``), and the owner, at its next renewal, stops reading the shard (waiting for a read in flight)
and only then writes the lease over to the one that asked. So no shard is ever read by two workers at
once: a new owner starts after the old one's lease expired as it believed it (it stopped renewing), or
after it handed the lease over or released it.

Children shards are handed out only after every parent's lease is finished (read to SHARD_END), which
keeps the order of each partition key across a reshard.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from helios_core.ingest.mapping import all_items
from helios_core.ingest.store import Checkpoint

DEFAULT_TABLE = "helios-leases"


class LeaseLost(Exception):
    """This worker no longer owns the lease (another took it over, or it was not renewed in time)."""


@dataclass
class Lease:
    source_id: str
    shard_id: str
    owner: str = ""
    counter: int = 0
    committed_seq: str = ""
    pending_from: str = ""
    pending_seq: str = ""
    finished: bool = False
    parents: list[str] = field(default_factory=list)
    handoff: str = ""          # a worker that asked the owner for this lease (balancing)

    @property
    def key(self) -> str:
        return lease_key(self.source_id, self.shard_id)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.shard_id, self.committed_seq, self.pending_seq, self.pending_from, self.finished)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Lease:
        return cls(source_id=str(item["source_id"]), shard_id=str(item["shard_id"]), owner=str(item.get("owner", "")),
                   counter=int(item.get("counter", 0)), committed_seq=str(item.get("committed_seq", "")),
                   pending_from=str(item.get("pending_from", "")), pending_seq=str(item.get("pending_seq", "")),
                   finished=bool(item.get("finished", False)), parents=list(item.get("parents") or []),
                   handoff=str(item.get("handoff", "")))


def lease_key(source_id: str, shard_id: str) -> str:
    return f"{source_id}:{shard_id}"


class LeaseTable:
    """The DynamoDB table of leases (``lease_key`` is the partition key)."""

    def __init__(self, dynamodb_resource: Any, name: str = DEFAULT_TABLE) -> None:
        self.resource = dynamodb_resource
        self.name = name
        self.table = dynamodb_resource.Table(name)
        self.client = dynamodb_resource.meta.client

    def ensure_table(self) -> None:
        try:
            self.client.describe_table(TableName=self.name)
            return
        except self.client.exceptions.ResourceNotFoundException:
            pass
        try:
            self.client.create_table(TableName=self.name, BillingMode="PAY_PER_REQUEST",
                                     AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}],
                                     KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}])
        except self.client.exceptions.ResourceInUseException:
            pass  # another worker created it at the same moment
        self.client.get_waiter("table_exists").wait(TableName=self.name)

    def all(self) -> list[Lease]:
        return [Lease.from_item(i) for i in all_items(self.table.scan, ConsistentRead=True)]

    def delete(self, key: str) -> None:
        self.table.delete_item(Key={"lease_key": key})

    def of_source(self, source_id: str) -> list[Lease]:
        """One source's leases ([] when no worker has created the table yet)."""
        try:
            return [lease for lease in self.all() if lease.source_id == source_id]
        except self.client.exceptions.ResourceNotFoundException:
            return []

    def forget(self, source_id: str) -> int:
        """Delete a deleted source's leases (its checkpoints go with it)."""
        keys = [lease.key for lease in self.of_source(source_id)]
        with self.table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key={"lease_key": key})
        return len(keys)

    def get(self, source_id: str, shard_id: str) -> Lease | None:
        item = self.table.get_item(Key={"lease_key": lease_key(source_id, shard_id)}, ConsistentRead=True).get("Item")
        return Lease.from_item(item) if item else None

    def create(self, source_id: str, shard_id: str, parents: list[str]) -> bool:
        """A new, unowned lease for a shard seen for the first time (False when it exists already)."""
        try:
            self.table.put_item(Item={"lease_key": lease_key(source_id, shard_id), "source_id": source_id,
                                      "shard_id": shard_id, "owner": "", "counter": 0, "committed_seq": "",
                                      "pending_from": "", "pending_seq": "", "finished": False, "parents": parents,
                                      "handoff": ""},
                                ConditionExpression="attribute_not_exists(lease_key)")
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def _update(self, lease: Lease, set_expr: str, values: dict[str, Any], condition: str) -> bool:
        text = set_expr + " " + condition
        names = {k: v for k, v in (("#o", "owner"), ("#c", "counter"), ("#h", "handoff"))
                 if k in text}  # DynamoDB refuses unused ones
        values = {k: v for k, v in values.items() if k in text}
        try:
            self.table.update_item(Key={"lease_key": lease.key}, UpdateExpression="SET " + set_expr,
                                   ConditionExpression=condition, ExpressionAttributeValues=values,
                                   ExpressionAttributeNames=names)
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def take(self, lease: Lease, worker: str) -> bool:
        """Take a lease seen at ``lease.counter`` (unowned, its owner stopped renewing, or handed to us)."""
        ok = self._update(lease, "#o = :me, #c = :next, #h = :none",
                          {":me": worker, ":seen": lease.counter, ":next": lease.counter + 1, ":none": ""},
                          "#c = :seen")
        if ok:
            lease.owner, lease.counter, lease.handoff = worker, lease.counter + 1, ""
        return ok

    def renew(self, lease: Lease, worker: str) -> bool:
        ok = self._update(lease, "#c = :next", {":me": worker, ":seen": lease.counter, ":next": lease.counter + 1},
                          "#o = :me AND #c = :seen")
        if ok:
            lease.counter += 1
        return ok

    def release(self, lease: Lease, worker: str) -> bool:
        """Give a lease back (a clean shutdown): others take it at once instead of waiting for the timeout."""
        return self._update(lease, "#o = :none, #c = :next, #h = :none",
                            {":me": worker, ":none": "", ":next": lease.counter + 1}, "#o = :me")

    def request_handoff(self, lease: Lease, worker: str) -> bool:
        """Ask ``lease.owner`` to hand the lease over to ``worker`` (the owner keeps reading until it does)."""
        return self._update(lease, "#h = :me", {":me": worker, ":owner": lease.owner}, "#o = :owner")

    def hand_over(self, lease: Lease, worker: str, to: str) -> bool:
        """The owner writes the lease over to the worker that asked; that one takes it at its next round."""
        return self._update(lease, "#o = :to, #c = :next, #h = :none",
                            {":me": worker, ":to": to, ":none": "", ":next": lease.counter + 1}, "#o = :me")

    def save_checkpoint(self, source_id: str, worker: str, cp: Checkpoint) -> None:
        """Only the owner moves a shard's checkpoint; anyone else gets :class:`LeaseLost`."""
        lease = Lease(source_id, cp.shard_id)
        ok = self._update(lease, "committed_seq = :c, pending_from = :pf, pending_seq = :ps, finished = :f",
                          {":me": worker, ":c": cp.committed_seq, ":pf": cp.pending_from, ":ps": cp.pending_seq,
                           ":f": bool(cp.finished)}, "#o = :me")
        if not ok:
            raise LeaseLost(f"{lease.key} is no longer held by {worker}")


class LeaseCheckpoints:
    """A consumer's checkpoint store backed by the leases (same interface as ``CheckpointStore``)."""

    def __init__(self, table: LeaseTable, source_id: str, worker: str, still_held: Callable[[str], bool]) -> None:
        self.table = table
        self.source_id = source_id
        self.worker = worker
        self.still_held = still_held

    def load(self) -> dict[str, Checkpoint]:
        return {lease.shard_id: lease.checkpoint() for lease in self.table.all() if lease.source_id == self.source_id}

    def load_one(self, shard_id: str) -> Checkpoint | None:
        lease = self.table.get(self.source_id, shard_id)
        return lease.checkpoint() if lease else None

    def save(self, cp: Checkpoint) -> None:
        if not self.still_held(cp.shard_id):  # fenced: not renewed in time, even if nobody took it yet
            raise LeaseLost(f"{lease_key(self.source_id, cp.shard_id)} expired for {self.worker}")
        self.table.save_checkpoint(self.source_id, self.worker, cp)


@dataclass
class _Seen:
    counter: int
    since: float


@dataclass
class _Held:
    lease: Lease
    renewed: float     # when last renewed or taken (this worker's clock, taken *before* the write)
    taken: float       # when this worker took it


@dataclass(frozen=True)
class HeldLease:
    """What a worker believes of a lease it reads under: the counter, since when, and until when it holds it."""

    key: str
    counter: int
    taken: float
    expires: float


class Coordinator:
    """One worker's view of the leases: renews its own, takes expired ones, balances with the others.

    ``shards_of`` returns, per source id, the stream's shards as ``(shard_id, parent ids)``; new shards
    get a lease. Call :meth:`tick` every ``timeout / 3`` seconds (``run`` does, in a thread).
    """

    def __init__(self, table: LeaseTable, worker: str, shards_of: Callable[[], dict[str, list[tuple[str, list[str]]]]],
                 timeout: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.worker = worker
        self.shards_of = shards_of
        self.timeout = timeout
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._read_locks: dict[str, threading.Lock] = {}   # per lease: held while the shard is read
        self._forgotten: set[str] = set()   # deleted sources: their leases are deleted, never created again
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    # ---- what the consumers ask ----

    def holds(self, source_id: str, shard_id: str) -> bool:
        """True while this worker owns the lease and renewed it within the timeout."""
        return self._valid(lease_key(source_id, shard_id)) is not None

    def held_keys(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def _valid(self, key: str) -> HeldLease | None:
        with self._lock:
            held = self._held.get(key)
        if held is None or self.clock() - held.renewed >= self.timeout:
            return None
        return HeldLease(key, held.lease.counter, held.taken, held.renewed + self.timeout)

    def _read_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._read_locks.setdefault(key, threading.Lock())

    @contextmanager
    def reading(self, source_id: str, shard_id: str) -> Iterator[HeldLease]:
        """Read the shard under its lease: raises :class:`LeaseLost` unless held now, and keeps the lease from
        being handed over or released until the read is done (a read past expiry is fenced by time instead)."""
        key = lease_key(source_id, shard_id)
        with self._read_lock(key):
            held = self._valid(key)
            if held is None:
                raise LeaseLost(f"{key} is not held by {self.worker}")
            yield held

    def _drop(self, key: str) -> None:
        """Stop holding a lease, after any read of its shard in flight."""
        with self._read_lock(key), self._lock:
            self._held.pop(key, None)

    # ---- one round ----

    def forget_sources(self, source_ids: set[str]) -> None:
        """Sources deleted from the mapping: from the next round on, their leases are deleted (a round that
        still saw them may have just re-created some, so every round deletes what it finds)."""
        with self._lock:
            self._forgotten |= source_ids

    def tick(self) -> None:
        with self._lock:
            forgotten = set(self._forgotten)
        wanted = {k: v for k, v in self.shards_of().items() if k not in forgotten}
        for source_id, shards in wanted.items():
            for shard_id, parents in shards:
                self.table.create(source_id, shard_id, parents)
        self._hand_back(set(wanted))
        every = self.table.all()
        for lease in every:
            if lease.source_id in forgotten:
                self.table.delete(lease.key)
        # Only the sources this worker runs: a paused or deleted source's leases are nobody's business.
        leases = [lease for lease in every if lease.source_id in wanted]
        now = self.clock()
        by_key = {lease.key: lease for lease in leases}
        self._renew(by_key, now)
        expired = self._observe(leases, now)
        self._balance(leases, by_key, expired, now)

    def _hand_back(self, sources: set[str]) -> None:
        """Release the leases of sources no longer run (paused, deleted): a resume starts without a timeout."""
        with self._lock:
            gone = [held.lease for held in self._held.values() if held.lease.source_id not in sources]
        self._let_go(gone)

    def _let_go(self, leases: list[Lease]) -> None:
        """Stop holding these leases, each after any read of its shard in flight, and give them back."""
        for lease in leases:
            self._drop(lease.key)
            try:
                self.table.release(lease, self.worker)
            except Exception:  # the lease expires by itself
                pass

    def _renew(self, by_key: dict[str, Lease], now: float) -> None:
        for key in self.held_keys():
            current = by_key.get(key)
            if current is not None and current.owner == self.worker and current.handoff \
                    and current.handoff != self.worker:
                self._drop(key)   # no read of ours runs past this point, so the other may start now
                self.table.hand_over(current, self.worker, current.handoff)
                continue
            ok = current is not None and current.owner == self.worker and self.table.renew(current, self.worker)
            if ok and current is not None:
                with self._lock:
                    held = self._held.get(key)
                    if held is not None:
                        held.lease, held.renewed = current, now
            else:
                self._drop(key)

    def _observe(self, leases: list[Lease], now: float) -> set[str]:
        """Keys whose owner stopped renewing (counter unchanged for the timeout) or that have no owner."""
        expired = set()
        for lease in leases:
            seen = self._seen.get(lease.key)
            if seen is None or seen.counter != lease.counter:
                self._seen[lease.key] = seen = _Seen(lease.counter, now)
            if not lease.owner or (lease.owner != self.worker and now - seen.since >= self.timeout):
                expired.add(lease.key)
            elif lease.owner == self.worker and lease.key not in self.held_keys():
                expired.add(lease.key)  # ours from before a restart: take it back (the counter guards it)
        return expired

    def _ready(self, lease: Lease, by_key: dict[str, Lease]) -> bool:
        """Not finished, and every parent (that Helios knows) finished."""
        if lease.finished:
            return False
        return all(by_key[lease_key(lease.source_id, p)].finished for p in lease.parents
                   if lease_key(lease.source_id, p) in by_key)

    def _balance(self, leases: list[Lease], by_key: dict[str, Lease], expired: set[str], now: float) -> None:
        active = [lease for lease in leases if self._ready(lease, by_key) or lease.key in self.held_keys()]
        if not active:
            return
        workers = {lease.owner for lease in active if lease.owner and lease.key not in expired} | {self.worker}
        target = math.ceil(len(active) / len(workers))
        mine = len(self.held_keys())
        for lease in sorted((x for x in active if x.key in expired), key=lambda x: x.key):
            if mine >= target:
                return
            if self._take(lease, now):
                mine += 1
        if mine >= target:
            return
        # Still short: steal one lease from the busiest worker when it holds two or more than this one.
        counts: dict[str, list[Lease]] = {}
        for lease in active:
            if lease.owner and lease.owner != self.worker and lease.key not in expired:
                counts.setdefault(lease.owner, []).append(lease)
        if not counts:
            return
        busiest = max(counts.values(), key=len)
        if len(busiest) - mine >= 2:  # (2, 2, 0) is not balanced although nobody holds more than its share
            # Ask for it rather than take it: its owner may be reading the shard right now.
            self.table.request_handoff(sorted(busiest, key=lambda x: x.key)[-1], self.worker)

    def _take(self, lease: Lease, now: float) -> bool:
        if not self.table.take(lease, self.worker):
            return False
        with self._lock:
            self._held[lease.key] = _Held(lease, now, now)
        self._seen[lease.key] = _Seen(lease.counter, now)
        return True

    # ---- running ----

    def run(self) -> Coordinator:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:  # AWS away for a moment: leases are fenced by time, try again
                    pass
                self._stop.wait(self.timeout / 3)

        self.thread = threading.Thread(target=loop, name=f"leases-{self.worker}", daemon=True)
        self.thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(self.timeout)
        if release:
            with self._lock:
                held = [h.lease for h in self._held.values()]
            self._let_go(held)
