"""Harness side of faultfs (tools/faultfs/faultfs.cc, an LD_PRELOAD shim): switch faults
on and off in a running program, and drop what a power loss would lose after a kill -9.

The shim, preloaded with FAULTFS_ROOT=<dir>, affects files under <dir> and shares a state
directory with this module (FAULTFS_STATE, default "<dir>.faultfs"):
  ctl       the faults switched on, as words ("fsync-eio", "enospc"); rewritten in place
  journal   what was created, fsynced, renamed... (format in faultfs.cc)
  backup/   hard links to files that renames replaced

    env = shim_env(lib, root)        # environment for the program
    set_faults(state_dir(root), "fsync-eio")
    set_faults(state_dir(root))      # all off
    report = drop_unsynced(root)     # after kill -9: as after a power loss

CLI: python3 -m tools.faultfs.control set ROOT [FAULT...] | drop ROOT | show ROOT
"""

import json
import os
import shutil
import sys

CTL_BYTES = 256
FAULTS = ("fsync-eio", "enospc")


def state_dir(root):
    return os.path.normpath(os.path.abspath(root)) + ".faultfs"


def shim_env(lib, root, preload=""):
    """Environment entries that preload the shim (after `preload`, if any) for root."""
    root = os.path.normpath(os.path.abspath(root))
    libs = [p for p in preload.split(":") if p and p != lib] + [lib]
    return {"LD_PRELOAD": ":".join(libs), "FAULTFS_ROOT": root, "FAULTFS_STATE": state_dir(root)}


def set_faults(state, *faults):
    """Switch exactly these faults on (none: all off). Takes effect at the program's next
    call; works whether or not the program runs yet."""
    for f in faults:
        if f not in FAULTS:
            raise ValueError(f"unknown fault {f!r} (known: {', '.join(FAULTS)})")
    os.makedirs(state, exist_ok=True)
    text = " ".join(faults).encode()
    path = os.path.join(state, "ctl")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # In place and never shorter: the program maps these bytes.
        os.pwrite(fd, text + b" " * (CTL_BYTES - len(text)), 0)
    finally:
        os.close(fd)


def faults(state):
    try:
        with open(os.path.join(state, "ctl"), "rb") as f:
            return f.read(CTL_BYTES).decode(errors="replace").split()
    except FileNotFoundError:
        return []


def _journal(state):
    path = os.path.join(state, "journal")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) < 3:
            continue  # the last line may be cut by the kill
        out.append(fields)
    return out


def durable_state(state):
    """Replays the journal: ({path: {"synced": bytes, "durable": bool}}, pending renames).
    "synced" is the size at its last successful fsync (or when first seen, for files that
    existed when the journal started); "durable" says whether its name survives a power
    loss (its directory was fsynced after it was created or renamed there)."""
    files = {}
    renames = []  # [old, new, backup, old_entry] not yet durable
    for fields in _journal(state):
        op, size, path = fields[0], int(fields[1]), fields[2]
        if op == "O":
            files.setdefault(path, {"synced": size, "durable": True})
        elif op == "C":
            files[path] = {"synced": 0, "durable": False}
        elif op == "T":
            f = files.setdefault(path, {"synced": size, "durable": True})
            f["synced"] = min(f["synced"], size)
        elif op == "S":
            files.setdefault(path, {"synced": 0, "durable": True})["synced"] = size
        elif op == "D":
            for p, f in files.items():
                if os.path.dirname(p) == path:
                    f["durable"] = True
            renames = [r for r in renames if os.path.dirname(r[1]) != path]
        elif op == "R" and len(fields) >= 5:
            new, backup = fields[3], fields[4]
            old_entry = files.pop(path, {"synced": size, "durable": True})
            files[new] = {"synced": old_entry["synced"], "durable": False}
            renames.append([path, new, None if backup == "-" else backup, dict(old_entry)])
        elif op == "U":
            files.pop(path, None)
    return files, renames


def reset(state):
    """Forget the journal and backups: everything on disk now counts as durable (true
    after drop_unsynced, or after os.sync() with the program stopped)."""
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "journal"), "w"):
        pass
    shutil.rmtree(os.path.join(state, "backup"), ignore_errors=True)
    os.makedirs(os.path.join(state, "backup"), exist_ok=True)


def drop_unsynced(root, state=None):
    """After the program was killed (kill -9): make the files under root what a power loss
    would have left. Undoes renames whose directory was not fsynced since, removes files
    whose name was never made durable, truncates every other file to its size at its last
    fsync. Then resets the journal. Returns what it did (JSON-able)."""
    state = state or state_dir(root)
    files, renames = durable_state(state)
    report = {"truncated": {}, "removed": [], "renames_undone": []}
    for old, new, backup, old_entry in reversed(renames):
        if not os.path.exists(new):
            continue
        entry = files.pop(new, None)
        if old_entry["durable"]:
            os.rename(new, old)
            files[old] = {"synced": entry["synced"] if entry else old_entry["synced"],
                          "durable": True}
        else:
            os.unlink(new)
        if backup and os.path.exists(backup):
            os.rename(backup, new)
            files[new] = {"synced": os.path.getsize(new), "durable": True}
        report["renames_undone"].append([old, new])
    for path, f in sorted(files.items()):
        if not os.path.isfile(path):
            continue
        if not f["durable"]:
            os.unlink(path)
            report["removed"].append(path)
            continue
        size = os.path.getsize(path)
        if size > f["synced"]:
            os.truncate(path, f["synced"])
            report["truncated"][path] = size - f["synced"]
    os.sync()
    reset(state)
    return report


def main(argv):
    if len(argv) < 3 or argv[1] not in ("set", "drop", "show"):
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[2]
    if argv[1] == "set":
        set_faults(state_dir(root), *argv[3:])
    elif argv[1] == "drop":
        print(json.dumps(drop_unsynced(root), indent=1))
    else:
        files, renames = durable_state(state_dir(root))
        print(json.dumps({"faults": faults(state_dir(root)), "files": files,
                          "pending_renames": renames}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
