"""`sanetd invite NAME -o FILE`, `sanetd revoke NAME`, `sanetd clients`: the shared server's allow-list.

They edit the allow-list in the daemon's config folder (allowlist.py) and work whether sanetd runs or not. A
running sanetd with ``--listen`` watches that file and applies a change within a fraction of a second (a revoked
client's connections are dropped); these commands wait for the daemon to confirm it (``clients-seen.json``) and
say so. Exit codes: 0 done, 2 bad input (a name, an endpoint, a file), 1 anything else.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from sanet_client import connect

from . import __version__
from .allowlist import AllowListError, NetworkFolder, fingerprint, new_invitee
from .config import ConfigError, load_settings

APPLY_WAIT_S = 5.0
WILDCARD_HOSTS = ("*", "0.0.0.0", "::", "")


class AdminError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sanetd", description="Share this sanetd with other computers: invite "
                                "clients (one connection file each), revoke them, list them. Run the daemon with "
                                "--listen tcp://HOST:PORT (or listen = ... in the config file) to serve them.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("invite", help="write a connection file for a new client and allow it in",
                       description="Write a connection file (server endpoint, server public key, a fresh client key "
                                   "pair and signing key) for one client and add it to the allow-list. The file is "
                                   "all an artist needs; treat it like a password.")
    i.add_argument("name", help="the client's name (a person or a computer): letters, digits, _ . @ -")
    i.add_argument("-o", "--output", required=True, metavar="FILE", help="the connection file to write")
    i.add_argument("--endpoint", metavar="tcp://HOST:PORT",
                   help="the address the client's computer reaches this server at (default: the running daemon's "
                        "--listen address, or the listen setting, with this computer's name for a wildcard host)")
    i.add_argument("--max-queued", dest="max_queued", type=int, metavar="N",
                   help="jobs this client may have waiting (default: the daemon's --max-queued)")
    i.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    r = sub.add_parser("revoke", help="take a client off the allow-list and drop its connections")
    r.add_argument("name")
    c = sub.add_parser("clients", help="list the invited clients with their last use")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    return p


# ------------------------------------------------------------------------------------------------ the daemon

def _running_daemon():
    """(ConnectionInfo, alive) of the local daemon's connection file, or (None, False)."""
    try:
        info = connect.read_connection_file()
    except Exception:  # noqa: BLE001  no file, unreadable, another version: not running as far as we can tell
        return None, False
    return info, info.process_state() != "gone"


def _wait_applied(folder: NetworkFolder, raw: bytes | None) -> str:
    """A sentence on whether a running daemon applied the allow-list ``raw`` (it writes clients-seen.json)."""
    info, alive = _running_daemon()
    if info is None or not alive:
        return "sanetd is not running; it applies the allow-list when it starts with --listen"
    if not info.listen:
        return (f"the running sanetd (pid {info.pid}) does not serve the network; restart it with --listen "
                f"tcp://HOST:PORT")
    want = folder.digest(raw)
    end = time.monotonic() + APPLY_WAIT_S
    while time.monotonic() < end:
        seen = folder.read_seen()
        if seen.get("pid") == info.pid and seen.get("allow_list") == want:
            return f"the running sanetd (pid {info.pid}) applied it"
        time.sleep(0.05)
    return (f"the running sanetd (pid {info.pid}) has not confirmed it within {APPLY_WAIT_S:g} s; is it using "
            f"the same config folder ({folder.folder})?")


# ------------------------------------------------------------------------------------------------ endpoint

def _invite_endpoint(given: str | None) -> tuple[str, str | None]:
    """(endpoint for the connection file, a note to print or None)."""
    if given:
        source = "--endpoint"
        endpoint = given
    else:
        info, alive = _running_daemon()
        if info is not None and alive and info.listen:
            source, endpoint = f"the running sanetd (pid {info.pid})", info.listen
        else:
            try:
                listen = load_settings([]).listen
            except ConfigError as exc:
                raise AdminError(str(exc), 2) from None
            if not listen:
                raise AdminError("give --endpoint tcp://HOST:PORT: the address the client's computer reaches this "
                                 "server at (sanetd is not running with --listen, and no listen setting is "
                                 "configured)", 2)
            source, endpoint = "the listen setting", listen
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not port:
        raise AdminError(f"{source}: {endpoint!r} is not tcp://HOST:PORT with a port number", 2)
    host = parts.hostname or ""
    if host in WILDCARD_HOSTS or parts.netloc.startswith("*"):
        if given:
            raise AdminError(f"--endpoint {endpoint}: name the host the client connects to (this computer's name or "
                             f"address), not a wildcard", 2)
        name = socket.getfqdn()
        return (f"tcp://{name}:{port}", f"the endpoint {endpoint} of {source} listens on all addresses; the file "
                f"names this computer as {name!r}: check that the client's computer reaches it, or give --endpoint")
    try:
        if ipaddress.ip_address(host).is_loopback and not given:
            return endpoint, (f"{source} listens on {host}: only this computer can connect; listen on an address "
                              f"the clients reach (e.g. --listen tcp://0.0.0.0:PORT)")
    except ValueError:
        pass
    if ":" in host:
        return f"tcp://[{host}]:{port}", None
    return f"tcp://{host}:{port}", None


# ------------------------------------------------------------------------------------------------ commands

def invite(args, folder: NetworkFolder) -> int:
    out = Path(args.output).expanduser()
    if out.exists() and not args.force:
        raise AdminError(f"{out} exists; choose another file or add --force", 2)
    if not out.parent.is_dir():
        raise AdminError(f"{out.parent} is not a folder", 2)
    if args.max_queued is not None and args.max_queued < 0:
        raise AdminError(f"--max-queued {args.max_queued}: expected 0 or more", 2)
    endpoint, note = _invite_endpoint(args.endpoint)
    try:
        invitee, secret = new_invitee(args.name, args.max_queued, endpoint)
    except AllowListError as exc:
        raise AdminError(str(exc), 2) from None
    server_public = folder.server_public_key()
    if args.name in folder.clients():
        raise AdminError(f"client {args.name!r} is already invited; `sanetd revoke {args.name}` first, or choose "
                         f"another name", 2)
    # the file first: an allow-list entry nobody has the keys for would be harmless, a file without one useless
    connect.write_invite_file(out, endpoint=endpoint, key=invitee.key, server_public=server_public,
                              client_public=invitee.public_key, client_secret=secret, client=args.name,
                              server=socket.gethostname(), version=__version__)
    try:
        folder.add(invitee)
    except AllowListError as exc:
        out.unlink(missing_ok=True)
        raise AdminError(str(exc), 2) from None
    limit = "" if args.max_queued is None else f", at most {args.max_queued} waiting job(s)"
    print(f"invited {args.name} (key {fingerprint(invitee.public_key)}{limit}): connection file {out}")
    print(f"  endpoint {endpoint}; give the file to {args.name} privately: whoever has it can use this server")
    if note:
        print(f"  note: {note}")
    print(f"  {_wait_applied(folder, folder.read_clients_text())}")
    return 0


def revoke(args, folder: NetworkFolder) -> int:
    try:
        gone = folder.remove(args.name)
    except AllowListError as exc:
        raise AdminError(str(exc), 2) from None
    print(f"revoked {gone.name} (key {fingerprint(gone.public_key)}): its connection file no longer works")
    print(f"  {_wait_applied(folder, folder.read_clients_text())}")
    return 0


def _when(t) -> str:
    if not isinstance(t, (int, float)) or not t:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def clients(args, folder: NetworkFolder) -> int:
    invited = folder.clients()
    seen = folder.read_seen().get("clients") or {}
    rows = []
    for name, inv in sorted(invited.items()):
        s = seen.get(name) if isinstance(seen.get(name), dict) else {}
        rows.append({"name": name, "key": fingerprint(inv.public_key), "max_queued": inv.max_queued,
                     "invited": inv.invited, "endpoint": inv.endpoint, "last_seen": s.get("last_seen"),
                     "address": s.get("address"), "connections": s.get("connections", 0),
                     "jobs_done": s.get("jobs_done", 0)})
    if args.json:
        print(json.dumps({"network_dir": str(folder.folder), "clients": rows}, indent=1))
        return 0
    if not rows:
        print(f"no clients invited (allow-list {folder.clients_file}); `sanetd invite NAME -o FILE` adds one")
        return 0
    table = [("NAME", "KEY", "MAX QUEUED", "INVITED", "LAST USE", "FROM", "CONNECTIONS", "JOBS")]
    for r in rows:
        table.append((r["name"], r["key"], "-" if r["max_queued"] is None else str(r["max_queued"]),
                      _when(r["invited"]), _when(r["last_seen"]), r["address"] or "-", str(r["connections"]),
                      str(r["jobs_done"])))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def main(argv) -> int:
    args = parser().parse_args(argv)
    folder = NetworkFolder()
    try:
        return {"invite": invite, "revoke": revoke, "clients": clients}[args.command](args, folder)
    except AdminError as exc:
        print(f"sanetd {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except (AllowListError, OSError) as exc:
        print(f"sanetd {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
