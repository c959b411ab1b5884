//! The directives an import leaves out. nmcli drops every directive it does not know without a
//! word; tinynm names each in a warning with its line, except the ones a client needs nothing
//! for (NM's plugin passes its own equivalent), and refuses the few that make the file no
//! client configuration.

/// Left out without a warning: NM's OpenVPN plugin gives openvpn its own equivalent (or the
/// directive changes nothing for a client it runs).
const NEEDS_NOTHING: &[&str] = &[
    "pull",
    "nobind",
    "persist-key",
    "persist-tun",
    "verb",
    "mute",
    "mute-replay-warnings",
    "resolv-retry",
    "auth-nocache",
    "script-security",
    "explicit-exit-notify",
    "route-delay",
    "user",
    "group",
    "remote-cert-ku",
    "remote-cert-eku",
    "ncp-disable",
    "auth-retry",
    "status",
    "log",
    "log-append",
    "writepid",
    "daemon",
    "management",
    "management-query-passwords",
    "management-hold",
];

/// Left out with a warning saying what is lost.
const LOST: &[(&str, &str)] = &[
    (
        "redirect-gateway",
        "the default route follows the profile's ipv4.never-default (false: all traffic through the VPN, as nmcli imports it)",
    ),
    (
        "redirect-private",
        "the default route follows the profile's ipv4.never-default",
    ),
    (
        "block-outside-dns",
        "a Windows-only option; tinynm's kill switch (vpn.data tinynm-kill-switch=yes) blocks leaks",
    ),
    (
        "pull-filter",
        "NM's plugin takes what the server pushes as it is",
    ),
    (
        "route-nopull",
        "NM's plugin takes the server's routes; set ipv4.ignore-auto-routes instead",
    ),
    ("setenv", "NM's plugin sets openvpn's environment itself"),
    (
        "setenv-safe",
        "NM's plugin sets openvpn's environment itself",
    ),
    ("route-method", "a Windows-only option"),
    ("route-metric", "the profile's ipv4.route-metric sets it"),
    ("up", "scripts do not run: NM's plugin runs its own helper"),
    (
        "down",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    (
        "route-up",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    (
        "route-pre-down",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    (
        "ipchange",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    (
        "tls-verify",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    (
        "learn-address",
        "scripts do not run: NM's plugin runs its own helper",
    ),
    ("up-delay", "NM's plugin decides when the tunnel is up"),
    ("up-restart", "NM's plugin decides when the tunnel is up"),
    (
        "sndbuf",
        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
    ),
    (
        "rcvbuf",
        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
    ),
    (
        "tun-mtu-extra",
        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
    ),
    (
        "data-ciphers-fallback",
        "not an option NM's OpenVPN plugin 1.10 has (nmcli drops it too); set data-ciphers",
    ),
    (
        "ignore-unknown-option",
        "every unknown option is left out anyway, with a warning",
    ),
    ("auth-user-pass-verify", "a server's option"),
    ("inactive", "NM's plugin keeps the tunnel up"),
    (
        "hand-window",
        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
    ),
    (
        "tran-window",
        "not an option NM's OpenVPN plugin has (nmcli drops it too)",
    ),
    ("ifconfig-nowarn", "not needed"),
    ("dhcp-renew", "a Windows-only option"),
    ("dhcp-release", "a Windows-only option"),
    ("register-dns", "a Windows-only option"),
    ("win-sys", "a Windows-only option"),
    ("ip-win32", "a Windows-only option"),
    ("windows-driver", "a Windows-only option"),
];

/// Refused: the file is a server's configuration, not a client's.
const REFUSED: &[(&str, &str)] = &[
    (
        "server",
        "makes this a server's configuration: only client configurations are imported",
    ),
    (
        "server-bridge",
        "makes this a server's configuration: only client configurations are imported",
    ),
    (
        "tls-server",
        "makes this a server's configuration: only client configurations are imported",
    ),
    (
        "ifconfig-pool",
        "is a server's option: only client configurations are imported",
    ),
];

/// Why `dir` is left out: `Some("")` for a directive a client needs nothing for; `None` for one
/// not known at all.
pub fn why(dir: &str) -> Option<&'static str> {
    if NEEDS_NOTHING.contains(&dir) {
        return Some("");
    }
    LOST.iter().find(|(d, _)| *d == dir).map(|(_, w)| *w)
}

/// Why `dir` makes the file one not to import.
pub fn refused(dir: &str) -> Option<&'static str> {
    REFUSED.iter().find(|(d, _)| *d == dir).map(|(_, w)| *w)
}
