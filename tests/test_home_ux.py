"""Home: counts that agree with "empty" (Helios's own records are not the user's data), and a demo-data
confirmation that stays after the page reruns."""

from __future__ import annotations

from helpers import APPTEST_TIMEOUT
from streamlit.testing.v1 import AppTest

from helios_core.clickhouse import list_databases


def test_counts_leave_out_helios_own_records(app_path, ch, demo):
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception, at.exception
    # Neither Helios's records nor live chats' stand-in databases are the user's data.
    mine = {d: t for d, t in list_databases(ch).items() if d != "helios" and not d.startswith("helios_live_")}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Databases"] == str(len(mine))
    assert metrics["Tables"] == str(sum(len(t) for t in mine.values()))
    assert any("helios" in c.value and "Not counted" in c.value for c in at.caption)


def test_load_demo_confirmation_survives_the_rerun(app_path, ch, demo, monkeypatch):
    import helios_core.clickhouse

    monkeypatch.setattr(helios_core.clickhouse, "is_empty", lambda ch: True)  # show the offer (demo is loaded)
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
    at.button(key="load_demo").click().run()
    assert not at.exception, at.exception
    done = " ".join(s.value for s in at.success)
    assert "Demo data loaded into the `demo` database" in done and "`users` (" in done
    at.run()
    assert "Demo data loaded" in " ".join(s.value for s in at.success)
