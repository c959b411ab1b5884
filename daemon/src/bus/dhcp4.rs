//! `org.freedesktop.NetworkManager.DHCP4Config`: a DHCP activation's lease as NM's internal
//! client shows it (`Options`, every value a string), one object per activation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use zbus::{OwnedObjectPath, OwnedVariant, Variant};

use super::export::Exporter;
use super::objects::Iface;
use crate::state::paths::DHCP4_PREFIX;

/// A lease's options: NM's names (`ip_address`, `routers`, `requested_subnet_mask`…) → value.
pub type Options = BTreeMap<String, String>;

/// The DHCP4Config object.
pub struct Dhcp4ConfigView {
    /// The options as the activation last had them (empty until the first lease).
    pub options: watch::Receiver<Arc<Options>>,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager.DHCP4Config")]
impl Dhcp4ConfigView {
    #[zbus(property)]
    fn options(&self) -> HashMap<String, OwnedVariant> {
        self.options
            .borrow()
            .iter()
            .map(|(k, v)| {
                let v = Variant::from(v.as_str())
                    .try_into_owned()
                    .expect("a string holds no fd");
                (k.clone(), v)
            })
            .collect()
    }
}

/// An exported DHCP4Config object; dropped by [`Exporter::unexport_dhcp4`].
pub struct Dhcp4Object {
    /// Its path.
    pub path: OwnedObjectPath,
    options: watch::Sender<Arc<Options>>,
}

impl Exporter {
    /// Exports a new DHCP4Config with no options yet (NM's, at IP_CONFIG).
    pub async fn export_dhcp4(&self) -> zbus::Result<Dhcp4Object> {
        let n = self.dhcp4_numbers.fetch_add(1, Ordering::Relaxed);
        let path = OwnedObjectPath::try_from(format!("{DHCP4_PREFIX}/{n}"))?;
        let (tx, rx) = watch::channel(Arc::new(Options::new()));
        self.serve(path.as_str(), Dhcp4ConfigView { options: rx })
            .await?;
        self.announce(path.as_str(), &[Iface::Dhcp4]).await?;
        Ok(Dhcp4Object { path, options: tx })
    }

    /// Replaces its options: one PropertiesChanged with all of them, as NM sends.
    pub async fn update_dhcp4(&self, o: &Dhcp4Object, options: Options) -> zbus::Result<()> {
        if **o.options.borrow() == options {
            return Ok(());
        }
        let all: HashMap<String, OwnedVariant> = options
            .iter()
            .map(|(k, v)| Ok((k.clone(), Variant::from(v.as_str()).try_into_owned()?)))
            .collect::<zbus::Result<_>>()?;
        o.options.send_replace(Arc::new(options));
        self.changed(
            o.path.as_str(),
            Iface::Dhcp4,
            vec![("Options", Variant::from(all))],
        )
        .await
    }

    /// Unexports it (InterfacesRemoved).
    pub async fn unexport_dhcp4(&self, o: Dhcp4Object) {
        self.withdraw(o.path.as_str(), &[Iface::Dhcp4]).await;
        self.unserve::<Dhcp4ConfigView>(o.path.as_str()).await;
    }
}
