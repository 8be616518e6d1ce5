"""plait report: a real run's db rendered to HTML, checked in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

import plait as pl
from plait.monitoring import _summary
from plait.report import load, render, write_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pl.app
def simulate(seed: int) -> int:
    if seed % 5 == 3:
        raise ValueError(f"seed {seed} diverged")
    return seed * 2


@pl.app(retries=1)
def flaky(marker: str) -> str:
    """Fails the first time (it leaves a marker file), works the second."""
    if not os.path.exists(marker):
        Path(marker).touch()
        raise OSError(f"disk hiccup <{marker}>")
    return "ok"


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs on two worker processes sharing a memo: the second is half cached."""
    tmp = tmp_path_factory.mktemp("report")
    db, memo = tmp / "run.db", tmp / "memo.db"
    with pl.Runtime([pl.ProcessExecutor(2)], monitor=db, cache=memo, progress=False) as rt:
        rt.run(pl.gather(*(simulate(s).attempt() for s in range(0, 20, 2))))
    with pl.Runtime([pl.ProcessExecutor(2)], monitor=db, cache=memo, progress=False) as rt:
        rt.run(pl.gather(*(simulate(s).attempt() for s in range(20))))
        assert rt.run(flaky(str(tmp / "marker"))) == "ok"
    return db


def test_the_report_counts_what_the_run_did(run_db: Path) -> None:
    data = load(run_db)
    assert (data.run, data.runs) == (2, 2)
    # Run 1 computed the even seeds; 8 and 18 failed there, so the memo has the other eight.
    ran_before = {s for s in range(0, 20, 2) if s % 5 != 3}
    assert data.states["cached"] == len(ran_before)
    failing = [s for s in range(20) if s % 5 == 3]
    assert data.states["failed"] == len(failing)
    assert data.states["retried"] == 1
    assert data.states["done"] == 20 - len(ran_before) - len(failing) + 1
    by_app = {a.name: a for a in data.apps}
    assert by_app["simulate"].tasks == 20
    assert by_app["flaky"].retried == 1 and by_app["flaky"].done == 1
    assert data.memo_hit_rate == pytest.approx(len(ran_before) / (20 + 1))
    assert all(w.startswith("processes/") for w in data.workers) and len(data.workers) == 2
    assert len(data.bars) == data.states["done"] + data.states["failed"] + data.states["retried"]
    messages = [f.error.splitlines()[-1] for f in data.failures]
    assert sorted(messages[: len(failing)]) == sorted(f"ValueError: seed {s} diverged" for s in failing)
    assert data.failures[-1].state == "retried" and "OSError: disk hiccup" in data.failures[-1].error


def test_failures_show_the_apps_file_and_line_without_plaits_frames(run_db: Path) -> None:
    errors = [f.error for f in load(run_db).failures]
    assert errors and all(f'{__file__}", line' in e for e in errors), errors[0]
    assert not any("<dynamic-code>" in e or "/plait/" in e for e in errors), errors[0]


def test_an_earlier_run_and_bad_paths(run_db: Path, tmp_path: Path) -> None:
    assert load(run_db, run=1).states == {"done": 8, "failed": 2}
    with pytest.raises(ValueError, match="has no run 7"):
        load(run_db, run=7)
    with pytest.raises(ValueError, match="is not a file"):
        load(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite at all" * 100)
    with pytest.raises(ValueError, match="is not a plait monitoring db"):
        load(junk)


def test_a_huge_run_draws_a_sample_of_its_bars(run_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_summary, "MAX_BARS", 5)
    data = load(run_db)
    assert data.bar_step > 1
    assert 0 < len(data.bars) < data.states["done"]
    assert f"drawing 1 in {data.bar_step} tasks" in render(data)


def test_a_killed_run_still_reports_and_gets_its_indexes(run_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "killed.db"
    shutil.copy(run_db, copy)
    db = sqlite3.connect(copy)
    db.execute("DROP INDEX attempts_state")
    db.execute("UPDATE runs SET ended = NULL")
    db.commit()
    db.close()
    page = render(load(copy))
    assert "did not close" in page
    db = sqlite3.connect(copy)
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'attempts_state'").fetchone() == (1,)
    db.close()


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run must apt-get install it before make test")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True,
            timeout=900,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("chromium is not installed and apt-get could not install it here (CI installs it)")


def browse(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def test_chromium_renders_the_page(run_db: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    data = write_report(run_db, page)
    text = page.read_text()
    # Self-contained: no scripts, stylesheets or images fetched from anywhere.
    assert not re.search(r"<script|<link|<img|url\(|https?://(?!www\.w3\.org/2000/svg)", text)

    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    assert "<title>plait run 2</title>" in dom
    assert dom.count('class="bar"') == len(data.bars) > 0
    assert data.memo_hit_rate is not None
    assert f'id="card-memo-hit-rate"><b>{data.memo_hit_rate:.0%}</b>' in dom
    assert re.search(r"<td>.*simulate</td><td>20</td>", dom)
    assert "ValueError: seed 13 diverged" in dom
    assert "OSError: disk hiccup" in dom
    assert "&lt;" in dom and "<marker" not in dom  # error text is escaped, not markup

    shot = tmp_path / "report.png"
    browse(page, tmp_path / "profile2", "--window-size=1320,900", f"--screenshot={shot}")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1320, 900)
    assert len(png) > 20_000  # a blank page compresses to a few kB
