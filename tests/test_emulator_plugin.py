"""The emulated phone's pytest fixtures reach tests through pocketbench's `pytest11` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points


def test_the_plugin_is_registered_by_the_installed_package():
    (plugin,) = [e for e in entry_points(group="pytest11") if e.dist is not None and e.dist.name == "pocketbench"]
    assert plugin.value == "pocketbench.emulator.fixtures"


def test_its_fixtures_are_served_without_a_conftest_naming_it(request):
    for name in ("phone", "phone_factory", "arm64_phone", "host_adb"):
        assert request.session._fixturemanager.getfixturedefs(name, request.node), name
