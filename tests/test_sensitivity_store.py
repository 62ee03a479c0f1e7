"""The channel-sensitivity pass kept in the cache: measured once per model and budget, read back
after, measured again when its entry is damaged; and the per-key lock that keeps two processes
from computing (or building) the same cache entry at once."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from pocketbench.atomic import exclusive, lock_beside
from pocketbench.compress.context import Context
from pocketbench.compress.prune import prune_channels
from pocketbench.compress.recipe import ChannelPrune
from pocketbench.compress.sensitivity_store import FORMAT, entry_key, entry_path, stored_sensitivity
from pocketbench.models.registry import resolve
from pocketbench.progress import Reporter


@pytest.fixture(scope="module")
def digits():
    return resolve("digits_cnn").load()  # trained weights from the session's cache, before it is swapped


def _prune(bundle, step):
    ctx = Context(bundle, Reporter())
    prune_channels(copy.deepcopy(bundle.module).eval(), step, ctx)
    return ctx.stats


def test_the_pass_is_read_back_and_a_damaged_entry_is_measured_again(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_CACHE", str(tmp_path))
    step = ChannelPrune(ratio=0.5, allocation="sensitivity")
    first = _prune(digits, step)
    assert first["channel_sensitivity_reused"] is False
    (entry,) = (tmp_path / "sensitivity").glob("*.json")
    written = entry.stat().st_mtime_ns

    again = _prune(digits, step)
    assert again["channel_sensitivity_reused"] is True
    assert again["channel_sensitivity_db"] == first["channel_sensitivity_db"]
    assert again["channel_prune_ratios"] == first["channel_prune_ratios"]
    assert entry.stat().st_mtime_ns == written  # read, not rewritten

    stored = json.loads(entry.read_text())
    for damage in (entry.read_bytes()[:40], json.dumps({**stored, "groups": {"features.3": ["x", 1]}}).encode()):
        entry.write_bytes(damage)
        redone = _prune(digits, step)
        assert redone["channel_sensitivity_reused"] is False
        assert redone["channel_prune_ratios"] == first["channel_prune_ratios"]
        assert json.loads(entry.read_text())["groups"] == stored["groups"]  # whole again

    other = _prune(digits, ChannelPrune(ratio=0.25, allocation="sensitivity"))
    assert other["channel_sensitivity_reused"] is False  # another budget is another pass
    assert len(list((tmp_path / "sensitivity").glob("*.json"))) == 2


def test_a_process_waiting_for_an_entry_reads_what_the_holder_stored(tmp_path, monkeypatch):
    """The holder of an entry's lock computes it; one that waited reads it and computes nothing."""
    monkeypatch.setenv("POCKETBENCH_CACHE", str(tmp_path))
    parts = {"model": "m"}
    path = entry_path(entry_key(parts))
    computed: list[str] = []
    waited = threading.Event()
    outcome = {}

    class Waits(Reporter):
        @contextmanager
        def status(self, description):
            waited.set()
            yield

    def second():
        outcome["result"] = stored_sensitivity(parts, ["a"], lambda: computed.append("b") or {"a": (1.0, 2)}, Waits())

    with exclusive(lock_beside(path)):
        thread = threading.Thread(target=second)
        thread.start()
        assert waited.wait(30)
        # The holder stores the entry (as stored_sensitivity does once it has computed it).
        entry = {"format": FORMAT, "key": entry_key(parts), "made_of": parts, "groups": {"a": [3.5, 7]}}
        path.write_text(json.dumps(entry))
    thread.join(30)
    assert outcome["result"] == ({"a": (3.5, 7)}, True) and computed == []


def test_the_lock_waits_for_another_process_and_names_it(tmp_path):
    lock = tmp_path / ".entry.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pocketbench.atomic import exclusive\n"
         f"with exclusive(__import__('pathlib').Path({str(lock)!r})):\n print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        named = []

        @contextmanager
        def waiting(pid):
            named.append(pid)
            holder.stdin.close()  # the holder finishes; only then may this process go on
            yield

        with exclusive(lock, waiting):
            assert holder.wait(30) == 0
            assert lock.read_text().strip() == str(os.getpid())
        assert named == [str(holder.pid)]
    finally:
        holder.kill()
        holder.wait()
