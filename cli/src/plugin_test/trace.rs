//! `--trace FILE`: every message on the world's private bus (the bench's calls and the
//! plugin's replies and signals, the bus driver's part too), one JSON object per line, from a
//! monitor connection (`BecomeMonitor`). Secrets are redacted, as NM's own traces do.

use std::io::Write;

use zbus::Variant;
use zbus::fdo::MonitoringProxy;

use super::*;

/// The monitor: it writes until dropped.
pub(super) struct Trace {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Trace {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts writing every message on `bus` to `file` (created or truncated).
pub(super) async fn start(bus: &Bus, file: &Path) -> anyhow::Result<Trace> {
    let out = std::fs::File::create(file)
        .with_context(|| format!("--trace: cannot write {}", file.display()))?;
    let conn = bus.connect().await?;
    let me = conn
        .unique_name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    MonitoringProxy::new(&conn)
        .await?
        .become_monitor(&[], 0)
        .await
        .context("--trace: the bus refused a monitor")?;
    let mut stream = MessageStream::from(&conn);
    let t0 = Instant::now();
    let task = tokio::spawn(async move {
        let _conn = conn;
        let mut out = std::io::LineWriter::new(out);
        while let Some(Ok(m)) = stream.next().await {
            let line = record(&m, t0.elapsed(), &me);
            if let Some(line) = line {
                let _ = writeln!(out, "{line}");
            }
        }
    });
    Ok(Trace { task })
}

/// One message as a JSON object; `None` for the monitor's own traffic.
fn record(m: &zbus::Message, at: Duration, me: &str) -> Option<serde_json::Value> {
    let h = m.header();
    let s = |x: Option<String>| x.map(serde_json::Value::String).unwrap_or_default();
    let sender = h.sender().map(|x| x.to_string());
    let destination = h.destination().map(|x| x.to_string());
    if sender.as_deref() == Some(me) || destination.as_deref() == Some(me) {
        return None;
    }
    let kind = match m.message_type() {
        zbus::message::Type::MethodCall => "call",
        zbus::message::Type::MethodReturn => "return",
        zbus::message::Type::Error => "error",
        zbus::message::Type::Signal => "signal",
    };
    let body = m.body();
    let signature = body.signature().to_string();
    let args = if signature.is_empty() {
        serde_json::Value::Array(Vec::new())
    } else {
        match body.deserialize::<zbus::wire::Structure<'_>>() {
            Ok(st) => {
                serde_json::Value::Array(st.fields().iter().map(|v| json(v, false)).collect())
            }
            Err(e) => serde_json::Value::String(format!("(undecodable: {e})")),
        }
    };
    Some(serde_json::json!({
        "ms": (at.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "type": kind,
        "serial": m.primary_header().serial_num().get(),
        "reply_serial": h.reply_serial().map(|x| x.get()),
        "sender": s(sender),
        "destination": s(destination),
        "path": s(h.path().map(|x| x.to_string())),
        "interface": s(h.interface().map(|x| x.to_string())),
        "member": s(h.member().map(|x| x.to_string())),
        "error": s(h.error_name().map(|x| x.to_string())),
        "signature": signature,
        "args": args,
    }))
}

/// A D-Bus value as JSON: numbers, strings, arrays, objects (dict keys as strings); the
/// values of a dict under the key `secrets` redacted.
fn json(v: &Variant<'_>, redact: bool) -> serde_json::Value {
    use serde_json::Value as J;
    if redact {
        return J::String("<redacted>".into());
    }
    match v {
        Variant::U8(x) => J::from(*x),
        Variant::Bool(x) => J::from(*x),
        Variant::I16(x) => J::from(*x),
        Variant::U16(x) => J::from(*x),
        Variant::I32(x) => J::from(*x),
        Variant::U32(x) => J::from(*x),
        Variant::I64(x) => J::from(*x),
        Variant::U64(x) => J::from(*x),
        Variant::F64(x) => J::from(*x),
        Variant::Str(x) => J::from(x.as_str()),
        Variant::Signature(x) => J::from(x.to_string()),
        Variant::ObjectPath(x) => J::from(x.as_str()),
        Variant::Variant(x) => json(x, false),
        Variant::Array(a) => J::Array(a.inner().iter().map(|x| json(x, false)).collect()),
        Variant::Dict(d) => {
            let mut o = serde_json::Map::new();
            for (k, val) in d.iter() {
                let key = match k {
                    Variant::Str(s) => s.as_str().to_string(),
                    other => json(other, false).to_string(),
                };
                let hide = key == "secrets";
                o.insert(key, redact_all(val, hide));
            }
            J::Object(o)
        }
        Variant::Structure(st) => J::Array(st.fields().iter().map(|x| json(x, false)).collect()),
        #[cfg(unix)]
        Variant::Fd(_) => J::from("(fd)"),
    }
}

/// `v`, or under `secrets`, `v`'s keys with every value redacted.
fn redact_all(v: &Variant<'_>, hide: bool) -> serde_json::Value {
    if !hide {
        return json(v, false);
    }
    match v {
        Variant::Variant(x) => redact_all(x, true),
        Variant::Dict(d) => serde_json::Value::Object(
            d.iter()
                .map(|(k, x)| {
                    let key = match k {
                        Variant::Str(s) => s.as_str().to_string(),
                        other => json(other, false).to_string(),
                    };
                    (key, json(x, true))
                })
                .collect(),
        ),
        other => json(other, true),
    }
}
