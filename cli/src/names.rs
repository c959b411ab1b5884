//! NM's enum values as nmcli 1.42 words them (nm-dbus-interface.h; nmcli's own texts).

/// `NMState`, as `nmcli general` shows it.
pub fn nm_state(v: u32) -> &'static str {
    match v {
        10 => "asleep",
        20 => "disconnected",
        30 => "disconnecting",
        40 => "connecting",
        50 => "connected (local only)",
        60 => "connected (site only)",
        70 => "connected",
        _ => "unknown",
    }
}

/// `NMConnectivityState`.
pub fn connectivity(v: u32) -> &'static str {
    match v {
        1 => "none",
        2 => "portal",
        3 => "limited",
        4 => "full",
        _ => "unknown",
    }
}

/// `NMDeviceState`, as `nmcli device` shows it.
pub fn device_state(v: u32) -> &'static str {
    match v {
        10 => "unmanaged",
        20 => "unavailable",
        30 => "disconnected",
        40 => "connecting (prepare)",
        50 => "connecting (configuring)",
        60 => "connecting (need authentication)",
        70 => "connecting (getting IP configuration)",
        80 => "connecting (checking IP connectivity)",
        90 => "connecting (starting secondary connections)",
        100 => "connected",
        110 => "deactivating",
        120 => "connection failed",
        _ => "unknown",
    }
}

/// `NMActiveConnectionState`.
pub fn ac_state(v: u32) -> &'static str {
    match v {
        1 => "activating",
        2 => "activated",
        3 => "deactivating",
        4 => "deactivated",
        _ => "unknown",
    }
}

/// `NMDeviceType`, as nmcli names it (a veth is an ethernet to libnm, as in nmcli's `device`).
pub fn device_type(v: u32) -> &'static str {
    match v {
        1 => "ethernet",
        2 => "wifi",
        5 => "bt",
        8 => "gsm",
        9 => "infiniband",
        10 => "bond",
        11 => "vlan",
        12 => "adsl",
        13 => "bridge",
        14 => "generic",
        15 => "team",
        16 => "tun",
        17 => "ip-tunnel",
        18 => "macvlan",
        19 => "vxlan",
        20 => "ethernet",
        21 => "macsec",
        22 => "dummy",
        23 => "ppp",
        29 => "wireguard",
        30 => "wifi-p2p",
        31 => "vrf",
        32 => "loopback",
        _ => "unknown",
    }
}

/// `NMDeviceStateReason`, the reasons `monitor` and `device show` name (the rest by number).
pub fn device_reason(v: u32) -> String {
    let s = match v {
        0 => "no reason given",
        1 => "unknown error",
        2 => "device is now managed",
        3 => "device is now unmanaged",
        4 => "the device could not be readied for configuration",
        5 => "IP configuration could not be reserved",
        6 => "the IP configuration is no longer valid",
        15 => "DHCP client failed to start",
        16 => "DHCP client error",
        17 => "DHCP client failed",
        36 => "the device was removed",
        38 => "the device's active connection disappeared",
        39 => "device disconnected by user or client",
        40 => "carrier/link changed",
        41 => "the device's existing connection was assumed",
        54 => "a secondary connection of the base connection failed",
        _ => return format!("reason {v}"),
    };
    s.to_string()
}
