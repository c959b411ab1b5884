//! NM's VPN plugin description files (`.name`, spec §2): which program serves which service
//! type. Read by tinynmd's plugin registry and by `tinynm plugin-test`.

use std::path::{Path, PathBuf};

/// One plugin, as its `.name` file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// `[VPN Connection] name`
    pub name: String,
    /// `[VPN Connection] service`: the service type and base of the bus name.
    pub service: String,
    /// `[VPN Connection] program`: absolute path of the executable.
    pub program: PathBuf,
    /// `[VPN Connection] supports-multiple-connections`
    pub multiple: bool,
    /// `[VPN Connection] aliases`
    pub aliases: Vec<String>,
    /// The file it came from.
    pub file: PathBuf,
}

impl PluginInfo {
    /// The bus name for the active connection number `n` (spec §1).
    pub fn bus_name(&self, n: u64) -> String {
        if self.multiple {
            format!("{}.Connection_{n}", self.service)
        } else {
            self.service.clone()
        }
    }

    /// Whether this plugin serves a service type.
    pub fn serves(&self, service_type: &str) -> bool {
        self.service == service_type || self.aliases.iter().any(|a| a == service_type)
    }
}

fn glib_bool(v: &str) -> bool {
    matches!(v.trim(), "true" | "yes" | "1" | "True" | "TRUE")
}

/// Parses one `.name` file; `None` when NM's daemon would skip it (spec §2.1).
pub fn parse(text: &str, file: &Path) -> Option<PluginInfo> {
    let groups = crate::keyfile::parse_groups(text).ok()?;
    let g = groups.get("VPN Connection")?;
    let get = |k: &str| g.get(k).map(|v| v.trim());
    let name = get("name")?.to_string();
    let service = get("service")?.to_string();
    let program = PathBuf::from(get("program")?);
    if name.is_empty() || service.is_empty() || !program.is_absolute() {
        return None;
    }
    Some(PluginInfo {
        name,
        service,
        program,
        multiple: get("supports-multiple-connections").is_some_and(glib_bool),
        aliases: get("aliases")
            .map(|a| {
                a.split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        file: file.to_path_buf(),
    })
}
