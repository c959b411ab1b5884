#!/usr/bin/python3
"""A small NM VPN plugin in dbus-python, as a plugin author would write one, with one protocol
fault of its own, taken from its service name `org.tinynm.broken.<fault>`:

- `clean`: none (the control: every check passes)
- `keep-name`: after Disconnect it says STOPPED but stays on the bus with its name
- `ignore-peer`: it does not watch the caller of Connect, so it stays when the caller vanishes
- `leave-tun`: Disconnect does not remove the tun device it made
- `ip4-first`: it sends Ip4Config before Config
- `own-route`: it adds a route of its own to its tun, one no config of its names
- `routes-aau`: no fault: it sends `vpn.data` `route-count` /32 routes from 100.64.0.1 in the
  legacy `routes` form (`aau`, as nm-openvpn-service's helper does), for the bench
- `routes-both`: as `routes-aau`, and the same routes again as `route-data` (`aa{sv}`, the
  form of NM's settings), which NM 1.42 does not read from a plugin: for the bench

It makes a tun device `brk<N>` (N from `--bus-name …Connection_N`) with `ip tuntap`, gives it
10.77.<N>.2/24 by its Ip4Config, and quits when it is stopped.
"""

import socket
import struct
import subprocess
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.NetworkManager.VPN.Plugin"
PATH = "/org/freedesktop/NetworkManager/VPN/Plugin"
STARTING, STARTED, STOPPING, STOPPED = 3, 4, 5, 6


def addr(a):
    """An IPv4 address as NM sends it: a u in network byte order."""
    return dbus.UInt32(struct.unpack("=I", socket.inet_aton(a))[0])


class Plugin(dbus.service.Object):
    def __init__(self, bus, name, fault, n, loop):
        super().__init__(bus, PATH)
        self.bus, self.name, self.fault, self.loop = bus, name, fault, loop
        self.tun = "brk%d" % n
        self.n = n
        self.state = 1
        self.watch = None

    def set_state(self, s):
        self.state = s
        self.StateChanged(dbus.UInt32(s))

    @dbus.service.signal(IFACE, signature="u")
    def StateChanged(self, state):
        pass

    @dbus.service.signal(IFACE, signature="a{sv}")
    def Config(self, config):
        pass

    @dbus.service.signal(IFACE, signature="a{sv}")
    def Ip4Config(self, config):
        pass

    @dbus.service.signal(IFACE, signature="u")
    def Failure(self, reason):
        pass

    @dbus.service.method(IFACE, in_signature="a{sa{sv}}", out_signature="s")
    def NeedSecrets(self, settings):
        return ""

    @dbus.service.method(IFACE, in_signature="a{sa{sv}}a{sv}", out_signature="")
    def ConnectInteractive(self, settings, details):
        raise dbus.exceptions.DBusException(
            "Plugin does not implement ConnectInteractive()",
            name="org.freedesktop.NetworkManager.VPN.Error.InteractiveNotSupported",
        )

    @dbus.service.method(IFACE, in_signature="a{sa{sv}}", out_signature="",
                         sender_keyword="sender")
    def Connect(self, settings, sender=None):
        data = settings.get("vpn", {}).get("data", {})
        self.route_count = int(data.get("route-count", "0"))
        if self.fault != "ignore-peer":
            self.watch = self.bus.watch_name_owner(sender, self.peer_changed)
        self.set_state(STARTING)
        GLib.idle_add(self.come_up)

    def come_up(self):
        if self.state != STARTING:
            # Disconnected before it came up (plugin-test's disconnect-starting found this).
            return False
        # The first free brkN from N on, as real plugins pick the first free vpnN.
        n = self.n
        while subprocess.run(["ip", "tuntap", "add", "dev", "brk%d" % n, "mode", "tun"],
                             stderr=subprocess.DEVNULL).returncode != 0:
            n += 1
            if n > self.n + 64:
                raise RuntimeError("no free tun name")
        self.tun = "brk%d" % n
        if self.fault == "own-route":
            subprocess.run(["ip", "link", "set", self.tun, "up"], check=True)
            subprocess.run(["ip", "route", "add", "10.66.%d.0/24" % self.n, "dev", self.tun],
                           check=True)
        config = dbus.Dictionary({
            "tundev": dbus.String(self.tun),
            "gateway": addr("10.99.0.1"),
            "has-ip4": dbus.Boolean(True),
            "has-ip6": dbus.Boolean(False),
        }, signature="sv")
        ip4 = dbus.Dictionary({
            "address": addr("10.77.%d.2" % self.n),
            "prefix": dbus.UInt32(24),
            "never-default": dbus.Boolean(True),
        }, signature="sv")
        if self.fault in ("routes-aau", "routes-both") and self.route_count:
            base = struct.unpack("!I", socket.inet_aton("100.64.0.0"))[0]
            ip4["routes"] = dbus.Array(
                [dbus.Array([addr(socket.inet_ntoa(struct.pack("!I", base + i))),
                             dbus.UInt32(32), dbus.UInt32(0), dbus.UInt32(50)],
                            signature="u")
                 for i in range(1, self.route_count + 1)],
                signature="au")
        if self.fault == "routes-both" and self.route_count:
            ip4["route-data"] = dbus.Array(
                [dbus.Dictionary({
                    "dest": dbus.String(socket.inet_ntoa(struct.pack("!I", base + i))),
                    "prefix": dbus.UInt32(32),
                    "metric": dbus.UInt32(50),
                }, signature="sv") for i in range(1, self.route_count + 1)],
                signature="a{sv}")
        if self.fault == "ip4-first":
            self.Ip4Config(ip4)
            self.Config(config)
        else:
            self.Config(config)
            self.Ip4Config(ip4)
        self.set_state(STARTED)
        return False

    def peer_changed(self, owner):
        if owner == "" and self.state in (STARTING, STARTED):
            self.stop()
            self.loop.quit()

    def stop(self):
        self.set_state(STOPPING)
        if self.fault != "leave-tun":
            subprocess.run(["ip", "link", "del", self.tun], check=False,
                           stderr=subprocess.DEVNULL)
        self.set_state(STOPPED)

    @dbus.service.method(IFACE, in_signature="", out_signature="")
    def Disconnect(self):
        self.stop()
        if self.fault != "keep-name":
            GLib.idle_add(self.loop.quit)


def main():
    args = sys.argv[1:]
    if args and (len(args) != 2 or args[0] != "--bus-name"):
        sys.exit("usage: broken_plugin.py [--bus-name NAME]")
    # Without --bus-name (a plugin of one connection at a time), the service's own name.
    name = args[1] if args else "org.tinynm.broken.clean"
    parts = name.split(".")
    fault = parts[3] if name.startswith("org.tinynm.broken.") else "clean"
    n = int(parts[-1].split("_")[1]) if parts[-1].startswith("Connection_") else 1
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    loop = GLib.MainLoop()
    Plugin(bus, name, fault, n, loop)
    held = dbus.service.BusName(name, bus, do_not_queue=True)  # noqa: F841 (dropped = released)
    loop.run()
    del held


if __name__ == "__main__":
    main()
