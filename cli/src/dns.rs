//! `tinynm dns explain NAME`.

/// `tinynm dns explain NAME`: the DnsManager's configuration in force, read as the resolver
/// will: the first server of the first entry (by dns-priority) is asked; a search domain the
/// name is under says which connection it belongs to.
pub async fn explain(conn: &zbus::Connection, name: &str) -> anyhow::Result<()> {
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
    let result = if failed.is_empty() {
        Ok(())
    } else {
        println!("the last DNS change is NOT in force: {failed}");
        Err(anyhow::anyhow!(
            "the DNS tinynmd was asked to put in force is not in force: {failed}"
        ))
    };
    if mode == "none" {
        println!(
            "{name}: tinynmd puts no DNS in force (backend none, resolv.conf {rc}): the system's own resolver decides"
        );
        return Ok(());
    }
    let get = |e: &Entry, k: &str| e.get(k).and_then(|v| v.try_clone().ok());
    let strings = |e: &Entry, k: &str| -> Vec<String> {
        get(e, k)
            .and_then(|v| Vec::<String>::try_from(v).ok())
            .unwrap_or_default()
    };
    let Some(first) = config.first() else {
        println!(
            "{name}: no VPN's DNS is in force: the servers tinynmd found in resolv.conf answer"
        );
        return result;
    };
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let under = config.iter().find_map(|e| {
        strings(e, "domains")
            .into_iter()
            .find(|d| lower == *d || lower.ends_with(&format!(".{d}")))
            .map(|d| (e, d))
    });
    let describe = |e: &Entry| {
        let iface = get(e, "interface")
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default();
        let prio = get(e, "priority")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0);
        format!("{iface} (dns-priority {prio})")
    };
    let servers = strings(first, "nameservers");
    let server = servers.first().cloned().unwrap_or_else(|| "?".into());
    println!(
        "{name} goes to {server}: the first name server in force, from {}",
        describe(first)
    );
    if config.len() > 1 {
        println!(
            "  then, if it does not answer: {}",
            config[1..]
                .iter()
                .flat_map(|e| strings(e, "nameservers"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match under {
        Some((e, d)) => println!("  {name} is under the search domain {d} of {}", describe(e)),
        None => println!("  no search domain in force covers {name}"),
    }
    if get(first, "priority")
        .and_then(|v| i32::try_from(v).ok())
        .is_some_and(|p| p < 0)
    {
        println!("  a negative priority is exclusive: the system's own servers are not used");
    }
    result
}
