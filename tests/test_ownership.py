"""Ownership, checked in helios_core: for every record kind (chat, report, job, source, API token), reading,
changing and deleting by someone else (refused), by the owner and by an admin (allowed), and read-only sharing
of reports and chats. Also: old rows belong to the local user, the columns are added idempotently, a caller that
does not say who acts is refused once sign-in is configured, and the HTTP API acts as the token's owner."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from helios_core import sources
from helios_core.chat.store import ChatStore, NewMessage
from helios_core.config import get_settings, load_settings, set_settings
from helios_core.ddl import TableOptions
from helios_core.errors import Conflict, Forbidden, NotFound
from helios_core.jobs import delete_job, get_job, get_job_service, job_status, list_jobs
from helios_core.reports import ReportDefinition, delete_report, get_report, list_reports, save_report, share_report
from helios_core.schema import ColumnSpec
from helios_core.tokens import create_token, list_tokens, revoke_token, verify_token
from helios_core.users import LOCAL, SYSTEM, User, acting, ownership_alters, signed_in_user, user_for

ANN = User("ann@example.com", "Ann")
BOB = User("bob@example.com", "Bob")
CID = User("cid@example.com", "Cid")
ADMIN = User("root@example.com", "Root", is_admin=True)
DB = "own_test"


@pytest.fixture(scope="module")
def table(ch) -> str:
    ch.execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    ch.execute(f"CREATE TABLE IF NOT EXISTS {DB}.events (ts DateTime, kind String) ENGINE = MergeTree ORDER BY ts")
    ch.execute(f"INSERT INTO {DB}.events VALUES ('2024-01-01 10:00:00', 'a'), ('2024-01-02 11:00:00', 'b')")
    return "events"


# ---- chats ------------------------------------------------------------------------------------------------


@pytest.fixture
def anns_chat(ch, table):
    chat = ChatStore(ch, ANN).create("Ann's questions", DB)
    ChatStore(ch, ANN).add_turn(chat.id, [NewMessage("user", "text", "how many events?")])
    return chat


def test_chat_others_cannot_read_change_or_delete_it_nor_learn_it_exists(ch, anns_chat):
    bob = ChatStore(ch, BOB)
    assert anns_chat.id not in {c.id for c in bob.list()}
    with pytest.raises(NotFound) as missing:
        bob.get(anns_chat.id)
    with pytest.raises(NotFound) as unknown:
        bob.get("no-such-chat")
    assert str(missing.value).replace(anns_chat.id, "X") == str(unknown.value).replace("no-such-chat", "X")
    assert bob.messages(anns_chat.id) == [] and bob.last_query(anns_chat.id) is None
    with pytest.raises(NotFound):
        bob.rename(anns_chat.id, "mine now")
    with pytest.raises(NotFound):
        bob.add_turn(anns_chat.id, [NewMessage("user", "text", "hi")])
    with pytest.raises(NotFound):
        bob.share(anns_chat.id, "*")
    with pytest.raises(NotFound):
        bob.delete(anns_chat.id)
    assert ChatStore(ch, ANN).get(anns_chat.id).name == "Ann's questions"
    assert len(ChatStore(ch, ANN).messages(anns_chat.id)) == 1


def test_chat_owner_reads_changes_and_deletes_it(ch, anns_chat):
    ann = ChatStore(ch, ANN)
    assert anns_chat.id in {c.id for c in ann.list()}
    assert ann.get(anns_chat.id).owner == ANN.id
    assert ann.rename(anns_chat.id, "Renamed").name == "Renamed"
    ann.add_turn(anns_chat.id, [NewMessage("user", "text", "and by kind?")])
    assert len(ann.messages(anns_chat.id)) == 2
    ann.delete(anns_chat.id)
    with pytest.raises(NotFound):
        ann.get(anns_chat.id)


def test_chat_admin_reads_changes_and_deletes_anyones(ch, anns_chat):
    admin = ChatStore(ch, ADMIN)
    assert admin.get(anns_chat.id).owner == ANN.id
    assert anns_chat.id not in {c.id for c in admin.list()}          # lists stay personal ...
    assert anns_chat.id in {c.id for c in admin.list(all_users=True)}  # ... unless asked for everyone's
    assert len(admin.messages(anns_chat.id)) == 1
    assert admin.rename(anns_chat.id, "Moderated").name == "Moderated"
    admin.delete(anns_chat.id)
    with pytest.raises(NotFound):
        ChatStore(ch, ANN).get(anns_chat.id)


def test_chat_shared_is_readable_not_changeable(ch, anns_chat):
    ann, bob, cid = ChatStore(ch, ANN), ChatStore(ch, BOB), ChatStore(ch, CID)
    assert bob.list(all_users=True) == bob.list()  # all_users means nothing for a non-admin
    ann.share(anns_chat.id, ["Bob@Example.com"])
    assert ann.get(anns_chat.id).shared_with == [BOB.id]
    assert anns_chat.id in {c.id for c in bob.list()}
    assert bob.get(anns_chat.id).name == "Ann's questions"
    assert len(bob.messages(anns_chat.id)) == 1
    assert not bob.can_change(bob.get(anns_chat.id)) and ann.can_change(ann.get(anns_chat.id))
    for change in (lambda: bob.rename(anns_chat.id, "x"), lambda: bob.delete(anns_chat.id),
                   lambda: bob.share(anns_chat.id, "*"),
                   lambda: bob.add_turn(anns_chat.id, [NewMessage("user", "text", "hi")])):
        with pytest.raises(Forbidden, match="read-only"):
            change()
    with pytest.raises(NotFound):
        cid.get(anns_chat.id)
    ann.share(anns_chat.id, "*")
    assert cid.get(anns_chat.id).id == anns_chat.id
    ann.share(anns_chat.id, [])
    with pytest.raises(NotFound):
        bob.get(anns_chat.id)
    assert len(ann.messages(anns_chat.id)) == 1  # sharing never touched the messages


# ---- reports ----------------------------------------------------------------------------------------------


@pytest.fixture
def anns_report(ch, table):
    return save_report(ch, ReportDefinition(database=DB, table=table, time_column="ts"), "Ann's daily", user=ANN)


def test_report_others_cannot_read_change_or_delete_it(ch, anns_report):
    assert anns_report.owner == ANN.id
    assert anns_report.id not in {r.id for r in list_reports(ch, BOB)}
    with pytest.raises(NotFound):
        get_report(ch, anns_report.id, BOB)
    with pytest.raises(NotFound):
        save_report(ch, anns_report.definition, "Bob's now", anns_report.id, BOB)
    with pytest.raises(NotFound):
        share_report(ch, anns_report.id, "*", BOB)
    with pytest.raises(NotFound):
        delete_report(ch, anns_report.id, BOB)
    assert get_report(ch, anns_report.id, ANN).name == "Ann's daily"


def test_report_owner_reads_changes_and_deletes_it(ch, anns_report):
    assert anns_report.id in {r.id for r in list_reports(ch, ANN)}
    changed = save_report(ch, anns_report.definition, "Ann's renamed", anns_report.id, ANN)
    assert (changed.name, changed.owner) == ("Ann's renamed", ANN.id)
    delete_report(ch, anns_report.id, ANN)
    with pytest.raises(NotFound):
        get_report(ch, anns_report.id, ANN)


def test_report_admin_reads_changes_and_deletes_anyones(ch, anns_report):
    assert get_report(ch, anns_report.id, ADMIN).owner == ANN.id
    assert anns_report.id in {r.id for r in list_reports(ch, ADMIN, all_users=True)}
    changed = save_report(ch, anns_report.definition, "Fixed by admin", anns_report.id, ADMIN)
    assert changed.owner == ANN.id  # an admin's edit keeps the owner
    delete_report(ch, anns_report.id, ADMIN)
    with pytest.raises(NotFound):
        get_report(ch, anns_report.id, ANN)


def test_report_shared_is_readable_not_changeable(ch, anns_report):
    share_report(ch, anns_report.id, "bob@example.com, cid@example.com", ANN)
    for reader in (BOB, CID):
        assert get_report(ch, anns_report.id, reader).name == "Ann's daily"
        assert anns_report.id in {r.id for r in list_reports(ch, reader)}
    with pytest.raises(Forbidden, match="read-only"):
        save_report(ch, anns_report.definition, "Bob's edit", anns_report.id, BOB)
    with pytest.raises(Forbidden):
        share_report(ch, anns_report.id, "*", BOB)
    with pytest.raises(Forbidden):
        delete_report(ch, anns_report.id, BOB)
    share_report(ch, anns_report.id, ["*"], ANN)
    assert get_report(ch, anns_report.id, User("dee@example.com")).id == anns_report.id
    assert get_report(ch, anns_report.id, ANN).shared_with == ["*"]


# ---- jobs -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(ch, aws_conn, table):
    return get_job_service(connection=aws_conn, bucket="helios-ownership-test")


@pytest.fixture
def anns_job(ch, service, table):
    return service.create({"name": "Ann's import", "format": "csv", "target": "existing", "database": DB,
                           "table": table}, ANN)


def test_job_others_cannot_read_or_change_it(ch, service, anns_job):
    assert anns_job.owner == ANN.id
    assert anns_job.id not in {j.id for j in list_jobs(ch, BOB)}
    with pytest.raises(NotFound) as missing:
        get_job(ch, anns_job.id, BOB)
    assert "no job" in str(missing.value).lower() or anns_job.id in str(missing.value)
    with pytest.raises(NotFound):
        job_status(ch, anns_job.id, BOB)
    with pytest.raises(NotFound):
        service.register_owner(anns_job.id, "partner", user=BOB)
    with pytest.raises(NotFound):
        service.upload(anns_job.id, "me", "x.csv", b"ts,kind\n", BOB)
    with pytest.raises(NotFound):
        service.submit(anns_job.id, BOB)
    with pytest.raises(NotFound):
        delete_job(ch, anns_job.id, BOB)
    assert not get_job(ch, anns_job.id, ANN).submitted


def test_job_owner_reads_and_changes_it(ch, service, anns_job):
    assert anns_job.id in {j.id for j in list_jobs(ch, ANN)}
    links = service.register_owner(anns_job.id, "partner", user=ANN)
    assert links["presigned_urls"] and get_job(ch, anns_job.id, ANN).owner == ANN.id
    service.upload(anns_job.id, "partner", "rows.csv", b"ts,kind\n2024-01-03 09:00:00,c\n", ANN)
    assert service.submit(anns_job.id, ANN)["status"] == "success"
    assert service.wait_idle(120)
    status = job_status(ch, anns_job.id, ANN)
    assert status["status"] == "Success", status
    assert get_job(ch, anns_job.id, ANN).owner == ANN.id  # the runner kept the owner


def test_job_admin_reads_changes_and_deletes_anyones(ch, service, anns_job):
    assert get_job(ch, anns_job.id, ADMIN).owner == ANN.id
    assert anns_job.id in {j.id for j in list_jobs(ch, ADMIN, all_users=True)}
    assert anns_job.id not in {j.id for j in list_jobs(ch, ADMIN)}
    assert service.register_owner(anns_job.id, "partner", user=ADMIN)["presigned_urls"]
    delete_job(ch, anns_job.id, ADMIN)
    with pytest.raises(NotFound):
        get_job(ch, anns_job.id, ANN)
    assert anns_job.id not in {j.id for j in list_jobs(ch, ANN)}


def test_job_owner_deletes_it_unless_it_runs(ch, service, anns_job):
    from helios_core.jobs import SUBMITTED, add_stage
    add_stage(ch, anns_job.id, SUBMITTED, "pretend it is queued")
    with pytest.raises(Conflict):
        delete_job(ch, anns_job.id, ANN)
    other = service.create({"name": "Ann's second", "format": "csv", "target": "existing", "database": DB,
                            "table": "events"}, ANN)
    assert delete_job(ch, other.id, ANN).id == other.id
    with pytest.raises(NotFound):
        get_job(ch, other.id, ANN)
    with pytest.raises(NotFound):
        service.submit(other.id, ANN)


# ---- sources: the table is everyone's to read; the settings are the owner's and admins' ----------------


def _source_request(table: str) -> sources.CreateRequest:
    columns = [ColumnSpec(name="ts", type="DateTime64(3, 'UTC')", json_path="ts"),
               ColumnSpec(name="kind", type="LowCardinality(String)", json_path="kind")]
    options = TableOptions(database=DB, table=table, order_by=["ts"], create_database=True)
    return sources.CreateRequest(stream_name="own_stream", stream_arn="arn:aws:kinesis:us-east-1:1:stream/own",
                                 columns=columns, options=options,
                                 connection=sources.Connection(region="us-east-1", sandbox=True))


@pytest.fixture
def anns_source(ch, table):
    result = sources.create_table_and_source(ch, _source_request(f"src_{uuid.uuid4().hex[:8]}"), ANN)
    source = sources.get_source(ch, result.source_id)
    sources.pause_source(ch, source.id, ANN)  # no consumer needed for these tests
    yield source
    try:
        sources.delete_source(ch, source.id, drop_table=True, user=ADMIN)
    except NotFound:
        pass


def test_source_everyone_sees_it_but_others_cannot_change_or_delete_it(ch, anns_source):
    assert sources.get_source(ch, anns_source.id).owner == ANN.id
    assert anns_source.id in {s.id for s in sources.list_sources(ch)}
    rules = {"kind": {"allowed_values": ["a", "b"]}}
    for change in (lambda: sources.resume_source(ch, anns_source.id, BOB),
                   lambda: sources.pause_source(ch, anns_source.id, BOB),
                   lambda: sources.update_rules(ch, anns_source.id, rules, BOB),
                   lambda: sources.delete_source(ch, anns_source.id, user=BOB)):
        with pytest.raises(Forbidden, match="owner"):
            change()
    assert sources.get_source(ch, anns_source.id).status == "paused"


def test_source_owner_changes_and_deletes_it(ch, anns_source):
    changed = sources.update_rules(ch, anns_source.id, {"kind": {"allowed_values": ["a", "b"]}}, ANN)
    assert [c.allowed_values for c in changed.columns if c.name == "kind"] == [["a", "b"]]
    assert changed.owner == ANN.id
    sources.delete_source(ch, anns_source.id, drop_table=True, user=ANN)
    with pytest.raises(NotFound):
        sources.get_source(ch, anns_source.id)


def test_source_admin_changes_and_deletes_anyones(ch, anns_source):
    assert sources.update_rules(ch, anns_source.id, {"kind": {"required": False}}, ADMIN).owner == ANN.id
    sources.delete_source(ch, anns_source.id, drop_table=True, user=ADMIN)
    with pytest.raises(NotFound):
        sources.get_source(ch, anns_source.id)


# ---- API tokens -------------------------------------------------------------------------------------------


def test_token_belongs_to_its_creator_others_cannot_list_or_revoke_it(ch):
    name = f"ann_{uuid.uuid4().hex[:6]}"
    made = create_token(ch, name, user=ANN)
    assert made.record.owner == ANN.id
    assert verify_token(ch, made.token).owner == ANN.id
    assert name not in {t.name for t in list_tokens(ch, user=BOB)}
    for key in (made.record.id, name):
        with pytest.raises(NotFound):
            revoke_token(ch, key, BOB)
    assert verify_token(ch, made.token) is not None
    # Names are per user: Bob may have a token with the same name, and revoking "his" leaves Ann's alone.
    bobs = create_token(ch, name, user=BOB)
    revoke_token(ch, name, BOB)
    assert verify_token(ch, bobs.token) is None
    assert name in {t.name for t in list_tokens(ch, user=ANN)}


def test_token_owner_lists_and_revokes_it(ch):
    name = f"ann_{uuid.uuid4().hex[:6]}"
    made = create_token(ch, name, write=True, user=ANN)
    assert [t.id for t in list_tokens(ch, user=ANN) if t.name == name] == [made.record.id]
    revoke_token(ch, name, ANN)
    assert verify_token(ch, made.token) is None


def test_token_admin_lists_and_revokes_anyones(ch):
    made = create_token(ch, f"ann_{uuid.uuid4().hex[:6]}", user=ANN)
    assert made.record.id in {t.id for t in list_tokens(ch, user=ADMIN, all_users=True)}
    assert made.record.id not in {t.id for t in list_tokens(ch, user=ADMIN)}
    with pytest.raises(NotFound):
        revoke_token(ch, made.record.name, ADMIN)  # a name means the admin's own token ...
    assert revoke_token(ch, made.record.id, ADMIN).owner == ANN.id  # ... an id reaches anyone's
    assert verify_token(ch, made.token) is None


# ---- the HTTP API acts as the token's owner ----------------------------------------------------------------


def test_api_requests_act_as_the_tokens_owner(ch, table):
    from fastapi.testclient import TestClient

    from helios_core.api import create_app

    ann_token = create_token(ch, f"ann_{uuid.uuid4().hex[:6]}", write=True, user=ANN).token
    bob_token = create_token(ch, f"bob_{uuid.uuid4().hex[:6]}", write=True, user=BOB).token
    report = save_report(ch, ReportDefinition(database=DB, table=table, time_column="ts"),
                         f"api_{uuid.uuid4().hex[:6]}", user=ANN)
    with TestClient(create_app()) as client:
        ann = {"Authorization": f"Bearer {ann_token}"}
        bob = {"Authorization": f"Bearer {bob_token}"}
        created = client.post("/api/chats", json={"chat_name": "Ann via API", "database": DB}, headers=ann)
        assert created.status_code == 200, created.text
        chat_id = created.json()["chat_id"]
        assert ChatStore(ch, ANN).get(chat_id).owner == ANN.id
        assert chat_id in {c["chat_id"] for c in client.get("/api/chats", headers=ann).json()}
        assert chat_id not in {c["chat_id"] for c in client.get("/api/chats", headers=bob).json()}
        for method, path in (("get", f"/api/chats/{chat_id}"), ("get", f"/api/chats/{chat_id}/credentials")):
            assert getattr(client, method)(path, headers=bob).status_code == 404
        posted = client.post(f"/api/chats/{chat_id}", json={"content": "how many events?"}, headers=bob)
        assert posted.status_code == 404
        assert client.get("/api/report", params={"report": report.id}, headers=bob).status_code == 404
        assert client.get("/api/report", params={"report": report.id}, headers=ann).status_code == 200
        ChatStore(ch, ANN).share(chat_id, [BOB.id])
        assert client.get(f"/api/chats/{chat_id}", headers=bob).status_code == 200
        posted = client.post(f"/api/chats/{chat_id}", json={"content": "how many events?"}, headers=bob)
        assert posted.status_code == 403 and "read-only" in posted.json()["error"]
        job = client.post("/create_job", json={"name": "API job", "format": "csv", "target": "existing",
                                               "database": DB, "table": table}, headers=ann)
        assert job.status_code == 200, job.text
        job_id = job.json()["job_id"]
        assert get_job(ch, job_id, ANN).owner == ANN.id
        assert client.post("/submit_job", json={"job_id": job_id}, headers=bob).status_code == 404
        assert client.get("/get_status", params={"job_id": job_id}, headers=bob).status_code == 404
        assert client.get("/get_status", params={"job_id": job_id}, headers=ann).status_code == 409  # not submitted


# ---- users, settings, old data ----------------------------------------------------------------------------


def test_admins_come_from_the_settings_and_local_is_the_default(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('admins = ["Root@Example.com"]\n[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n')
    settings = load_settings(env={"HELIOS_DATA_DIR": str(tmp_path)}, cwd=tmp_path, secrets_paths=[secrets])
    assert settings.admins == ("root@example.com",) and settings.sign_in
    assert user_for("ROOT@example.com ", settings=settings).is_admin
    assert not user_for("ann@example.com", settings=settings).is_admin
    env = load_settings(env={"HELIOS_DATA_DIR": str(tmp_path), "HELIOS_ADMINS": "a@x.io, b@x.io"}, cwd=tmp_path,
                        secrets_paths=[])
    assert env.admins == ("a@x.io", "b@x.io") and not env.sign_in
    assert user_for("local") is LOCAL and LOCAL.is_admin
    # An identity provider's account can never become the local admin or Helios itself.
    assert signed_in_user("Ann@Example.com", "Ann", settings=settings) == User("ann@example.com", "Ann")
    for reserved in ("local", " LOCAL ", SYSTEM.id, ""):
        with pytest.raises(Forbidden):
            signed_in_user(reserved, settings=settings)


def test_without_an_acting_user_helios_is_the_local_user_until_sign_in_is_configured(ch, table):
    assert acting(None) is LOCAL
    chat = ChatStore(ch).create("Local chat", DB)
    assert chat.owner == "local"
    before = get_settings()
    set_settings(replace(before, sign_in=True))
    try:
        with pytest.raises(Forbidden, match="Sign in"):
            ChatStore(ch).list()
        with pytest.raises(Forbidden):
            list_reports(ch)
        assert ChatStore(ch, LOCAL).get(chat.id).id == chat.id  # the CLI passes the local user explicitly
    finally:
        set_settings(before)


def test_rows_written_before_ownership_belong_to_the_local_user_and_columns_are_added_once(ch):
    table = f"{DB}.legacy_{uuid.uuid4().hex[:6]}"
    ch.execute(f"CREATE TABLE {table} (id String, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY id")
    ch.execute(f"INSERT INTO {table} VALUES ('old', 1)")
    for _ in range(2):  # every start-up runs them: idempotent
        for alter in ownership_alters(table, shared=True):
            ch.execute(alter)
    rows = ch.internal_query(f"SELECT owner, shared_with FROM {table} FINAL")
    assert rows == [{"owner": "local", "shared_with": []}]
    from helios_core.runtime import ensure_metadata
    ensure_metadata(ch)
    ensure_metadata(ch)
    columns = {r["name"] for r in ch.internal_query(
        "SELECT name FROM system.columns WHERE database = 'helios' AND table = 'chats'")}
    assert {"owner", "shared_with"} <= columns


@pytest.fixture
def sign_in_on():
    """Sign-in configured: any helios_core path that forgot to pass the acting user now fails."""
    before = get_settings()
    set_settings(replace(before, sign_in=True))
    yield
    set_settings(before)


def test_with_sign_in_an_analysis_job_runs_start_to_end_as_its_owner_only(ch, aws_conn, sign_in_on):
    from test_analysis import OWNER_ROWS, QUERY, SCHEMA, csv_bytes, put

    from helios_core.analysis import check_sql, describe, get_result, run_query
    service = get_job_service(connection=aws_conn, bucket="helios-ownership-test")
    job = service.create({"analysis_name": "Ann's traffic", "query_sql": QUERY, "security_level": "semi",
                          "cloud_providers": ["aws"], "schema": SCHEMA}, ANN)
    for owner, rows in OWNER_ROWS.items():
        grant = service.register_owner(job.id, owner, user=ANN)
        assert put(grant["presigned_urls"][0], csv_bytes(rows)) == 200
    with pytest.raises(NotFound):
        service.register_owner(job.id, "intruder", user=BOB)
    service.submit(job.id, ANN)
    assert service.wait_idle(120)
    assert job_status(ch, job.id, ANN)["status"] == "Success", job_status(ch, job.id, ANN)
    assert get_result(ch, job.id, ANN)["rows"]
    assert describe(ch, job.id, ANN)["security_level"] == "semi"
    assert check_sql(ch, job.id, QUERY, ANN)["ok"]
    for read in (lambda: get_result(ch, job.id, BOB), lambda: describe(ch, job.id, BOB),
                 lambda: check_sql(ch, job.id, QUERY, BOB), lambda: run_query(service, job.id, QUERY, user=BOB)):
        with pytest.raises(NotFound):
            read()
    assert get_result(ch, job.id, ADMIN)["rows"]


def test_with_sign_in_a_chat_is_asked_and_answered_as_its_owner(ch, table, sign_in_on):
    from helios_core.chat.assistant import Assistant
    store = ChatStore(ch, ANN)
    chat = store.create("Ann asks", DB)
    answer = Assistant(ch, store).ask("how many events are there", chat)
    assert answer.ok, answer.text
    assert [m.role for m in store.messages(chat.id)][:2] == ["user", "assistant"]
    with pytest.raises(NotFound):
        Assistant(ch, ChatStore(ch, BOB)).ask("how many events are there", ChatStore(ch, ANN).get(chat.id))


def test_home_page_says_single_local_user_without_an_identity_provider(open_page):
    at = open_page("pages/home.py")
    captions = " ".join(c.value for c in at.caption)
    assert "Single local user" in captions
    assert not [b for b in at.button if b.label in ("Sign in", "Sign out")]


def test_cli_acts_as_the_local_user_or_as_user_for_admins_scripts(ch, anns_report, capsys):
    import json

    from helios_core.cli import main as cli_main

    def run(*argv: str) -> tuple[int, object]:
        code = cli_main(list(argv))
        return code, json.loads(capsys.readouterr().out or "null")

    code, listed = run("--user", "ann@example.com", "reports", "list")
    assert code == 0 and anns_report.id in {r["id"] for r in listed}
    code, listed = run("--user", "bob@example.com", "reports", "list")
    assert code == 0 and anns_report.id not in {r["id"] for r in listed}
    assert run("--user", "bob@example.com", "reports", "show", anns_report.id)[0] == 4   # not found
    assert run("reports", "show", anns_report.id)[0] == 0                                # local: an admin
    assert run("--user", "ann@example.com", "reports", "share", anns_report.id, "--with", "bob@example.com")[0] == 0
    assert run("--user", "bob@example.com", "reports", "show", anns_report.id)[0] == 0
    code, payload = run("--user", "bob@example.com", "reports", "delete", anns_report.id)
    assert code == 6 and "read-only" in payload["error"]                               # shared: not changeable


def test_pages_share_a_chat_and_a_report_read_only(open_page, ch, table):
    chat = ChatStore(ch).create(f"Local shared {uuid.uuid4().hex[:6]}", DB)
    at = open_page("pages/chat.py")
    at.sidebar.radio(key="chat_pick").set_value(chat.id).run()
    at.text_input(key=f"chat_share_with_{chat.id}").set_value("bob@example.com").run()
    at.button(key="chat_share").click().run()
    assert not at.exception
    assert ChatStore(ch, BOB).get(chat.id).shared_with == [BOB.id]

    report = save_report(ch, ReportDefinition(database=DB, table=table, time_column="ts"),
                         f"Local report {uuid.uuid4().hex[:6]}")
    at = open_page("pages/reports.py")
    at.selectbox(key="rp_open").set_value(f"Saved: {report.name}").run()
    at.text_input(key=f"rp_share_{report.id}").set_value("*").run()
    at.button(key=f"rp_share_btn_{report.id}").click().run()
    assert not at.exception
    assert get_report(ch, report.id, CID).shared_with == ["*"]
