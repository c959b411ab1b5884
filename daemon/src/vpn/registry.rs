//! The VPN plugin registry: NM's `.name` files (spec §2).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

pub use tinynm_config::namefile::{PluginInfo, parse};

/// NM's file filter: a regular file owned by root, not group/other-writable, not setuid.
fn acceptable(meta: &std::fs::Metadata) -> bool {
    meta.is_file() && meta.uid() == 0 && meta.mode() & 0o022 == 0 && meta.mode() & 0o4000 == 0
}

/// Loads every acceptable `.name` file from `dirs`, in NM's order: directories in the order
/// given, newest first within one, the first of two conflicting files winning.
pub fn load(dirs: &[PathBuf]) -> Vec<PluginInfo> {
    let mut out: Vec<PluginInfo> = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<(SystemTime, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "name"))
            .filter_map(|p| {
                let m = std::fs::metadata(&p).ok()?;
                if !acceptable(&m) {
                    tracing::debug!("{}: ignored (ownership or permissions)", p.display());
                    return None;
                }
                let t = m
                    .modified()
                    .ok()
                    .max(m.created().ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                Some((t, p))
            })
            .collect();
        files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, f) in files {
            let Some(info) = std::fs::read_to_string(&f).ok().and_then(|t| parse(&t, &f)) else {
                tracing::debug!("{}: ignored (not a daemon plugin description)", f.display());
                continue;
            };
            if out
                .iter()
                .any(|o| o.name == info.name || o.service == info.service)
            {
                tracing::debug!("{}: ignored (conflicts with a loaded plugin)", f.display());
                continue;
            }
            out.push(info);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_debian_openvpn_name_file() {
        let text = "[VPN Connection]\nname=openvpn\nservice=org.freedesktop.NetworkManager.openvpn\nprogram=/usr/lib/NetworkManager/nm-openvpn-service\nsupports-multiple-connections=true\n\n[libnm]\nplugin=libnm-vpn-plugin-openvpn.so\n\n[GNOME]\nauth-dialog=/usr/lib/NetworkManager/nm-openvpn-auth-dialog\nsupports-hints=true\n";
        let p = parse(text, Path::new("x.name")).unwrap();
        assert_eq!(p.name, "openvpn");
        assert!(p.multiple);
        assert_eq!(
            p.bus_name(4),
            "org.freedesktop.NetworkManager.openvpn.Connection_4"
        );
        assert!(parse("[VPN Connection]\nname=x\nservice=y\n", Path::new("x")).is_none());
        assert!(
            parse(
                "[VPN Connection]\nname=x\nservice=y\nprogram=rel/path\n",
                Path::new("x")
            )
            .is_none()
        );
    }

    #[test]
    fn directory_order_and_conflicts() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let f = |d: &Path, n: &str, name: &str, prog: &str| {
            std::fs::write(
                d.join(n),
                format!("[VPN Connection]\nname={name}\nservice=org.x.{name}\nprogram={prog}\n"),
            )
            .unwrap();
        };
        f(d1.path(), "a.name", "one", "/bin/first");
        f(d2.path(), "b.name", "one", "/bin/second");
        f(d2.path(), "c.name", "two", "/bin/two");
        f(d2.path(), "c.txt", "three", "/bin/three");
        let all = load(&[d1.path().to_path_buf(), d2.path().to_path_buf()]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].program, PathBuf::from("/bin/first"));
        assert!(all.iter().any(|p| p.serves("org.x.two")));
    }
}
