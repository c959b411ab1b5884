//! `tinynm connection add`, `modify` and `delete`.

use anyhow::Context;
use clap::Args;
use tinynm_client::{SettingsConnectionProxy, SettingsProxy};
use tinynm_config::Profile;

use super::{find, json_of, key_value, yes_no};
use crate::out::{Exit, Out};

/// `tinynm connection add`
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The profile's name (connection.id).
    #[arg(long)]
    pub name: String,
    /// The plugin's service, e.g. org.freedesktop.NetworkManager.openvpn.
    #[arg(long, value_name = "SERVICE")]
    pub vpn_type: String,
    /// A vpn.data item (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub data: Vec<(String, String)>,
    /// A vpn.secrets item (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub secret: Vec<(String, String)>,
    /// Activate on start-up.
    #[arg(long, value_name = "yes|no", value_parser = yes_no, default_value = "no")]
    pub autoconnect: bool,
    /// Keep the profile in memory only.
    #[arg(long)]
    pub unsaved: bool,
    /// Visible to you alone (connection.permissions user:YOU); changing it then needs
    /// settings.modify.own rather than settings.modify.system.
    #[arg(long)]
    pub private: bool,
}

/// `tinynm connection add`.
pub async fn run_add(conn: &zbus::Connection, a: AddArgs, out: Out) -> anyhow::Result<()> {
    let AddArgs {
        name,
        vpn_type,
        data,
        secret,
        autoconnect,
        unsaved,
        private,
    } = a;
    let mut p = Profile::new_vpn(&name, &uuid::Uuid::new_v4().to_string(), &vpn_type);
    p.connection.autoconnect = autoconnect;
    if private {
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())?
            .context("who am I? (no user for this uid)")?;
        p.connection.permissions = vec![format!("user:{}", me.name)];
    }
    p.vpn.data.extend(data);
    p.vpn.secrets.extend(secret);
    p.validate().map_err(|e| {
        anyhow::Error::new(e).context(crate::out::because(Exit::Usage, "the profile is not valid"))
    })?;
    let settings = SettingsProxy::new(conn).await?;
    let d = tinynm_config::dbus::to_dict(&p, true);
    let path = if unsaved {
        settings.add_connection_unsaved(d).await
    } else {
        settings.add_connection(d).await
    }
    .with_context(|| format!("cannot add '{name}'"))?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&json_of(&path, &p))?);
    } else {
        println!(
            "Connection '{name}' ({}) successfully added.",
            p.connection.uuid
        );
    }
    Ok(())
}

/// `tinynm connection modify`
#[derive(Args, Debug)]
pub struct ModifyArgs {
    /// id or UUID.
    pub id: String,
    /// Adds or replaces a vpn.data item (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub data: Vec<(String, String)>,
    /// Removes a vpn.data item (repeatable).
    #[arg(long, value_name = "KEY")]
    pub remove_data: Vec<String>,
    /// Sets the vpn.secrets (repeatable; replaces the stored secrets, as NM's Update does).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub secret: Vec<(String, String)>,
    /// Activate on start-up.
    #[arg(long, value_name = "yes|no", value_parser = yes_no)]
    pub autoconnect: Option<bool>,
    /// No IPv4 default route through the VPN.
    #[arg(long, value_name = "yes|no", value_parser = yes_no)]
    pub never_default: Option<bool>,
}

/// `tinynm connection modify`.
pub async fn run_modify(conn: &zbus::Connection, a: ModifyArgs, out: Out) -> anyhow::Result<()> {
    let ModifyArgs {
        id,
        data,
        remove_data,
        secret,
        autoconnect,
        never_default,
    } = a;
    let (path, mut p) = find(conn, &id).await?;
    for k in &remove_data {
        if p.vpn.data.remove(k).is_none() {
            return Err(crate::out::fail(
                Exit::Usage,
                format!("'{}' has no vpn.data item '{k}'", p.connection.id),
            ));
        }
    }
    p.vpn.data.extend(data);
    if let Some(a) = autoconnect {
        p.connection.autoconnect = a;
    }
    if let Some(n) = never_default {
        p.ipv4.never_default = n;
    }
    p.validate().map_err(|e| {
        anyhow::Error::new(e).context(crate::out::because(Exit::Usage, "the profile is not valid"))
    })?;
    // Without secrets tinynmd keeps the stored ones; given ones replace them.
    let with_secrets = !secret.is_empty();
    p.vpn.secrets.extend(secret);
    let c = SettingsConnectionProxy::builder(conn)
        .path(path.clone())
        .build()
        .await?;
    c.update(tinynm_config::dbus::to_dict(&p, with_secrets))
        .await
        .with_context(|| format!("cannot modify '{}'", p.connection.id))?;
    p.vpn.secrets.clear();
    if out.json {
        println!("{}", serde_json::to_string_pretty(&json_of(&path, &p))?);
    } else {
        println!(
            "Connection '{}' ({}) successfully modified.",
            p.connection.id, p.connection.uuid
        );
    }
    Ok(())
}

/// `tinynm connection delete`
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// id or UUID.
    pub id: String,
}

/// `tinynm connection delete`.
pub async fn run_delete(conn: &zbus::Connection, a: DeleteArgs, out: Out) -> anyhow::Result<()> {
    let DeleteArgs { id } = a;
    let (path, p) = find(conn, &id).await?;
    let c = SettingsConnectionProxy::builder(conn)
        .path(path.clone())
        .build()
        .await?;
    c.delete().await.map_err(|err| {
        crate::out::call_failed(
            err,
            Exit::Delete,
            format!("cannot delete '{}'", p.connection.id),
        )
    })?;
    if out.json {
        let v = serde_json::json!({"id": p.connection.id, "uuid": p.connection.uuid, "path": path.as_str(), "deleted": true});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Connection '{}' ({}) successfully deleted.",
            p.connection.id, p.connection.uuid
        );
    }
    Ok(())
}
