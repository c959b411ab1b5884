//! After a crash: what the journals of an earlier tinynmd name is removed from the kernel.

use super::{Journal, Netlink};

/// After a crash: removes what the journals in `dir` say an earlier tinynmd put in the kernel,
/// then the journals.
pub async fn recover(nl: &Netlink, dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if !p.extension().is_some_and(|x| x == "journal" || x == "tmp") {
            continue;
        }
        let (j, damage) = match std::fs::read(&p) {
            Ok(b) => Journal::from_bytes(&b),
            Err(e) => (Journal::default(), vec![format!("cannot read it: {e}")]),
        };
        let n = j.len();
        if !damage.is_empty() {
            // What can be read names objects tinynmd added: removing them is safe; what cannot
            // be read is said, so that nobody thinks the kernel is as it was.
            tracing::error!(
                "{}: damaged journal: {}; removing the {n} objects it still names",
                p.display(),
                damage.join("; ")
            );
        }
        let errors = nl.remove(&j).await;
        for err in &errors {
            tracing::error!("recovery from {}: {err}", p.display());
        }
        tracing::warn!(
            "removed {n} objects an earlier tinynmd left in the kernel ({})",
            p.display()
        );
        if let Err(err) = std::fs::remove_file(&p) {
            tracing::error!("cannot remove {}: {err}", p.display());
        }
    }
}
