"""The phone's filesystem: Android paths for real commands, without touching the host's /.

A long-lived "holder" process owns a private user and mount namespace whose root is a
tmpfs that re-binds every top-level host directory read-only and without set-user-ID
programs (so host-built binaries and the absolute rpaths of their libraries still resolve,
but nothing on the host can be changed) and adds the phone's own /data, /system (getprop,
build.prop), /sdcard and a synthetic, read-only /sys. Each command enters that namespace
with nsenter and runs as Android's `shell` user (uid 2000, no capabilities, no new
privileges), which may write only /data/local/tmp and /sdcard, as on a phone. The arm64
persona adds a binfmt_misc instance of the namespace's own that runs aarch64 programs with
qemu-user (see persona.py). This is a test tool, not a security boundary.
The synthetic sysfs files are rewritten atomically by a background thread as the script's
clock advances, so `cat` always sees the value scripted for that moment.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from pocketbench.emulator.persona import Persona
from pocketbench.emulator.sysfs_script import SysfsScript, render, symlinks
from pocketbench.errors import PocketbenchError
from pocketbench.runner.process import die_with_parent

# Top-level names the phone provides itself; host entries with these names are hidden.
ANDROID_DIRS = ("data", "system", "sdcard")
HIDDEN = {*ANDROID_DIRS, "sys", "proc", "dev", "vendor", "apex", "storage"}
# Device paths whose backing files live in the phone's root directory (writable via sync
# except /system and /sys, which are read-only on a phone).
OWN_DIRS = {*ANDROID_DIRS, "sys"}
# Where the shell user may create files (sync pushes included), as on a phone.
SHELL_WRITABLE = ("data/local/tmp", "sdcard")
SHELL_UID = 2000  # Android's AID_SHELL
# As root, the phone's shell user is this host uid (outside any login or subordinate-uid
# range), so its files on the host belong to nobody real.
SHELL_HOST_UID = 0x70000000 + SHELL_UID

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

# Runs in the new user and mount namespace once its uid/gid maps are written (the first
# line on stdin says so); every directory it mounts on was made beforehand.
SETUP = """set -eu
read -r _
# Mounting binfmt_misc outside a user namespace of our own would change the whole machine.
[ "$(readlink /proc/self/ns/user)" != {parent_userns} ] || {{ echo "not in a private user namespace" >&2; exit 1; }}
R={root}
mount --bind "$R" "$R"
for name in {host_dirs}; do mount --rbind "/$name" "$R/$name"; done
mount --rbind /proc "$R/proc"
mount --rbind /dev "$R/dev"
[ ! -d "$R/dev/shm" ] || mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m phone-shm "$R/dev/shm"
mount --bind {state}/sys "$R/sys" && mount -o remount,bind,ro "$R/sys"
mount --bind {state}/system "$R/system" && mount -o remount,bind,ro "$R/system"
mount --bind {state}/data "$R/data"
mount --bind {state}/sdcard "$R/sdcard"
mount --bind {state}/.boot_id "$R/proc/sys/kernel/random/boot_id"
# Binding the host directory that holds this root brought a copy of it along: drop it.
umount -l "$R$R" 2>/dev/null || true
# Host folders are read-only in the phone and their set-user-ID programs inert; the flags a
# mount already has (locked in a user namespace) are kept.
for name in {host_dirs}; do
  findmnt -R -n -r -o TARGET,VFS-OPTIONS "$R/$name" | while read -r target opts; do
    keep=""
    for flag in noexec noatime nodiratime strictatime; do
      case ",$opts," in *",$flag,"*) keep="$keep,$flag" ;; esac
    done
    mount -o "remount,bind,ro,nosuid,nodev$keep" "$target"
  done
done
{expose}{persona}
# "ready" comes from inside the chroot: nsenter takes this process's root, so it must be set.
exec chroot "$R" /bin/sh -c 'cd / && echo ready && read -r _'
"""

# The arm64 persona: aarch64 programs run by qemu-user through this namespace's own
# binfmt_misc; the host's aarch64 libraries are covered so only self-contained bundles run.
TRANSLATED = """mount -t binfmt_misc phone-binfmt "$R/proc/sys/fs/binfmt_misc"
printf '%s\\n' {rule} > "$R/proc/sys/fs/binfmt_misc/register"
for d in {hidden}; do mount --bind {state}/.empty "$R$d" && mount -o remount,bind,ro "$R$d"; done
"""
# A host folder others may not enter (a 0700 home holding the checkout) is replaced in the
# phone by a read-only tmpfs that holds only the one entry on the way to an exposed path.
EXPOSE = """mount -t tmpfs -o mode=0755,nosuid,nodev phone-expose "$R"{folder}
{binds}mount -o remount,ro,nosuid,nodev "$R"{folder}
"""
EXPOSE_ENTRY = """mkdir "$R"{entry}
mount --rbind {entry} "$R"{entry} && mount -o remount,bind,ro,nosuid,nodev "$R"{entry}
"""
CPUINFO = """mount --bind {state}/.cpuinfo "$R/proc/cpuinfo"
"""
# The android-app seccomp persona (seccomp.py): programs under /data started through a glibc loader
# go through the filter's handler, by a binfmt_misc rule of this namespace's own.
SECCOMP = """B="$R/proc/sys/fs/binfmt_misc"
mountpoint -q "$B" || mount -t binfmt_misc phone-binfmt "$B"
printf '%s\\n' {rule} > "$B/register"
"""


def default_props(model: str, serial: str, persona: Persona) -> dict[str, str]:
    """getprop answers of the emulated phone; its ABI is the persona's."""
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
        "ro.build.type": "user",
        "ro.debuggable": "0",
        "ro.build.fingerprint": "google/shiba/shiba:14/UD1A.230803.041/10808477:user/release-keys",
        **persona.props(),
        "ro.serialno": serial,
        "sys.boot_completed": "1",
    }


class Sandbox:
    """The phone's files under `root` and the namespace its commands run in."""

    def __init__(self, root: Path, props: dict[str, str], script: SysfsScript, persona: Persona):
        self.root = root.resolve()
        self._props = dict(props)
        self.persona = persona
        self.sysfs = SysfsUpdater(self.root / "sys", script)
        self._holder: subprocess.Popen | None = None
        self._namespace = ""
        # As root we map uid 2000 to a uid of its own; otherwise only our own uid can be
        # mapped, and commands become 2000 in a nested user namespace.
        self._as_root = os.geteuid() == 0
        self.shell_host_uid = SHELL_HOST_UID if self._as_root else os.geteuid()
        self.shell_host_gid = SHELL_HOST_UID if self._as_root else os.getegid()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        for sub in ("data/local/tmp", "data/misc/adb", "system/bin", "sys", "sdcard", ".root", ".empty"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in SHELL_WRITABLE:
            self.give_to_shell(self.root / sub)
        (self.root / "data/local/tmp").chmod(0o771)
        from pocketbench.emulator.seccomp import HANDLER, handler_script

        tools = {"getprop": GETPROP, "dumpsys": DUMPSYS, "taskset": self.persona.taskset_script()}
        if self.persona.seccomp:
            tools[HANDLER.rsplit("/", 1)[1]] = handler_script()
        for name, text in tools.items():
            tool = self.root / "system/bin" / name
            tool.write_text(text)
            tool.chmod(0o755)
        cpuinfo = self.persona.cpuinfo()
        if cpuinfo is not None:
            (self.root / ".cpuinfo").write_text(cpuinfo)
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

    def give_to_shell(self, path: Path) -> None:
        """Make `path` the shell user's, as files adbd creates on a phone are."""
        if self._as_root:
            os.chown(path, self.shell_host_uid, self.shell_host_gid, follow_symlinks=False)

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

    def _persona_setup(self) -> str:
        state = shlex.quote(str(self.root))
        lines = ""
        if self.persona.translated:
            lines += TRANSLATED.format(
                rule=shlex.quote(self.persona.binfmt_rule()),
                hidden=" ".join(shlex.quote(path) for path in self.persona.hidden_paths()),
                state=state,
            )
        if self.persona.cpuinfo() is not None:
            lines += CPUINFO.format(state=state)
        if self.persona.seccomp:
            from pocketbench.emulator.seccomp import binfmt_rule

            lines += SECCOMP.format(rule=shlex.quote(binfmt_rule()))
        return lines

    def _expose_setup(self) -> str:
        """Mounts that let the shell user reach the Python environment whose libraries a
        host-built runner loads by absolute rpath, even inside a folder others may not enter."""
        entries: dict[Path, set[Path]] = {}
        targets = {Path(sys.prefix), Path(os.path.realpath(sys.prefix))}
        if self.persona.seccomp:  # its filter's handler runs this Python
            targets |= {Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
        for target in targets:
            parts = target.parts
            for depth in range(1, len(parts) - 1):
                folder = Path(*parts[: depth + 1])
                if folder.parts[1] not in HIDDEN and not os.stat(folder).st_mode & 0o001:
                    entries.setdefault(folder, set()).add(Path(*parts[: depth + 2]))
        return "".join(
            EXPOSE.format(
                folder=shlex.quote(str(folder)),
                binds="".join(EXPOSE_ENTRY.format(entry=shlex.quote(str(e))) for e in sorted(found)),
            )
            for folder, found in sorted(entries.items(), key=lambda item: len(item[0].parts))
        )

    def _start_holder(self) -> None:
        script = SETUP.format(
            parent_userns=shlex.quote(os.readlink("/proc/self/ns/user")),
            root=shlex.quote(str(self.root / ".root")),
            state=shlex.quote(str(self.root)),
            host_dirs=" ".join(shlex.quote(name) for name in self._prepare_root()),
            expose=self._expose_setup(),
            persona=self._persona_setup(),
        )
        # Always a user namespace of its own: binfmt_misc instances and the shell user's
        # uid belong to it. As root we write the maps: root stays root inside (to bind the
        # host's folders), 2000 is the phone's shell user.
        userns = ["--user"] if self._as_root else ["--user", "--map-root-user"]
        holder = subprocess.Popen(
            ["unshare", *userns, "--mount", "--propagation", "private", "/bin/sh", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,  # the phone's namespace ends with the process serving it
        )
        try:
            if self._as_root:
                self._wait_for_own_userns(holder)
                for name, host_id in (("uid_map", self.shell_host_uid), ("gid_map", self.shell_host_gid)):
                    Path(f"/proc/{holder.pid}/{name}").write_text(f"0 0 1\n{SHELL_UID} {host_id} 1\n")
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.write(b"go\n")
            holder.stdin.flush()
            line = holder.stdout.readline()
        except OSError as exc:
            line = b""
            holder.kill()
            holder.wait()
            error = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        else:
            error = ""
        if line.strip() == b"ready":
            self._holder = holder
            self._namespace = os.readlink(f"/proc/{holder.pid}/ns/mnt")
            return
        holder.kill()
        _, err = holder.communicate()
        error = error or err.decode(errors="replace").strip() or "no output"
        raise PocketbenchError(
            f"cannot build the emulated phone's user and mount namespace ({error});"
            " it needs user namespaces (unshare -U; kernel 6.7+ for the arm64 persona's binfmt_misc)"
        )

    @staticmethod
    def _wait_for_own_userns(holder: subprocess.Popen, timeout_s: float = 10.0) -> None:
        """unshare makes the user namespace after it starts: its maps can be written then."""
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + timeout_s
        while os.readlink(f"/proc/{holder.pid}/ns/user") == ours:
            if holder.poll() is not None or time.monotonic() > deadline:
                raise OSError(errno.ESRCH, "unshare --user did not create a user namespace")
            time.sleep(0.001)

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
        """argv that runs `command` with /bin/sh inside the phone, in /, as the shell user
        with no capabilities and no way to gain any (as adbd does on a user build)."""
        if self._holder is None:
            raise PocketbenchError("the emulated phone is not running")
        if self._as_root:
            become_shell = [
                "setpriv",
                f"--reuid={SHELL_UID}",
                f"--regid={SHELL_UID}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        else:
            become_shell = [
                "unshare",
                "--user",
                f"--map-user={SHELL_UID}",
                f"--map-group={SHELL_UID}",
                "--",
                "setpriv",
                "--inh-caps=-all",
                "--no-new-privs",
                "--",
            ]
        return [
            "nsenter",
            f"--target={self._holder.pid}",
            "--user",
            *([] if self._as_root else ["--preserve-credentials"]),
            "--mount",
            "--root",
            "--wd",
            "--",
            *become_shell,
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
            "USER": "shell",
            "LOGNAME": "shell",
            **self.persona.environment(),
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
        """Where a device path's file lives on this host, and whether it lies in storage the
        shell user may write (/data/local/tmp, /sdcard)."""
        norm = posixpath.normpath("/" + device_path.lstrip("/"))
        rel = norm.lstrip("/")
        top = rel.split("/")[0]
        if top in OWN_DIRS:
            return self.root / rel, any(rel == d or rel.startswith(d + "/") for d in SHELL_WRITABLE)
        return Path(norm), False

    # sync runs as this process (root, usually): it asks these before touching a file, so a
    # push or pull can do no more than the shell user could, whatever symlinks the phone made.
    def _shell_bits(self, st: os.stat_result) -> int:
        if st.st_uid == self.shell_host_uid:
            return (st.st_mode >> 6) & 7
        if st.st_gid == self.shell_host_gid:
            return (st.st_mode >> 3) & 7
        return st.st_mode & 7

    def _walk_checks(self, real: Path) -> list[Path] | None:
        """Folders the shell must be able to search to reach `real` (None: out of its sight)."""
        if real.is_relative_to(self.root):
            rel = real.relative_to(self.root)
            if not rel.parts or rel.parts[0] not in OWN_DIRS:
                return None
            base = self.root / rel.parts[0]
            return [base, *[base.joinpath(*rel.parts[1:i]) for i in range(2, len(rel.parts))]]
        return [real.parents[i] for i in range(len(real.parts) - 2, -1, -1)]

    def shell_may(self, path: Path, want: int) -> bool:
        """Whether the shell user may reach `path` and has `want` (4 r, 2 w, 1 x) on it."""
        real = Path(os.path.realpath(path))
        folders = self._walk_checks(real)
        try:
            if folders is None or any(not self._shell_bits(os.stat(d)) & 1 for d in folders):
                return False
            return self._shell_bits(os.stat(real)) & want == want
        except OSError:
            return False

    def shell_may_create(self, path: Path) -> bool:
        """Whether the shell user may create `path` (its missing parents included) in its
        writable storage; the parents are created, owned by the shell user."""
        writable = [Path(os.path.realpath(self.root / d)) for d in SHELL_WRITABLE]
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        real = Path(os.path.realpath(parent))
        if not any(real.is_relative_to(w) for w in writable) or not self.shell_may(real, 3):
            return False
        for folder in reversed(missing):
            folder.mkdir()
            self.give_to_shell(folder)
        real_parent = Path(os.path.realpath(path.parent))
        return any(real_parent.is_relative_to(w) for w in writable)

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
