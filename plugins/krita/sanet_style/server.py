"""The Server choice of the docker and the dialog: this computer (the sanetd found automatically), or a connection
file — a shared server's, written by `sanetd invite`, or another local sanetd's sanetd.json.

Remembered per Krita profile: kritarc, group [sanet_style], key connection_file (empty: this computer). Nothing
here touches Qt; outside Krita (tests) the value lives in memory.
"""
from . import prefs

GROUP, KEY = prefs.GROUP, "connection_file"


def load():
    """The remembered connection file, or None for this computer."""
    return prefs.load(KEY, "").strip() or None


def save(path):
    prefs.save(KEY, str(path or ""))


def is_remote(mod, path):
    """True when ``path`` is a networked connection file (a shared server: nothing to start here)."""
    if not path:
        return False
    try:
        return bool(mod.read_connection_file(path).remote)
    except Exception:   # an unreadable file: the heartbeat says why
        return False


def label(mod, path):
    """"this computer", "the shared sanetd at tcp://…, as alice", or why the file cannot be used."""
    try:
        from sanet_client import connect
        return connect.server_label(path)
    except Exception as exc:   # DaemonNotRunning / ProtocolMismatch: the message says what is wrong with the file
        return str(exc)
