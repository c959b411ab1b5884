#!/usr/bin/python3
"""A libnm client (gi.repository.NM), as a user's script would be: list the profiles,
activate one by id, wait for ACTIVATED (or fail), print what happened. Exit 0 on success."""
import sys

import gi

gi.require_version("NM", "1.0")
from gi.repository import GLib, NM  # noqa: E402

want = sys.argv[1]
client = NM.Client.new(None)
print("profiles:", ",".join(sorted(c.get_id() for c in client.get_connections())))
profile = next((c for c in client.get_connections() if c.get_id() == want), None)
if profile is None:
    print(f"no profile {want}")
    sys.exit(2)

loop = GLib.MainLoop()
result = {"code": 1}


def on_state(ac, state, reason):
    print("vpn-state:", int(state))
    if state == NM.VpnConnectionState.ACTIVATED:
        result["code"] = 0
        loop.quit()
    elif state in (NM.VpnConnectionState.FAILED, NM.VpnConnectionState.DISCONNECTED):
        loop.quit()


def activated(c, res):
    try:
        ac = c.activate_connection_finish(res)
    except GLib.Error as e:
        print("activation error:", e.message)
        loop.quit()
        return
    print("active:", ac.get_path(), "vpn:", ac.get_vpn())
    print("devices:", ",".join(d.get_iface() for d in ac.get_devices()))
    ac.connect("vpn-state-changed", on_state)
    if ac.get_vpn_state() == NM.VpnConnectionState.ACTIVATED:
        result["code"] = 0
        loop.quit()


client.activate_connection_async(profile, None, None, None, activated)
GLib.timeout_add_seconds(30, loop.quit)
loop.run()
sys.exit(result["code"])
