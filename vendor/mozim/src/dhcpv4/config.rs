// SPDX-License-Identifier: Apache-2.0

use crate::{mac::parse_mac, DhcpError, DhcpV4OptionCode, ErrorKind, ETH_ALEN};

// https://www.iana.org/assignments/arp-parameters/arp-parameters.xhtml#arp-parameters-2
const ARP_HW_TYPE_ETHERNET: u8 = 1;

// TODO: Support allow list and deny list for DHCP servers.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct DhcpV4Config {
    /// Interface to run DHCP against.
    pub iface_name: String,
    /// Interface index to run DHCP against.
    pub iface_index: u32,
    /// MAC address of interface or proxy.
    /// None means not set yet, need to resolve through netlink.
    pub(crate) src_mac: Option<[u8; ETH_ALEN]>,
    pub(crate) client_id: Vec<u8>,
    pub(crate) host_name: String,
    /// Whether acting as DHCP proxy(whether mozim should listen on DHCP reply
    /// not target for interface MAC address).
    pub is_proxy: bool,
    pub(crate) request_opts: Vec<DhcpV4OptionCode>,
    /// Timeout in seconds for getting/refreshing lease.
    /// 0 means infinitely.
    /// By default is wait infinitely.
    pub timeout_sec: u32,
    /// (tinynm) The longest random wait before the first DHCPDISCOVER, in
    /// milliseconds (RFC 2131 4.4.1's desynchronization). 200 by default.
    pub start_delay_max_ms: u64,
}

impl Default for DhcpV4Config {
    fn default() -> Self {
        Self {
            iface_name: String::new(),
            iface_index: 0,
            src_mac: None,
            client_id: Vec::new(),
            host_name: String::new(),
            is_proxy: false,
            timeout_sec: 0,
            start_delay_max_ms: 200,
            request_opts: vec![
                DhcpV4OptionCode::HostName,
                DhcpV4OptionCode::SubnetMask,
                DhcpV4OptionCode::Router,
                DhcpV4OptionCode::DomainNameServer,
                DhcpV4OptionCode::DomainName,
                DhcpV4OptionCode::InterfaceMtu,
                DhcpV4OptionCode::NtpServers,
                DhcpV4OptionCode::DomainSearch,
                DhcpV4OptionCode::ClasslessStaticRoute,
                DhcpV4OptionCode::MS_CLASSLESS_STATIC_ROUTE,
            ],
        }
    }
}

impl DhcpV4Config {
    pub fn new(iface_name: &str) -> Self {
        Self {
            iface_name: iface_name.to_string(),
            ..Default::default()
        }
    }

    pub fn set_iface_index(&mut self, index: u32) -> &mut Self {
        self.iface_index = index;
        self
    }

    pub fn set_iface_mac(&mut self, mac: &str) -> Result<&mut Self, DhcpError> {
        let src_mac = parse_mac(mac)?;
        self.set_iface_mac_raw(&src_mac)
    }

    pub fn set_iface_mac_raw(
        &mut self,
        mac: &[u8],
    ) -> Result<&mut Self, DhcpError> {
        if mac.len() != ETH_ALEN {
            return Err(DhcpError::new(
                ErrorKind::NotSupported,
                format!("Only support ethernet MAC address({ETH_ALEN} bytes)",),
            ));
        }
        let mut src_mac = [0u8; ETH_ALEN];
        src_mac.copy_from_slice(&mac[..ETH_ALEN]);
        self.src_mac = Some(src_mac);
        Ok(self)
    }

    pub(crate) fn need_resolve(&self) -> bool {
        self.iface_index == 0 || self.src_mac.is_none()
    }

    #[cfg(feature = "netlink")]
    pub(crate) async fn resolve(&mut self) -> Result<(), DhcpError> {
        if self.is_proxy {
            self.iface_index =
                crate::netlink::get_iface_index(&self.iface_name).await?;
        } else {
            let (iface_index, src_mac) =
                crate::netlink::get_iface_index_mac(&self.iface_name).await?;

            if src_mac.len() != ETH_ALEN {
                return Err(DhcpError::new(
                    ErrorKind::NotSupported,
                    format!(
                        "Interface {} is holding MAC address {:?} which is not
                    supported yet, only support MAC with {} u8",
                        self.iface_name, src_mac, ETH_ALEN,
                    ),
                ));
            } else {
                self.iface_index = iface_index;
                let mut tmp_src_mac = [0u8; ETH_ALEN];
                tmp_src_mac.copy_from_slice(&src_mac[..ETH_ALEN]);
                self.src_mac = Some(tmp_src_mac);
            }
        }
        Ok(())
    }

    #[cfg(not(feature = "netlink"))]
    pub(crate) async fn resolve(&mut self) -> Result<(), DhcpError> {
        Err(DhcpError::new(
            ErrorKind::InvalidArgument,
            format!(
                "Feature `netlink` not enabled, cannot resolve interface {} \
                 index and mac address, please set them manually",
                self.iface_name,
            ),
        ))
    }

    pub fn new_proxy(
        out_iface_name: &str,
        proxy_mac: &str,
    ) -> Result<Self, DhcpError> {
        let src_mac = parse_mac(proxy_mac)?;
        Ok(Self {
            iface_name: out_iface_name.to_string(),
            src_mac: Some(src_mac),
            is_proxy: true,
            ..Default::default()
        })
    }

    pub fn set_host_name(&mut self, host_name: &str) -> &mut Self {
        self.host_name = host_name.to_string();
        self
    }

    pub fn use_mac_as_client_id(&mut self) -> &mut Self {
        self.client_id = vec![ARP_HW_TYPE_ETHERNET];
        if let Some(src_mac) = self.src_mac.as_ref() {
            self.client_id.extend_from_slice(src_mac);
        }
        self
    }

    pub fn use_host_name_as_client_id(&mut self) -> &mut Self {
        if !self.host_name.is_empty() {
            // RFC 2132: 9.14. Client-identifier
            // Type 0 is used when not using hardware address
            // The RFC never mentioned the NULL terminator for string.
            // TODO: Need to check with dnsmasq implementation
            let host_name = self.host_name.clone();
            self.set_client_id(0, host_name.as_bytes());
        }
        self
    }

    /// Timeout in seconds for getting/refreshing lease.
    /// 0 means infinitely.
    /// By default is wait infinitely.
    /// (tinynm) Sets the longest random wait before the first DHCPDISCOVER,
    /// in milliseconds; 0 sends it at once.
    pub fn set_start_delay_max_ms(&mut self, ms: u64) -> &mut Self {
        self.start_delay_max_ms = ms;
        self
    }

    pub fn set_timeout_sec(&mut self, timeout_sec: u32) -> &mut Self {
        self.timeout_sec = timeout_sec;
        self
    }

    pub fn set_client_id(
        &mut self,
        client_id_type: u8,
        client_id: &[u8],
    ) -> &mut Self {
        // RFC 2132: 9.14. Client-identifier
        self.client_id = vec![client_id_type];
        self.client_id.extend_from_slice(client_id);
        self
    }

    /// By default, these DHCP options will be requested from DHCP server:
    /// * Hostname (12)
    /// * Subnet Mask (1)
    /// * Router (3)
    /// * Domain Name Server (6)
    /// * Domain Name (15)
    /// * Interface MTU (26)
    /// * NTP Servers (42)
    /// * Domain Search (119)
    /// * Classless Static Route (121)
    /// * Microsoft Classless Static Route (249)
    ///
    /// This function will append specified DHCP option to above list.
    pub fn request_extra_dhcp_opts(&mut self, opts: &[u8]) -> &mut Self {
        for opt in opts {
            self.request_opts.push((*opt).into());
        }
        self.request_opts.sort_unstable();
        self.request_opts.dedup();
        self
    }

    /// Specify arbitrary DHCP options to request.
    pub fn override_request_dhcp_opts(&mut self, opts: &[u8]) -> &mut Self {
        self.request_opts =
            opts.iter().map(|c| DhcpV4OptionCode::from(*c)).collect();
        self.request_opts.sort_unstable();
        self.request_opts.dedup();
        self
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const TEST_MAC: [u8; ETH_ALEN] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

    #[test]
    fn test_need_resolve_default() {
        let config = DhcpV4Config::new("eth1");
        assert!(config.need_resolve());
        assert_eq!(config.src_mac, None);
    }

    #[test]
    fn test_need_resolve_with_iface_index_only() {
        let mut config = DhcpV4Config::new("eth1");
        config.set_iface_index(2);
        // Without a MAC address, the client would run with an all-zero
        // chaddr, so resolving is still required.
        assert!(config.need_resolve());
    }

    #[test]
    fn test_need_resolve_with_mac_only() {
        let mut config = DhcpV4Config::new("eth1");
        config.set_iface_mac_raw(&TEST_MAC).unwrap();
        assert!(config.need_resolve());
        assert_eq!(config.src_mac, Some(TEST_MAC));
    }

    #[test]
    fn test_need_resolve_with_index_and_mac() {
        let mut config = DhcpV4Config::new("eth1");
        config.set_iface_index(2);
        config.set_iface_mac_raw(&TEST_MAC).unwrap();
        assert!(!config.need_resolve());
    }

    #[test]
    fn test_set_iface_mac() {
        let mut config = DhcpV4Config::new("eth1");
        config.set_iface_mac("01:02:2a:2c:f7:04").unwrap();
        assert_eq!(config.src_mac, Some([0x01, 0x02, 0x2a, 0x2c, 0xf7, 0x04]));
        let mut config = DhcpV4Config::new("eth1");
        assert!(config.set_iface_mac("01:02:2a:2c:f7").is_err());
        assert!(config.set_iface_mac("01:02:2a:2c:f7:04:05").is_err());
    }

    #[test]
    fn test_new_proxy_mac() {
        let config =
            DhcpV4Config::new_proxy("eth1", "01:02:2a:2c:f7:04").unwrap();
        assert!(config.is_proxy);
        assert_eq!(config.src_mac, Some([0x01, 0x02, 0x2a, 0x2c, 0xf7, 0x04]));
        assert!(DhcpV4Config::new_proxy("eth1", "01:02:2a:2c:f7").is_err());
        assert!(DhcpV4Config::new_proxy("eth1", "0g:02:2a:2c:f7:04").is_err());
    }
}
