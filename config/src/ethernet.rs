//! What a wired (`802-3-ethernet`) profile must be, beyond what every profile must be.

use crate::error::ProfileError;
use crate::profile::{Family, IpSection, Profile};

impl Profile {
    pub(crate) fn validate_ethernet(&self) -> Result<(), ProfileError> {
        if !self.vpn.service_type.is_empty() || !self.vpn.data.is_empty() {
            return Err(ProfileError::section("vpn", "is only for 'vpn' profiles"));
        }
        if let Some(e) = &self.ethernet {
            if let Some(m) = &e.mac_address
                && !is_mac(m)
            {
                return Err(ProfileError::key(
                    "ethernet",
                    "mac-address",
                    format!("'{m}' is not a MAC address (expected AA:BB:CC:DD:EE:FF)"),
                ));
            }
            if e.mtu > 65535 {
                return Err(ProfileError::key(
                    "ethernet",
                    "mtu",
                    format!("{} is out of range (expected 0 to 65535)", e.mtu),
                ));
            }
        }
        let methods: [(&IpSection, Family, &[&str]); 2] = [
            (&self.ipv4, Family::V4, &["auto", "manual", "disabled"]),
            (
                &self.ipv6,
                Family::V6,
                &["auto", "manual", "ignore", "disabled"],
            ),
        ];
        for (s, fam, allowed) in methods {
            let sec = fam.section();
            if !allowed.contains(&s.method.as_str()) {
                return Err(ProfileError::key(
                    sec,
                    "method",
                    format!(
                        "'{}' is not supported for an ethernet profile (expected one of: {})",
                        s.method.as_str(),
                        allowed.join(", ")
                    ),
                ));
            }
            if s.method.is("manual") && s.addresses.is_empty() {
                return Err(ProfileError::key(
                    sec,
                    "addresses",
                    "method 'manual' needs at least one address",
                ));
            }
            s.validate(fam)?;
        }
        Ok(())
    }
}

/// Whether `s` is a Linux interface name.
pub fn is_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Whether `s` is a MAC address, `AA:BB:CC:DD:EE:FF` (either case).
pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use crate::Profile;
    use crate::profile::IpMethod;

    const KEYFILE: &str = "[connection]\nid=uplink\nuuid=9d6b0f0e-0909-4a09-9009-b0a9c0d0e001\ntype=ethernet\ninterface-name=eth0\nautoconnect-priority=5\nsecondaries=9d6b0f0e-0909-4a09-9009-b0a9c0d0e009;\n\n[ethernet]\nmac-address=02:00:00:00:00:01\nmtu=1400\n\n[ipv4]\naddress1=10.230.0.10/24,10.230.0.1\ndns=10.230.0.53;\ndns-search=bar09.test;\nmethod=manual\n\n[ipv6]\naddr-gen-mode=eui64\nmethod=auto\n\n[proxy]\n";

    #[test]
    fn an_nm_keyfile_reads_and_round_trips_through_toml_and_dbus() {
        let p = crate::keyfile::from_keyfile_str(KEYFILE).unwrap().unwrap();
        assert!(p.is_ethernet());
        assert_eq!(p.connection.interface_name.as_deref(), Some("eth0"));
        assert_eq!(p.connection.autoconnect_priority, 5);
        assert_eq!(p.connection.secondaries.len(), 1);
        let e = p.ethernet.as_ref().unwrap();
        assert_eq!(e.mac_address.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(e.mtu, 1400);
        assert!(p.ipv4.method.is("manual"));
        assert_eq!(p.ipv4.addresses, vec![("10.230.0.10".parse().unwrap(), 24)]);
        assert_eq!(p.ipv4.gateway, Some("10.230.0.1".parse().unwrap()));
        assert_eq!(p.ipv6.method, IpMethod::Auto);
        let toml = crate::toml_profile::to_toml_string(&p);
        assert!(!toml.contains("[vpn]"), "{toml}");
        assert_eq!(crate::toml_profile::from_toml_str(&toml).unwrap(), p);
        let d = crate::dbus::to_dict(&p, false);
        assert!(d.contains_key("802-3-ethernet") && !d.contains_key("vpn"));
        assert_eq!(crate::dbus::from_dict(&d).unwrap(), p);
    }

    #[test]
    fn nmcli_style_dicts_use_address_data_when_the_legacy_form_is_empty() {
        let p = crate::keyfile::from_keyfile_str(KEYFILE).unwrap().unwrap();
        let mut d = crate::dbus::to_dict(&p, false);
        let ip4 = d.get_mut("ipv4").unwrap();
        ip4.insert("addresses".into(), crate::dbus::ov(Vec::<Vec<u32>>::new()));
        let back = crate::dbus::from_dict(&d).unwrap();
        assert_eq!(back.ipv4.addresses, p.ipv4.addresses);
        assert_eq!(back.ipv4.gateway, p.ipv4.gateway);
    }

    #[test]
    fn wrong_wired_settings_are_named() {
        let cases = [
            (
                KEYFILE.replace("address1=10.230.0.10/24,10.230.0.1\n", ""),
                "[ipv4] addresses: method 'manual' needs at least one address",
            ),
            (
                KEYFILE.replace("method=manual", "method=shared"),
                "[ipv4] method: 'shared' is not supported for an ethernet profile (expected one of: auto, manual, disabled)",
            ),
            (
                KEYFILE.replace("02:00:00:00:00:01", "02:00:00"),
                "[ethernet] mac-address: '02:00:00' is not a MAC address (expected AA:BB:CC:DD:EE:FF)",
            ),
            (
                KEYFILE.replace("interface-name=eth0", "interface-name=a/b"),
                "[connection] interface-name: 'a/b' is not an interface name (1 to 15 characters, no '/', ':' or space)",
            ),
            (
                KEYFILE.replace(
                    "secondaries=9d6b0f0e-0909-4a09-9009-b0a9c0d0e009;",
                    "secondaries=office;",
                ),
                "[connection] secondaries: 'office' is not the UUID of a VPN profile",
            ),
            (
                KEYFILE.replace("10.230.0.1\n", "fd00::1\n"),
                "[ipv4] gateway: fd00::1 is not an ipv4 address",
            ),
        ];
        for (text, want) in cases {
            let got = crate::keyfile::from_keyfile_str(&text).unwrap_err();
            assert_eq!(got.to_string(), want);
        }
        let mut p = Profile::new_ethernet("u", "9d6b0f0e-0909-4a09-9009-b0a9c0d0e001", None);
        p.vpn.service_type = "org.x".into();
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "[vpn]: is only for 'vpn' profiles"
        );
    }
}
