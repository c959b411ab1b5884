//! polkit's CheckAuthorization, with NM's action ids and the caller's bus name as subject.

use std::collections::HashMap;

use zbus::OwnedVariant;

use super::{Decision, PREFIX};

/// polkit's answer, when polkit is on the bus (`None` when it is not).
pub async fn decide(
    conn: &zbus::Connection,
    sender: Option<&str>,
    action: &str,
) -> Option<Decision> {
    let sender = sender?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    let name = "org.freedesktop.PolicyKit1".try_into().ok()?;
    if !dbus.name_has_owner(name).await.unwrap_or(false) {
        return None;
    }
    let subject: (&str, HashMap<&str, OwnedVariant>) = (
        "system-bus-name",
        HashMap::from([("name", zbus::Variant::from(sender).try_into_owned().ok()?)]),
    );
    let details: HashMap<&str, &str> = HashMap::new();
    let r = conn
        .call_method(
            Some("org.freedesktop.PolicyKit1"),
            "/org/freedesktop/PolicyKit1/Authority",
            Some("org.freedesktop.PolicyKit1.Authority"),
            "CheckAuthorization",
            &(subject, format!("{PREFIX}{action}"), details, 0u32, ""),
        )
        .await;
    match r {
        Ok(m) => {
            let (ok, challenge, _): (bool, bool, HashMap<String, String>) =
                m.body().deserialize().ok()?;
            Some(match (ok, challenge) {
                (true, _) => Decision::Yes,
                (false, true) => Decision::Auth,
                (false, false) => Decision::No,
            })
        }
        Err(e) => {
            tracing::warn!("polkit could not decide {PREFIX}{action}: {e}");
            Some(Decision::No)
        }
    }
}
