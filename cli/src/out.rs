//! How `tinynm` prints: tables for people (aligned, a header, colour on a terminal), `-t` for
//! scripts (nmcli's terse form: no header, fields separated by `:`, a `:` or `\` in a value
//! escaped by `\`), `--json` (a stable schema: see docs/cli.md); and how it ends: an exit
//! code per cause, nmcli's where nmcli has one.

use std::io::IsTerminal;

/// The output options every command takes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Out {
    /// `--json`.
    pub json: bool,
    /// `-t`/`--terse`.
    pub terse: bool,
    /// Colour on stdout (`--color`, `NO_COLOR`, whether stdout is a terminal).
    pub color: bool,
}

/// `--color`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Color {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether a stream (stdout or stderr) gets colour.
    pub fn on(self, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// For stdout.
    pub fn stdout(self) -> bool {
        self.on(std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub fn stderr(self) -> bool {
        self.on(std::io::stderr().is_terminal())
    }
}

/// The exit codes (`tinynm(1)`, EXIT STATUS): nmcli's numbers, and 11 for what nmcli has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// 1: any other error.
    Unknown = 1,
    /// 2: a wrong invocation or an ambiguous name.
    Usage = 2,
    /// 3: `--wait` or `--timeout` ran out.
    Timeout = 3,
    /// 4: the activation failed.
    Activation = 4,
    /// 5: the deactivation failed (or the connection was not active).
    Deactivation = 5,
    /// 6: disconnecting a device failed.
    DeviceDisconnect = 6,
    /// 7: deleting a profile failed.
    Delete = 7,
    /// 8: no tinynmd (or NetworkManager) on the bus.
    NotRunning = 8,
    /// 10: no such profile, device or active connection.
    NotFound = 10,
    /// 11: the daemon refused: not authorized.
    Permission = 11,
}

impl Exit {
    /// Its name in `--json` errors.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Unknown => "error",
            Exit::Usage => "usage",
            Exit::Timeout => "timeout",
            Exit::Activation => "activation-failed",
            Exit::Deactivation => "deactivation-failed",
            Exit::DeviceDisconnect => "disconnect-failed",
            Exit::Delete => "delete-failed",
            Exit::NotRunning => "not-running",
            Exit::NotFound => "not-found",
            Exit::Permission => "permission-denied",
        }
    }
}

/// An error that says which exit code it ends with.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Fail {
    pub exit: Exit,
    pub msg: String,
}

/// A context that makes the error it wraps end with `exit`.
pub fn because(exit: Exit, msg: impl Into<String>) -> Fail {
    Fail {
        exit,
        msg: msg.into(),
    }
}

/// An error ending with `exit`.
pub fn fail(exit: Exit, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Fail {
        exit,
        msg: msg.into(),
    })
}

/// A failed D-Bus call as an error ending with `exit`, unless its D-Bus error says more (no
/// daemon, not authorized, a timeout).
pub fn call_failed(err: zbus::Error, exit: Exit, msg: String) -> anyhow::Error {
    let exit = of_dbus(&err).unwrap_or(exit);
    anyhow::Error::new(err).context(Fail { exit, msg })
}

/// Which exit code an error ends with: a [`Fail`] (the error or a context of it) says; else
/// the D-Bus error's name (no daemon, access denied, a timeout); else 1.
pub fn classify(e: &anyhow::Error) -> Exit {
    if let Some(f) = e.downcast_ref::<Fail>() {
        return f.exit;
    }
    if let Some(f) = e.chain().find_map(|c| c.downcast_ref::<Fail>()) {
        return f.exit;
    }
    for c in e.chain() {
        if let Some(x) = c.downcast_ref::<zbus::Error>().and_then(of_dbus) {
            return x;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Exit::Timeout;
            }
            if matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) {
                return Exit::NotRunning;
            }
        }
    }
    Exit::Unknown
}

fn of_dbus(z: &zbus::Error) -> Option<Exit> {
    let name = match z {
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        zbus::Error::FDO(f) => match **f {
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                return Some(Exit::NotRunning);
            }
            zbus::fdo::Error::AccessDenied(_) | zbus::fdo::Error::AuthFailed(_) => {
                return Some(Exit::Permission);
            }
            zbus::fdo::Error::UnknownObject(_) => return Some(Exit::NotFound),
            zbus::fdo::Error::Timeout(_) | zbus::fdo::Error::NoReply(_) => {
                return Some(Exit::Timeout);
            }
            _ => return None,
        },
        zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            return Some(Exit::Timeout);
        }
        zbus::Error::InputOutput(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Some(Exit::NotRunning);
        }
        _ => return None,
    };
    match name.as_str() {
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => Some(Exit::NotRunning),
        "org.freedesktop.DBus.Error.AccessDenied" => Some(Exit::Permission),
        "org.freedesktop.DBus.Error.UnknownObject" => Some(Exit::NotFound),
        "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
            Some(Exit::Timeout)
        }
        n if n.ends_with(".PermissionDenied") => Some(Exit::Permission),
        n if n.ends_with(".UnknownConnection") || n.ends_with(".UnknownDevice") => {
            Some(Exit::NotFound)
        }
        _ => None,
    }
}

/// Rows under named columns, printed for people, for scripts or as JSON objects whose keys are
/// the column names in lower case.
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// The column whose values are states, coloured on a terminal.
    pub state_column: Option<usize>,
}

impl Table {
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
            state_column: None,
        }
    }

    pub fn row(&mut self, r: Vec<String>) {
        debug_assert_eq!(r.len(), self.columns.len());
        self.rows.push(r);
    }

    /// The rows as JSON objects.
    pub fn json(&self) -> serde_json::Value {
        self.rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.to_ascii_lowercase(), serde_json::Value::from(v.as_str())))
                    .collect::<serde_json::Map<_, _>>()
            })
            .collect()
    }

    /// Prints in the form `out` asks for.
    pub fn print(&self, out: Out) {
        print!("{}", self.render(out));
    }

    pub fn render(&self, out: Out) -> String {
        if out.json {
            return format!("{}\n", serde_json::to_string_pretty(&self.json()).unwrap());
        }
        let mut s = String::new();
        if out.terse {
            for r in &self.rows {
                let fields: Vec<String> = r.iter().map(|v| terse_escape(v)).collect();
                s += &fields.join(":");
                s.push('\n');
            }
            return s;
        }
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.columns[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let last = self.columns.len().saturating_sub(1);
        let line = |cells: &[String], colour: bool| {
            let mut l = String::new();
            for (i, v) in cells.iter().enumerate() {
                let pad = if i == last {
                    String::new()
                } else {
                    " ".repeat(widths[i] - v.chars().count() + 2)
                };
                if colour && Some(i) == self.state_column {
                    l += &paint(v);
                } else {
                    l += v;
                }
                l += &pad;
            }
            l.trim_end().to_string() + "\n"
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
        s += &line(&header, false);
        for r in &self.rows {
            s += &line(r, out.color);
        }
        s
    }
}

/// nmcli's terse escaping: `\` and `:` get a `\` before them.
pub fn terse_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace(':', "\\:")
}

/// A state in colour: green when up, yellow on the way, red when failed, grey when down.
pub fn paint(state: &str) -> String {
    let code = if state.starts_with("activated") || state.starts_with("connected") {
        "32"
    } else if state.contains("fail") {
        "1;31"
    } else if state.starts_with("activating")
        || state.starts_with("connecting")
        || state.starts_with("deactivating")
    {
        "33"
    } else if state == "--" || state.is_empty() {
        return state.to_string();
    } else {
        "2"
    };
    format!("\x1b[{code}m{state}\x1b[0m")
}

/// A property list (`device show`, `general status` in `-m multiline`'s form): `NAME: value`
/// lines for people, `NAME:value` for scripts, an object for JSON (same names, lower case).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.0 {
            let k = k.to_ascii_lowercase();
            // A numbered name (IP4.ADDRESS[1], [2]…) is a list under the bare name.
            match k.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
                Some((base, _)) => {
                    let e = m
                        .entry(base.to_string())
                        .or_insert_with(|| serde_json::json!([]));
                    if let serde_json::Value::Array(a) = e {
                        a.push(v.as_str().into());
                    }
                }
                None => {
                    m.insert(k, v.as_str().into());
                }
            }
        }
        serde_json::Value::Object(m)
    }

    pub fn render(&self, out: Out) -> String {
        if out.terse {
            return self
                .0
                .iter()
                .map(|(k, v)| format!("{k}:{}\n", terse_escape(v)))
                .collect();
        }
        let w = self.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
        self.0
            .iter()
            .map(|(k, v)| {
                format!(
                    "{:<w$}{}\n",
                    format!("{k}:"),
                    if v.is_empty() { "--" } else { v }
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terse_escapes_colons_and_backslashes() {
        assert_eq!(terse_escape(r"a:b\c"), r"a\:b\\c");
        let mut t = Table::new(&["NAME", "UUID"]);
        t.row(vec!["x:y".into(), "u".into()]);
        let s = t.render(Out {
            terse: true,
            ..Out::default()
        });
        assert_eq!(s, "x\\:y:u\n");
    }

    #[test]
    fn tables_align_and_json_uses_lower_case_keys() {
        let mut t = Table::new(&["NAME", "STATE"]);
        t.row(vec!["office".into(), "activated".into()]);
        t.row(vec!["x".into(), "--".into()]);
        let s = t.render(Out::default());
        assert_eq!(s, "NAME    STATE\noffice  activated\nx       --\n");
        assert_eq!(t.json()[0]["state"], "activated");
    }

    #[test]
    fn errors_keep_their_exit_code_under_context() {
        use anyhow::Context;
        let e: anyhow::Result<()> = Err(fail(Exit::NotFound, "no such"));
        let e = e.context("while doing x").unwrap_err();
        assert_eq!(classify(&e), Exit::NotFound);
        let z = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from(
                "org.freedesktop.NetworkManager.Settings.PermissionDenied",
            )
            .unwrap(),
            None,
            zbus::message::Message::method_call("/", "x")
                .build(&())
                .unwrap(),
        );
        assert_eq!(classify(&anyhow::Error::new(z)), Exit::Permission);
    }

    #[test]
    fn numbered_fields_become_lists_in_json() {
        let f = Fields(vec![
            ("IP4.ADDRESS[1]".into(), "a".into()),
            ("GENERAL.DEVICE".into(), "d".into()),
        ]);
        let j = f.json();
        assert_eq!(j["general.device"], "d");
        assert_eq!(j["ip4.address"], serde_json::json!(["a"]));
    }
}
