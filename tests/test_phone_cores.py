"""The phone thread and core policy: the performance cores (big and prime clusters, ranked by
cpu_capacity), one thread each, pinned with taskset; --cores and --threads override it. Measured
on an emulated 4 + 3 + 1 phone whose CPUs its taskset maps onto this computer's."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pocketbench.cli import app
from pocketbench.devices.adb import identity as ident
from pocketbench.emulator.faults import process_names
from pocketbench.emulator.persona import host_cpus
from typer.testing import CliRunner

runner = CliRunner()
DATA = Path(__file__).parent / "data"
LAYOUT = (4, 3, 1)  # little 0-3, big 4-6, prime 7


def policy(text: str, choice: str = "big") -> ident.CorePlacement:
    return ident.place_cores(ident.parse_clusters(text), choice)


def test_the_performance_cores_are_every_cluster_but_a_much_slower_one():
    # cpu_capacity as the kernel gives it (1024: the fastest core), Pixel 8-like with 4 + 3 + 1 cores.
    phone = "\n".join(
        [
            "/sys/devices/system/cpu/cpufreq/policy0|0 1 2 3|1704000|256",
            "/sys/devices/system/cpu/cpufreq/policy4|4 5 6|2367000|720",
            "/sys/devices/system/cpu/cpufreq/policy7|7|2911000|1024",
        ]
    )
    assert ident.cluster_names(ident.parse_clusters(phone)) == ["little", "big", "prime"]
    big = policy(phone)
    assert (big.cpus, big.mask, big.names) == ((4, 5, 6, 7), "f0", "big+prime")
    assert big.clusters == "big 4-6 (3×2.37 GHz) + prime 7 (1×2.91 GHz)"
    assert (policy(phone, "prime").cpus, policy(phone, "prime").mask) == ((7,), "80")
    assert policy(phone, "all").mask == "ff"
    # A phone of big cores only (4 × X4 + 4 × A720): no cluster is much slower, so all eight.
    no_little = "p0|0-3|3250000|1024\np4|4-7|2000000|800"
    assert ident.cluster_names(ident.parse_clusters(no_little)) == ["big", "prime"]
    assert policy(no_little).cpus == tuple(range(8))
    # One cluster: every core; no cpufreq at all: nothing to pin.
    assert policy("p0|0-7|2000000").cpus == tuple(range(8)) and policy("").cpus == ()
    with pytest.raises(ValueError, match="cores must be one of prime, big, all"):
        ident.place_cores([], "little")


def test_cluster_lists_are_written_as_the_kernel_writes_them():
    assert ident.format_cpu_list((4, 5, 6, 8)) == "4-6,8" and ident.format_cpu_list((7,)) == "7"


# -- on the emulated 4 + 3 + 1 phone ----------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def x86_64_bundle():
    from tests.runner_support import android_bundle

    return android_bundle("x86_64")  # the behaviour is not ABI-specific: the fast bundle


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))


@pytest.fixture
def eight_core_phone(phone_factory):
    return phone_factory(clusters=LAYOUT)


@contextmanager
def runner_threads(emu) -> Iterator[list[tuple[int, str]]]:
    """(OS threads, allowed CPUs) of the runner process inside the phone, read by this computer
    from /proc while it runs: what the kernel says, not what the runner reports."""
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            for pid in emu.sandbox.pids():
                if "pocket_runner" not in process_names(pid):
                    continue
                try:
                    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
                except (OSError, ValueError):
                    continue
                seen.append((int(status["Threads"]), status["Cpus_allowed_list"].strip()))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join()


def bench(tmp_path: Path, emu, *extra: str, model: str = "digits_cnn", variant: str = "int8", results: str = "results"):
    args = ["bench", "--model", model, "--variants", variant, "--iterations", "3", "--warmup", "1"]
    args += ["--repetitions", "1", "--min-seconds", "0.5", "--device", f"tcp:{emu.address}", *extra]
    with runner_threads(emu) as seen:
        result = runner.invoke(app, [*args, "--results", str(tmp_path / results), "--json"])
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    return row, " ".join(result.stderr.split()), seen


def host_cpus_of(phone_cpus: list[int]) -> str:
    """Where the phone's taskset puts its CPUs on this computer (CPU i → host CPU list[i mod n])."""
    host = host_cpus()
    return ident.format_cpu_list(tuple(sorted({host[c % len(host)] for c in phone_cpus})))


def test_an_8_core_phone_runs_on_its_4_performance_cores_with_4_pinned_threads(eight_core_phone, tmp_path):
    row, shown, seen = bench(tmp_path, eight_core_phone)
    assert row["status"] == "ok"
    assert (row["threads"], row["threads_source"], row["cpu_mask"], row["cores"]) == (
        4,
        "device-policy",
        "f0",
        "big+prime",
    )
    assert row["core_clusters"] == "big 4-6 (3×2.37 GHz) + prime 7 (1×2.91 GHz)"
    assert row["device_cpu_clusters"] == "4×1.70 GHz + 3×2.37 GHz + 1×2.91 GHz"
    # The table states the policy once, with how to change it.
    assert f"threads: 4 on tcp:{eight_core_phone.address}, the device's policy: the performance cores (big 4-6" in shown
    assert "--cores prime|big|all and --threads N change it" in shown
    # The kernel saw the runner pinned to the phone's CPUs 4-7 (as mapped onto this computer).
    assert seen and {cpus for _, cpus in seen} == {host_cpus_of([4, 5, 6, 7])}
    one_row, _, one_seen = bench(tmp_path, eight_core_phone, "--threads", "1", results="one")
    assert (one_row["threads"], one_row["threads_source"], one_row["cpu_mask"]) == (1, "settings", "f0")
    # Three more OS threads with four runtime threads than with one: the runner really runs them.
    # (the most seen at once: a sample taken while the runner exits can catch its pool gone)
    assert max(n for n, _ in seen) - max(n for n, _ in one_seen) == 3, (seen, one_seen)


def test_cores_prime_is_the_single_fastest_core(eight_core_phone, tmp_path):
    row, shown, seen = bench(tmp_path, eight_core_phone, "--cores", "prime")
    assert (row["threads"], row["threads_source"], row["cpu_mask"], row["cores"]) == (1, "device-policy", "80", "prime")
    assert "the device's policy: the fastest cluster (prime 7 (1×2.91 GHz); taskset 80)" in shown
    assert seen and {cpus for _, cpus in seen} == {host_cpus_of([7])}


def test_a_generative_cell_uses_the_same_policy(eight_core_phone, tmp_path):
    """A decoder (a user's factory: the policy, not the model, is under test), fp32 only, a short
    prompt and few decode steps: pinned to the performance cores with one thread per core."""
    decoder = str(Path(__file__).parent / "data" / "tiny_decoder.py")
    row, shown, seen = bench(
        tmp_path, eight_core_phone, "--prompt-tokens", "8", "--decode-tokens", "4", "--energy-window", "0.1",
        model=f"{decoder}:factory", variant="fp32",
    )  # fmt: skip
    assert row["kind"] == "generative" and row["decode_tok_s"] > 0
    assert (row["threads"], row["threads_source"], row["cpu_mask"]) == (4, "device-policy", "f0")
    assert row["cores"] == "big+prime"
    assert f"threads: 4 on tcp:{eight_core_phone.address}, the device's policy: the performance cores (big 4-6" in shown
    # The kernel saw the runner pinned to the phone's CPUs 4-7, with at least its 4 runtime threads.
    assert seen and {cpus for _, cpus in seen} == {host_cpus_of([4, 5, 6, 7])}
    assert max(n for n, _ in seen) >= 4, seen


def test_bad_core_choices_and_layouts_are_one_line(tmp_path):
    from pocketbench.emulator.persona import parse_layout
    from pocketbench.errors import PocketbenchError

    result = runner.invoke(app, ["bench", "-m", "digits_cnn", "-d", "local", "--cores", "little"])
    assert result.exit_code == 1 and "--cores must be one of prime, big, all" in str(result.exception)
    assert parse_layout("4,3,1") == LAYOUT
    with pytest.raises(PocketbenchError, match="give 1 to 3 CPU counts"):
        parse_layout("4,0")
