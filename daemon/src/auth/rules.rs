//! daemon.toml's `[authorization]` rules: `user:NAME`, `group:NAME`, `uid:N`, `gid:N` per
//! action; what is not listed is refused.

use std::collections::BTreeMap;

/// Whether the rules let `uid` do `action`.
pub fn allow(rules: &BTreeMap<String, Vec<String>>, uid: u32, action: &str) -> bool {
    let Some(who) = rules.get(action) else {
        return false;
    };
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let gids: Vec<u32> = match &user {
        Some(u) => {
            let name = std::ffi::CString::new(u.name.clone()).unwrap_or_default();
            nix::unistd::getgrouplist(&name, u.gid)
                .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_else(|_| vec![u.gid.as_raw()])
        }
        None => Vec::new(),
    };
    who.iter().any(|w| match w.split_once(':') {
        Some(("user", n)) => user.as_ref().is_some_and(|u| u.name == n),
        Some(("uid", n)) => n.parse() == Ok(uid),
        Some(("group", n)) => nix::unistd::Group::from_name(n)
            .ok()
            .flatten()
            .is_some_and(|g| gids.contains(&g.gid.as_raw())),
        Some(("gid", n)) => n.parse().is_ok_and(|g: u32| gids.contains(&g)),
        _ => false,
    })
}
