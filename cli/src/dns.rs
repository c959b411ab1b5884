//! `tinynm dns explain NAME`.

/// `tinynm dns explain NAME`: the DnsManager's configuration in force, read as the resolver
/// will: the first server of the first entry (by dns-priority) is asked; a search domain the
/// name is under says which connection it belongs to.
pub async fn explain(
    conn: &zbus::Connection,
    name: &str,
    out: crate::out::Out,
) -> anyhow::Result<()> {
    type Entry = std::collections::HashMap<String, zbus::OwnedVariant>;
    let dns = zbus::Proxy::new(
        conn,
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager/DnsManager",
        "org.freedesktop.NetworkManager.DnsManager",
    )
    .await?;
    let mode: String = dns.get_property("Mode").await?;
    let rc: String = dns.get_property("RcManager").await?;
    let config: Vec<Entry> = dns.get_property("Configuration").await?;
    // tinynmd says beside the DnsManager why a change is not in force (a read-only
    // resolv.conf…); another NM has no such interface.
    let failed: String = match zbus::Proxy::new(
        conn,
        "org.tinynm",
        "/org/tinynm/DnsManager",
        "org.tinynm.DnsManager",
    )
    .await
    {
        Ok(p) => p.get_property("Error").await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let mut j = serde_json::json!({
        "name": name, "mode": mode, "rc-manager": rc,
        "not-in-force": if failed.is_empty() { serde_json::Value::Null } else { failed.clone().into() },
    });
    let mut lines = Vec::new();
    if !failed.is_empty() {
        lines.push(format!("the last DNS change is NOT in force: {failed}"));
    }
    let get = |e: &Entry, k: &str| e.get(k).and_then(|v| v.try_clone().ok());
    let strings = |e: &Entry, k: &str| -> Vec<String> {
        get(e, k)
            .and_then(|v| Vec::<String>::try_from(v).ok())
            .unwrap_or_default()
    };
    let iface_of = |e: &Entry| {
        get(e, "interface")
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default()
    };
    let prio_of = |e: &Entry| {
        get(e, "priority")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    let describe = |e: &Entry| format!("{} (dns-priority {})", iface_of(e), prio_of(e));
    if mode == "none" {
        lines.push(format!(
            "{name}: tinynmd puts no DNS in force (backend none, resolv.conf {rc}): the system's own resolver decides"
        ));
        j["server"] = serde_json::Value::Null;
    } else if let Some(first) = config.first() {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        let under = config.iter().find_map(|e| {
            strings(e, "domains")
                .into_iter()
                .find(|d| lower == *d || lower.ends_with(&format!(".{d}")))
                .map(|d| (e, d))
        });
        let servers = strings(first, "nameservers");
        let server = servers.first().cloned().unwrap_or_else(|| "?".into());
        lines.push(format!(
            "{name} goes to {server}: the first name server in force, from {}",
            describe(first)
        ));
        let then: Vec<String> = config[1..]
            .iter()
            .flat_map(|e| strings(e, "nameservers"))
            .collect();
        if config.len() > 1 {
            lines.push(format!(
                "  then, if it does not answer: {}",
                then.join(", ")
            ));
        }
        match &under {
            Some((e, d)) => lines.push(format!(
                "  {name} is under the search domain {d} of {}",
                describe(e)
            )),
            None => lines.push(format!("  no search domain in force covers {name}")),
        }
        let exclusive = prio_of(first) < 0;
        if exclusive {
            lines.push(
                "  a negative priority is exclusive: the system's own servers are not used".into(),
            );
        }
        j["server"] = server.into();
        j["interface"] = iface_of(first).into();
        j["priority"] = prio_of(first).into();
        j["then"] = then.into();
        j["search-domain"] = match under {
            Some((e, d)) => serde_json::json!({"domain": d, "interface": iface_of(e)}),
            None => serde_json::Value::Null,
        };
        j["exclusive"] = exclusive.into();
    } else {
        lines.push(format!(
            "{name}: no VPN's DNS is in force: the servers tinynmd found in resolv.conf answer"
        ));
        j["server"] = serde_json::Value::Null;
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the DNS tinynmd was asked to put in force is not in force: {failed}"
        ))
    }
}
