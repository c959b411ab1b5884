//! Distinct numbers for profiles, active connections and devices: each is the last element of
//! its object path, and none can be passed where another is meant.

use std::fmt;

use zbus::OwnedObjectPath;

use super::paths::{AC_PREFIX, DEVICE_PREFIX, SETTINGS_PATH};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// Its object path.
            pub fn path(self) -> OwnedObjectPath {
                OwnedObjectPath::try_from(format!("{}/{}", $prefix, self.0)).expect("valid path")
            }

            /// The id at the end of one of its object paths.
            #[allow(dead_code, reason = "not every kind is looked up by path")]
            pub fn of_path(path: &str) -> Option<Self> {
                path.strip_prefix($prefix)?
                    .strip_prefix('/')?
                    .parse()
                    .ok()
                    .map($name)
            }

            /// The id after this one.
            pub fn next(self) -> Self {
                $name(self.0 + 1)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A profile (`Settings/N`).
    ProfileId,
    SETTINGS_PATH
);
id!(
    /// An active connection (`ActiveConnection/N`; a VPN's plugin is `…Connection_N`).
    AcId,
    AC_PREFIX
);
id!(
    /// A device (`Devices/N`).
    DeviceId,
    DEVICE_PREFIX
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let p = AcId(7).path();
        assert_eq!(
            p.as_str(),
            "/org/freedesktop/NetworkManager/ActiveConnection/7"
        );
        assert_eq!(AcId::of_path(p.as_str()), Some(AcId(7)));
        assert_eq!(ProfileId::of_path(p.as_str()), None);
        assert_eq!(
            ProfileId::of_path("/org/freedesktop/NetworkManager/Settings/x"),
            None
        );
        assert_eq!(DeviceId(1).next(), DeviceId(2));
    }
}
