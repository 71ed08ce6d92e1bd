"""`nightstand sync | pair | status | nights | wifi`: talk to the device over USB serial or TCP."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import secrets

from nsdev.core import proto

from nightstand import __version__
from nightstand.commands.base import Command
from nightstand.errors import UserError
from nightstand.store import Store
from nightstand.sync.client import Client, DeviceError, LinkError
from nightstand.sync.transport import SerialTransport, TCPTransport, Transport, list_serial_ports


def _link_args(p: argparse.ArgumentParser, tcp: bool = True) -> None:
    p.add_argument("--port", help="serial port of the device (default: auto-discover USB ports)")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    if tcp:
        p.add_argument("--host", help="reach the device over Wi-Fi at this address instead")
        p.add_argument("--tcp-port", type=int, default=proto.TCP_PORT,
                       help=f"TCP port (default {proto.TCP_PORT})")
    p.add_argument("--timeout", type=float, default=2.0, help="reply timeout in seconds")


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="store file (default: nightstand.sqlite3 in the user data folder)")


def _json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _pick_port(args: argparse.Namespace) -> str:
    if args.port:
        return args.port
    ports = list_serial_ports()
    likely = [p for p in ports if p.likely] or ports
    if not likely:
        raise UserError("no device found: plug it in by USB, or give --port PORT or --host ADDR")
    if len(likely) > 1:
        names = ", ".join(p.device for p in likely)
        raise UserError(f"several serial ports found ({names}): choose one with --port")
    return likely[0].device


def _client(args: argparse.Namespace, store: Store | None) -> tuple[Client, str]:
    host = getattr(args, "host", None)
    if host:
        address = f"{host}:{args.tcp_port}"

        def connect() -> Transport:
            return TCPTransport(host, args.tcp_port)
    else:
        port = _pick_port(args)
        address = port

        def connect() -> Transport:
            return SerialTransport(port, args.baud)

    def keys() -> list[bytes]:
        return store.secrets_for(address) if store else []

    return Client(connect, secrets=keys, timeout_s=args.timeout), address


def _explain(e: Exception, address: str) -> UserError:
    if isinstance(e, DeviceError):
        if e.code == proto.ERR_NOT_PAIRED:
            return UserError(f"{address}: not paired: run `nightstand pair` with the device "
                             "on USB")
        if e.code == proto.ERR_AUTH_FAILED:
            return UserError(f"{address}: wrong key: the device was paired with another computer "
                             "or re-paired; run `nightstand pair` over USB")
        if e.code == proto.ERR_BUSY:
            return UserError(f"{address}: device busy: another sync is running; try again soon")
        if e.code == proto.ERR_USB_ONLY:
            return UserError(f"{address}: this only works over USB (physical access)")
        return UserError(f"{address}: device refused: {e.text}")
    if isinstance(e, LinkError | ConnectionError | OSError):
        return UserError(f"{address}: no answer from a nightstand device ({e}); "
                         "check the cable/port or the address")
    return UserError(str(e))


def _run_device(args: argparse.Namespace, store: Store | None, fn):
    client, address = _client(args, store)
    try:
        return fn(client, address)
    except (DeviceError, LinkError, ConnectionError, OSError) as e:
        raise _explain(e, address) from None
    finally:
        client.close()


# ---- sync -------------------------------------------------------------------------------------

def _sync_args(p: argparse.ArgumentParser) -> None:
    _link_args(p)
    _db_arg(p)
    _json_arg(p)
    p.add_argument("--no-set-time", action="store_true",
                   help="do not set the device clock from this computer")


def _sync_run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from nightstand.sync.engine import sync_device

    with Store(args.db) as store:
        store.lock()  # one sync per store at a time
        progress = Progress("[progress.description]{task.description}", BarColumn(),
                            DownloadColumn(), TransferSpeedColumn(), transient=True,
                            disable=args.json)
        with progress:
            task = progress.add_task("syncing", total=None)

            def go(client: Client, address: str):
                return sync_device(
                    client, store, address, set_time=not args.no_set_time,
                    start=lambda total: progress.update(task, total=total),
                    progress=lambda n: progress.advance(task, n),
                )

            rep = _run_device(args, store, go)
    if args.json:
        print(json.dumps(rep.__dict__))
    else:
        print(f"{rep.device_id}: {len(rep.downloaded)} new night(s) stored "
              f"({rep.bytes} bytes), {rep.already} already here, "
              f"{rep.skipped_open} still recording")
        if rep.plan:
            print(f"plan: {rep.plan}")
        if rep.conflicts:
            print(f"warning: nights {rep.conflicts} differ from the stored copies; kept ours")
    return 0


# ---- pair -------------------------------------------------------------------------------------

def _pair_args(p: argparse.ArgumentParser) -> None:
    _link_args(p, tcp=False)
    _db_arg(p)


def _pair_run(args: argparse.Namespace) -> int:
    if getattr(args, "host", None):
        raise UserError("pairing works only over USB: connect the device with a cable")
    with Store(args.db) as store:
        secret = secrets.token_bytes(proto.SECRET_LEN)

        def go(client: Client, address: str) -> str:
            hello = client.connect()
            client.pair(secret)
            store.save_device(hello["device_id"], secret=secret,
                              firmware_version=hello["firmware_version"], address=address)
            return hello["device_id"]

        device_id = _run_device(args, store, go)
    print(f"paired with {device_id}: it can now sync over Wi-Fi (nightstand sync --host ADDR)")
    return 0


# ---- wifi -------------------------------------------------------------------------------------

def _wifi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ssid", help="network name")
    p.add_argument("--password-env", metavar="VAR",
                   help="read the password from this environment variable (default: prompt)")
    _link_args(p, tcp=False)


def _wifi_run(args: argparse.Namespace) -> int:
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise UserError(f"environment variable {args.password_env} is not set")
    else:
        password = getpass.getpass(f"Wi-Fi password for {args.ssid} (empty if open): ")
    _run_device(args, None, lambda c, a: c.set_wifi(args.ssid, password))
    print(f"Wi-Fi credentials for {args.ssid} stored on the device")
    return 0


# ---- status -----------------------------------------------------------------------------------

def _status_args(p: argparse.ArgumentParser) -> None:
    _link_args(p)
    _db_arg(p)
    _json_arg(p)


def _status_run(args: argparse.Namespace) -> int:
    with Store.open_optional(args.db) as store:
        def go(client: Client, address: str) -> dict:
            hello = client.connect()
            st = client.status()
            nights = client.list_nights()
            st.update(device_id=hello["device_id"], firmware_version=hello["firmware_version"],
                      host_version=__version__,
                      nights_on_device=len(nights),
                      nights_unsynced=sum(1 for n in nights if not n.acked and not n.open))
            return st

        st = _run_device(args, store, go)
    if args.json:
        print(json.dumps(st))
    else:
        for k in sorted(st):
            print(f"{k:>20}: {st[k]}")
    return 0


# ---- nights -----------------------------------------------------------------------------------

def _nights_args(p: argparse.ArgumentParser) -> None:
    _db_arg(p)
    _json_arg(p)


def _fmt_time(unix_s: int | None, offset_s: int | None) -> str:
    if not unix_s:
        return "?"
    tz = dt.timezone(dt.timedelta(seconds=offset_s or 0))
    return dt.datetime.fromtimestamp(unix_s, tz).strftime("%Y-%m-%d %H:%M")


def _nights_run(args: argparse.Namespace) -> int:
    from nightstand.sleep.night import store_sleep_by_row, tst_se_cells

    with Store(args.db, readonly=True) as store:
        rows = store.nights()
        sleep = store_sleep_by_row(store) if rows else {}
    if args.json:
        for r in rows:
            ns = sleep.get(r["id"])
            r["sleep"] = None if ns is None else ns.flat("")
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no nights stored yet: run `nightstand sync`")
        return 0
    print(f"{'device':<16} {'night':>8} {'start':<16} {'bytes':>8} {'epochs':>6} {'beats':>6} "
          f"{'events':>6} {'TST':>5} {'SE':>4}  note")
    for r in rows:
        note = r["decode_error"] or (f"{r['n_skipped']} damaged range(s)" if r["n_skipped"]
                                     else "")
        tst, se = tst_se_cells(sleep.get(r["id"]))
        if r.get("header_recovered"):
            note += "; header damaged: start time from the device's list"
        print(f"{r['device_id']:<16} {r['night_id']:>8} "
              f"{_fmt_time(r['start_unix_s'], r['utc_offset_s']):<16} {r['size']:>8} "
              f"{r['epochs']:>6} {r['beats']:>6} {r['events']:>6} {tst:>5} {se:>4}  {note}")
    return 0


# ---- store ------------------------------------------------------------------------------------

def _store_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True
    rb = sub.add_parser(
        "rebuild", help="make a new store from the raw night files (after damage)",
        description="make a new store from the raw night files in raw/ beside it; paired "
                    "devices, keys and the journal are kept if they can still be read; the old "
                    "file is set aside as <store>.damaged-<time>")
    _db_arg(rb)
    rd = sub.add_parser(
        "redecode", help="decode the stored nights again with this nightstand's decoder",
        description="decode again the nights an older nightstand decoded (e.g. to recover a "
                    "night with a damaged header); --all: every night")
    rd.add_argument("--all", action="store_true", help="every night, not only older ones")
    _db_arg(rd)


def _store_run(args: argparse.Namespace) -> int:
    from nightstand.store import rebuild

    if args.action == "redecode":
        Store(args.db, readonly=True).close()  # must exist: never created here
        with Store(args.db) as store:
            store.lock()
            n = store.redecode(only_older=not args.all)
        print(f"{n} night(s) decoded again")
        return 0
    n, failed, aside = rebuild(args.db)
    print(f"{n} night(s) stored again from raw/" + (f"; the old store is kept as {aside}"
                                                    if aside else ""))
    for f in failed:
        print(f"not stored: {f}")
    return 0


COMMANDS = [
    Command("sync", "download new nights from the device into the desktop store", _sync_args,
            _sync_run),
    Command("pair", "pair this computer with the device (USB only) for Wi-Fi sync", _pair_args,
            _pair_run),
    Command("wifi", "store Wi-Fi credentials on the device (USB only)", _wifi_args, _wifi_run),
    Command("status", "show the device's status (clock, flash, heap, faults, nights)",
            _status_args, _status_run),
    Command("nights", "list the nights in the desktop store", _nights_args, _nights_run),
    Command("store", "look after the desktop store (rebuild it from raw/ after damage)",
            _store_args, _store_run),
]


def run_sync_args(argv: list[str]) -> int:
    """`nightstand sync ARGV...` without the top-level parser (used by `nightstand demo`)."""
    parser = argparse.ArgumentParser(prog="nightstand sync")
    _sync_args(parser)
    return _sync_run(parser.parse_args(argv))
