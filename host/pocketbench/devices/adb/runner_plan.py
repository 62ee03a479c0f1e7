"""Which runner builds `just bench ARGS` needs before it starts: the ABI of every phone the
command line names (or `auto` finds), each matched to its runner choice.

`python -m pocketbench.devices.adb.runner_plan ARGS` prints the just recipes to run, or one line
saying what this computer lacks to build them.
"""

from __future__ import annotations

from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.adb.discover import find_phones, pick_auto
from pocketbench.devices.adb.runner_choice import build_blocker, choose_runner
from pocketbench.devices.select import PHONE_ROUTES
from pocketbench.errors import PocketbenchError


def device_specs(bench_args: list[str]) -> list[str]:
    """The --device/-d values of a `pocketbench bench` command line (auto when none is given)."""
    specs, args = [], iter(bench_args)
    for arg in args:
        if arg in ("--device", "-d"):
            specs.append(next(args, ""))
        elif arg.startswith("--device="):
            specs.append(arg.split("=", 1)[1])
        elif arg.startswith("-d") and len(arg) > 2:
            specs.append(arg[2:])
    return specs or ["auto"]


def phone_abis(specs: list[str]) -> dict[str, str]:
    """The ABI of every phone those specs reach now (phones that do not answer are left to bench)."""
    phones = [s for s in specs if s.startswith(PHONE_ROUTES)]
    if "auto" in specs:
        try:
            found = pick_auto(*find_phones())
        except PocketbenchError:
            found = None  # bench itself says why
        phones += [found.spec] if found else []
    abis = {}
    for spec in phones:
        device = AdbDevice(spec, reconnect_wait_s=0)
        try:
            abis[spec] = device.identity().abi
        except PocketbenchError:
            pass
        finally:
            device.close()
    return abis


def main(argv: list[str]) -> int:
    """For `just bench ARGS`: print the recipes that build what the attached phones need; exit 1
    with one line saying what to install when this computer cannot build it."""
    import sys

    recipes = []
    for spec, abi in phone_abis(device_specs(argv)).items():
        try:
            choice = choose_runner(abi)
        except PocketbenchError as exc:
            print(f"error: {spec}: {exc}", file=sys.stderr)
            return 1
        if choice.built:
            continue
        blocker = build_blocker(choice)
        if blocker:
            print(f"error: {spec} ({abi}): {blocker}", file=sys.stderr)
            return 1
        if choice.recipe and choice.recipe not in recipes:
            recipes.append(choice.recipe)
    print("\n".join(recipes))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
