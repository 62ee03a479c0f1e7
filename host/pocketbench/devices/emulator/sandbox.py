"""The phone's filesystem: Android paths for real commands, without touching the host's /.

A long-lived "holder" process owns a private mount namespace whose root is a tmpfs that
re-binds every top-level host directory (so host-built binaries and the absolute rpaths of
their libraries still resolve) and adds the phone's own /data, /system (getprop, build.prop),
/sdcard and a synthetic, read-only /sys. Each command enters that namespace with nsenter.
The synthetic sysfs files are rewritten atomically by a background thread as the script's
clock advances, so `cat` always sees the value scripted for that moment.
"""

from __future__ import annotations

import contextlib
import os
import platform
import posixpath
import shlex
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

from pocketbench.devices.emulator.sysfs_script import SysfsScript, render, symlinks
from pocketbench.errors import PocketbenchError

# Top-level names the phone provides itself; host entries with these names are hidden.
ANDROID_DIRS = ("data", "system", "sdcard")
HIDDEN = {*ANDROID_DIRS, "sys", "proc", "dev", "vendor", "apex", "storage"}
# Device paths whose backing files live in the phone's root directory (writable via sync
# except /system and /sys, which are read-only on a phone).
OWN_DIRS = {*ANDROID_DIRS, "sys"}
WRITABLE_DIRS = {"data", "sdcard"}

PATH = "/system/bin:/system/xbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

GETPROP = """#!/bin/sh
# getprop of the emulated phone: properties are key=value lines in /system/build.prop.
props=/system/build.prop
if [ $# -eq 0 ]; then
  exec awk '{i = index($0, "=")
    printf "[%s]: [%s]\\n", substr($0, 1, i - 1), substr($0, i + 1)}' "$props"
fi
exec awk -v key="$1" -v def="$2" '
  index($0, key "=") == 1 { print substr($0, length(key) + 2); found = 1; exit }
  END { if (!found) print def }' "$props"
"""

DUMPSYS = r"""#!/bin/sh
# dumpsys of the emulated phone: `battery` and `thermalservice`, read from the synthetic /sys.
# Thermal Status follows the hottest zone: <45 °C none, then 45/50/55/60/65/70 °C steps.
bat=/sys/class/power_supply/battery
case "$1" in
battery)
  case "$(cat $bat/status)" in Charging) st=2 ;; Discharging) st=3 ;; Full) st=5 ;; *) st=4 ;; esac
  usb=false; [ "$(cat /sys/class/power_supply/usb/online)" = 1 ] && usb=true
  echo "Current Battery Service state:"
  echo "  AC powered: false"
  echo "  USB powered: $usb"
  echo "  Wireless powered: false"
  echo "  Charge counter: $(cat $bat/charge_counter)"
  echo "  status: $st"
  echo "  health: 2"
  echo "  present: true"
  echo "  level: $(cat $bat/capacity)"
  echo "  scale: 100"
  echo "  voltage: $(( $(cat $bat/voltage_now) / 1000 ))"
  echo "  temperature: $(cat $bat/temp 2>/dev/null || echo 250)"
  echo "  technology: Li-ion"
  ;;
thermalservice)
  for z in /sys/class/thermal/thermal_zone*; do echo "$(cat "$z/type") $(cat "$z/temp")"; done |
  awk '{ t = $2 / 1000; type = -1
         if ($1 ~ /cpu/) type = 0; else if ($1 ~ /battery/) type = 2; else if ($1 ~ /skin/) type = 3
         if (t > max) max = t
         line[NR] = sprintf("	Temperature{mValue=%.1f, mType=%d, mName=%s, mStatus=0}", t, type, $1) }
       END { s = 0; split("45 50 55 60 65 70", th, " ")
             for (i = 1; i <= 6; i++) if (max >= th[i]) s = i
             print "IsStatusOverride: false"; print "Thermal Status: " s
             print "Cached temperatures:"; for (i = 1; i <= NR; i++) print line[i]
             print "HAL Ready: true"; print "Current temperatures from HAL:"
             for (i = 1; i <= NR; i++) print line[i] }'
  ;;
*) echo "Can't find service: $1" >&2; exit 0 ;;
esac
"""

# Runs in the new mount namespace; every directory it mounts on was made beforehand, so
# the only processes it starts are the mounts themselves.
SETUP = """set -eu
R={root}
mount --bind "$R" "$R"
for name in {host_dirs}; do mount --rbind "/$name" "$R/$name"; done
mount --rbind /proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --bind {state}/sys "$R/sys" && mount -o remount,bind,ro "$R/sys"
mount --bind {state}/system "$R/system" && mount -o remount,bind,ro "$R/system"
mount --bind {state}/data "$R/data"
mount --bind {state}/sdcard "$R/sdcard"
mount --bind {state}/.boot_id "$R/proc/sys/kernel/random/boot_id"
# Binding the host directory that holds this root brought a copy of it along: drop it.
umount -l "$R$R" 2>/dev/null || true
# "ready" comes from inside the chroot: nsenter takes this process's root, so it must be set.
exec chroot "$R" /bin/sh -c 'cd / && echo ready && read -r _'
"""


def default_props(model: str, serial: str) -> dict[str, str]:
    """getprop answers of the emulated phone; the ABI is this host's, whose binaries run."""
    abi = {"x86_64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}.get(platform.machine(), platform.machine())
    return {
        "ro.product.manufacturer": "Google",
        "ro.product.brand": "google",
        "ro.product.model": model,
        "ro.product.name": "shiba",
        "ro.product.device": "shiba",
        "ro.soc.manufacturer": "Google",
        "ro.soc.model": "Tensor G3",
        "ro.board.platform": "zuma",
        "ro.hardware": "shiba",
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.build.type": "userdebug",
        "ro.debuggable": "1",
        "ro.build.fingerprint": "google/shiba/shiba:14/UD1A.230803.041/10808477:userdebug/dev-keys",
        "ro.product.cpu.abi": abi,
        "ro.product.cpu.abilist": abi,
        "ro.serialno": serial,
        "sys.boot_completed": "1",
    }


class Sandbox:
    """The phone's files under `root` and the namespace its commands run in."""

    def __init__(self, root: Path, props: dict[str, str], script: SysfsScript):
        self.root = root.resolve()
        self._props = dict(props)
        self.sysfs = SysfsUpdater(self.root / "sys", script)
        self._holder: subprocess.Popen | None = None
        self._in_userns = False
        self._namespace = ""

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        for sub in ("data/local/tmp", "data/misc/adb", "system/bin", "sys", "sdcard", ".root"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "data/local/tmp").chmod(0o771)
        for name, text in (("getprop", GETPROP), ("dumpsys", DUMPSYS)):
            tool = self.root / "system/bin" / name
            tool.write_text(text)
            tool.chmod(0o755)
        self.set_props({})
        self.sysfs.start()
        self._start_holder()

    def stop(self) -> None:
        self.kill_all()
        self._stop_holder()
        self.sysfs.stop()

    def restart(self) -> None:
        """What a reboot does to processes: all are killed, the namespace is rebuilt."""
        self.kill_all()
        self._stop_holder()
        self._start_holder()

    def _prepare_root(self) -> list[str]:
        """Mount points and symlinks of the phone's / (on disk, inside our own directory);
        returns the host directories to bind into it."""
        new_root = self.root / ".root"
        new_root.mkdir(exist_ok=True)
        host_dirs = []
        for name in sorted(os.listdir("/")):
            source, target = Path("/", name), new_root / name
            if name in HIDDEN:
                continue
            if source.is_symlink():
                if not target.is_symlink():
                    target.symlink_to(os.readlink(source))
            elif source.is_dir():
                target.mkdir(exist_ok=True)
                host_dirs.append(name)
        for name in ("proc", "dev", *sorted(OWN_DIRS)):
            (new_root / name).mkdir(exist_ok=True)
        # A new boot id per (re)boot, as the kernel gives a phone each time it starts.
        (self.root / ".boot_id").write_text(str(uuid.uuid4()) + "\n")
        return host_dirs

    def _start_holder(self) -> None:
        script = SETUP.format(
            root=shlex.quote(str(self.root / ".root")),
            state=shlex.quote(str(self.root)),
            host_dirs=" ".join(shlex.quote(name) for name in self._prepare_root()),
        )
        # As root a mount namespace is enough; without root (or without CAP_SYS_ADMIN, as in
        # an unprivileged container) a user namespace maps us to root inside it.
        attempts = [[], ["--user", "--map-root-user"]] if os.geteuid() == 0 else [["--user", "--map-root-user"]]
        errors = []
        for userns in attempts:
            holder = subprocess.Popen(
                ["unshare", *userns, "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            line = holder.stdout.readline() if holder.stdout else b""
            if line.strip() == b"ready":
                self._holder = holder
                self._in_userns = bool(userns)
                self._namespace = os.readlink(f"/proc/{holder.pid}/ns/mnt")
                return
            holder.kill()
            _, err = holder.communicate()
            errors.append(err.decode(errors="replace").strip() or "no output")
        raise PocketbenchError(
            f"cannot build the emulated phone's mount namespace ({'; '.join(errors)});"
            " it needs root or unprivileged user namespaces (unshare -m / unshare -rm)"
        )

    def _stop_holder(self) -> None:
        if self._holder is None:
            return
        holder, self._holder = self._holder, None
        if holder.stdin:
            holder.stdin.close()  # EOF ends `read`, the namespace goes with it
        try:
            holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        for stream in (holder.stdout, holder.stderr):
            if stream:
                stream.close()

    # -- commands --------------------------------------------------------------------
    def command_argv(self, command: str) -> list[str]:
        """argv that runs `command` with /bin/sh inside the phone, in / (as adbd does)."""
        if self._holder is None:
            raise PocketbenchError("the emulated phone is not running")
        return [
            "nsenter",
            f"--target={self._holder.pid}",
            *(["--user", "--preserve-credentials"] if self._in_userns else []),
            "--mount",
            "--root",
            "--wd",
            "--",
            "/usr/bin/prlimit",
            "--core=0",  # crashes leave no core files behind, as on a phone
            "--",
            "/bin/sh",
            *(["-c", command] if command.strip() else []),  # no command: a shell reading stdin
        ]

    def environment(self, term: str = "") -> dict[str, str]:
        env = {
            "PATH": PATH,
            "HOME": "/",
            "TMPDIR": "/data/local/tmp",
            "ANDROID_DATA": "/data",
            "ANDROID_ROOT": "/system",
            "EXTERNAL_STORAGE": "/sdcard",
            "HOSTNAME": self._props.get("ro.product.device", "localhost"),
            "USER": "root",
            "LOGNAME": "root",
        }
        if term:
            env["TERM"] = term
        return env

    def pids(self) -> list[int]:
        """Every process inside the phone (those started in its mount namespace)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or self._holder is None or int(entry) == self._holder.pid:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") == self._namespace:
                    found.append(int(entry))
            except OSError:
                continue
        return found

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # -- files -----------------------------------------------------------------------
    def host_path(self, device_path: str) -> tuple[Path, bool]:
        """Where a device path's file lives on this host, and whether sync may write it."""
        norm = posixpath.normpath("/" + device_path.lstrip("/"))
        top = norm.split("/")[1] if norm != "/" else ""
        if top in OWN_DIRS:
            return self.root / norm.lstrip("/"), top in WRITABLE_DIRS
        return Path(norm), False

    @property
    def props(self) -> dict[str, str]:
        return dict(self._props)

    def set_props(self, changes: dict[str, str]) -> None:
        """Change what getprop answers (takes effect for the next getprop)."""
        for key, value in changes.items():
            if "\n" in key + value or "=" in key:
                raise ValueError(f"property {key!r} must be one line without '=' in its name")
        self._props.update(changes)
        text = "".join(f"{k}={v}\n" for k, v in sorted(self._props.items()))
        target = self.root / "system/build.prop"
        tmp = target.with_name(".build.prop.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


class SysfsUpdater:
    """Keeps the synthetic /sys files equal to the script at the script's current time."""

    def __init__(self, sys_dir: Path, script: SysfsScript, period_s: float = 0.02):
        self._dir = sys_dir
        self._script = script
        self._period_s = period_s
        self._start = time.monotonic()
        self._pinned: float | None = None
        self._written: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def script(self) -> SysfsScript:
        return self._script

    def now(self) -> float:
        """Seconds on the script's clock (pinned, or since the script was set)."""
        return self._pinned if self._pinned is not None else time.monotonic() - self._start

    def set_script(self, script: SysfsScript) -> None:
        """Replace the script; its clock restarts at 0 (unless pinned)."""
        with self._lock:
            self._script = script
            self._start = time.monotonic()
        self.refresh()

    def pin_time(self, t: float | None) -> None:
        """Freeze the clock at `t` seconds (None: run in real time from where it is)."""
        with self._lock:
            if t is None and self._pinned is not None:
                self._start = time.monotonic() - self._pinned
            self._pinned = t
        self.refresh()

    def start(self) -> None:
        self._stop.clear()
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="emulator-sysfs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.refresh()

    def refresh(self) -> None:
        with self._lock:
            files = render(self._script, self.now())
            links = symlinks(self._script)
            for stale in set(self._written) - set(files):
                (self._dir / stale).unlink(missing_ok=True)
                del self._written[stale]
            for rel, text in files.items():
                if self._written.get(rel) == text:
                    continue
                path = self._dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(text)
                os.replace(tmp, path)
                self._written[rel] = text
            for rel, target in links.items():
                link = self._dir / rel
                if not link.is_symlink():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(target)
