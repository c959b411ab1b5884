// SPDX-License-Identifier: Apache-2.0

use std::{cmp::Ordering, collections::HashMap, net::Ipv6Addr};

use crate::{
    Buffer, BufferMut, DhcpError, DhcpV6Duid, DhcpV6OptionIaAddr,
    DhcpV6OptionIaNa, DhcpV6OptionIaPd, DhcpV6OptionIaPrefix, DhcpV6OptionIaTa,
    DhcpV6OptionStatus, ErrorContext, ErrorKind,
};

#[derive(Debug, PartialEq, Eq, Clone, Default)]
pub(crate) struct DhcpV6Options {
    data: HashMap<DhcpV6OptionCode, Vec<DhcpV6Option>>,
}

impl DhcpV6Options {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get_data_raw(&self, code: u16) -> Option<Vec<Vec<u8>>> {
        let mut ret: Vec<Vec<u8>> = Vec::new();
        if let Some(opts) = self.data.get(&DhcpV6OptionCode::from(code)) {
            for opt in opts {
                let mut buf = BufferMut::new();
                opt.emit(&mut buf);
                ret.push(buf.data);
            }
            Some(ret)
        } else {
            None
        }
    }

    pub(crate) fn get_first(
        &self,
        code: DhcpV6OptionCode,
    ) -> Option<&DhcpV6Option> {
        self.data
            .get(&code)
            .map(|opts| opts.as_slice())
            .and_then(|opts| opts.first())
    }

    pub(crate) fn insert(&mut self, opt: DhcpV6Option) {
        self.data.entry(opt.code()).or_default().push(opt);
    }

    pub(crate) fn remove(&mut self, code: DhcpV6OptionCode) {
        self.data.remove(&code);
    }

    pub(crate) fn parse(buf: &mut Buffer) -> Result<Self, DhcpError> {
        let mut ret = Self::new();
        while !buf.is_empty() {
            let remain_len = buf.remain_len();
            match DhcpV6Option::parse(buf) {
                Ok(opt) => {
                    ret.insert(opt);
                }
                Err(e) => {
                    log::info!(
                        "Ignore DHCPv6 option due to parsing error: {e}"
                    );
                    // Stop when the failed parsing did not consume any
                    // byte, otherwise this loop will never end on
                    // malformed data.
                    if buf.remain_len() == remain_len {
                        log::info!(
                            "Stop parsing DHCPv6 options due to malformed \
                             data: {:?}",
                            buf.get_remains()
                        );
                        break;
                    }
                }
            }
        }
        Ok(ret)
    }

    pub(crate) fn emit(&self, buf: &mut BufferMut) {
        let mut all_opts: Vec<&DhcpV6Option> = Vec::new();

        for opts in self.data.values() {
            for opt in opts {
                all_opts.push(opt);
            }
        }

        all_opts.sort_unstable();

        for opt in all_opts {
            opt.emit(buf);
        }
    }
}

const OPTION_CLIENTID: u16 = 1;
const OPTION_SERVERID: u16 = 2;
const OPTION_IA_NA: u16 = 3;
const OPTION_IA_TA: u16 = 4;
const OPTION_IAADDR: u16 = 5;
const OPTION_ORO: u16 = 6;
const OPTION_PREFERENCE: u16 = 7;
const OPTION_ELAPSED_TIME: u16 = 8;
const OPTION_UNICAST: u16 = 12;
const OPTION_STATUS_CODE: u16 = 13;
const OPTION_RAPID_COMMIT: u16 = 14;
const OPTION_DNS_SERVERS: u16 = 23;
const OPTION_DOMAIN_LIST: u16 = 24;
const OPTION_IA_PD: u16 = 25;
const OPTION_IAPREFIX: u16 = 26;
const OPTION_NTP_SERVER: u16 = 56;
const DNS_LABEL_MAX_LEN: usize = 63;
const DNS_NAME_MAX_LEN: usize = 255;
// A 255-octet name with 1-octet labels can contain at most 127
// labels, so 128 is the maximum possible loop count.
const DNS_MAX_LABELS: usize = 128;
// RFC 1035: a label length has its two high bits clear; when both high
// bits are set, the octet is a compression pointer (section 4.1.4).
const DNS_LABEL_LENGTH_MASK: u8 = 0xC0;

#[derive(Debug, PartialEq, Eq, Clone, Copy, Hash, Default)]
#[non_exhaustive]
pub enum DhcpV6OptionCode {
    #[default]
    ClientId,
    ServerId,
    IANA,
    IATA,
    IAPD,
    IAAddr,
    IAPrefix,
    OptionRequestOption,
    Preference,
    ElapsedTime,
    ServerUnicast,
    StatusCode,
    RapidCommit,
    DnsServers,
    DomainList,
    NtpServer,
    Other(u16),
}

impl From<DhcpV6OptionCode> for u16 {
    fn from(v: DhcpV6OptionCode) -> u16 {
        match v {
            DhcpV6OptionCode::ClientId => OPTION_CLIENTID,
            DhcpV6OptionCode::ServerId => OPTION_SERVERID,
            DhcpV6OptionCode::IANA => OPTION_IA_NA,
            DhcpV6OptionCode::IATA => OPTION_IA_TA,
            DhcpV6OptionCode::IAPD => OPTION_IA_PD,
            DhcpV6OptionCode::IAAddr => OPTION_IAADDR,
            DhcpV6OptionCode::IAPrefix => OPTION_IAPREFIX,
            DhcpV6OptionCode::OptionRequestOption => OPTION_ORO,
            DhcpV6OptionCode::Preference => OPTION_PREFERENCE,
            DhcpV6OptionCode::ElapsedTime => OPTION_ELAPSED_TIME,
            DhcpV6OptionCode::ServerUnicast => OPTION_UNICAST,
            DhcpV6OptionCode::StatusCode => OPTION_STATUS_CODE,
            DhcpV6OptionCode::RapidCommit => OPTION_RAPID_COMMIT,
            DhcpV6OptionCode::DnsServers => OPTION_DNS_SERVERS,
            DhcpV6OptionCode::DomainList => OPTION_DOMAIN_LIST,
            DhcpV6OptionCode::NtpServer => OPTION_NTP_SERVER,
            DhcpV6OptionCode::Other(d) => d,
        }
    }
}

impl From<u16> for DhcpV6OptionCode {
    fn from(d: u16) -> Self {
        match d {
            OPTION_CLIENTID => Self::ClientId,
            OPTION_SERVERID => Self::ServerId,
            OPTION_IA_NA => Self::IANA,
            OPTION_IA_TA => Self::IATA,
            OPTION_IA_PD => Self::IAPD,
            OPTION_IAADDR => Self::IAAddr,
            OPTION_IAPREFIX => Self::IAPrefix,
            OPTION_ORO => Self::OptionRequestOption,
            OPTION_PREFERENCE => Self::Preference,
            OPTION_ELAPSED_TIME => Self::ElapsedTime,
            OPTION_UNICAST => Self::ServerUnicast,
            OPTION_STATUS_CODE => Self::StatusCode,
            OPTION_RAPID_COMMIT => Self::RapidCommit,
            OPTION_DNS_SERVERS => Self::DnsServers,
            OPTION_DOMAIN_LIST => Self::DomainList,
            OPTION_NTP_SERVER => Self::NtpServer,
            _ => Self::Other(d),
        }
    }
}

impl Ord for DhcpV6OptionCode {
    fn cmp(&self, other: &Self) -> Ordering {
        u16::from(*self).cmp(&u16::from(*other))
    }
}

impl PartialOrd for DhcpV6OptionCode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for DhcpV6OptionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientId => write!(f, "OPTION_CLIENTID"),
            Self::ServerId => write!(f, "OPTION_SERVERID"),
            Self::IANA => write!(f, "OPTION_IA_NA"),
            Self::IATA => write!(f, "OPTION_IA_TA"),
            Self::IAPD => write!(f, "OPTION_IA_PD"),
            Self::IAAddr => write!(f, "OPTION_IAADDR"),
            Self::IAPrefix => write!(f, "OPTION_IAPREFIX"),
            Self::OptionRequestOption => write!(f, "OPTION_ORO"),
            Self::Preference => write!(f, "OPTION_PREFERENCE"),
            Self::ElapsedTime => write!(f, "OPTION_ELAPSED_TIME"),
            Self::ServerUnicast => write!(f, "OPTION_UNICAST"),
            Self::StatusCode => write!(f, "OPTION_STATUS_CODE"),
            Self::RapidCommit => write!(f, "OPTION_RAPID_COMMIT"),
            Self::DnsServers => write!(f, "OPTION_DNS_SERVERS"),
            Self::DomainList => write!(f, "OPTION_DOMAIN_LIST"),
            Self::NtpServer => write!(f, "OPTION_NTP_SERVER"),
            Self::Other(d) => write!(f, "Unknown({d})"),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DhcpV6Option {
    ClientId(DhcpV6Duid),
    ServerId(DhcpV6Duid),
    IANA(DhcpV6OptionIaNa),
    IATA(DhcpV6OptionIaTa),
    IAPD(DhcpV6OptionIaPd),
    OptionRequestOption(Vec<DhcpV6OptionCode>),
    IAAddr(DhcpV6OptionIaAddr),
    IAPrefix(DhcpV6OptionIaPrefix),
    Preference(u8),
    ElapsedTime(u16),
    ServerUnicast(Ipv6Addr),
    StatusCode(DhcpV6OptionStatus),
    RapidCommit,
    /// RFC 3646
    DnsServers(Vec<Ipv6Addr>),
    /// RFC 3646
    DomainList(Vec<String>),
    /// RFC 5908
    NtpServer(Vec<DhcpV6OptionNtpServer>),
    Unknown(DhcpV6OptionUnknown),
}

impl Default for DhcpV6Option {
    fn default() -> Self {
        Self::Unknown(DhcpV6OptionUnknown::default())
    }
}

impl Ord for DhcpV6Option {
    fn cmp(&self, other: &Self) -> Ordering {
        self.code().cmp(&other.code())
    }
}

impl PartialOrd for DhcpV6Option {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl DhcpV6Option {
    pub fn code(&self) -> DhcpV6OptionCode {
        match self {
            DhcpV6Option::ClientId(_) => DhcpV6OptionCode::ClientId,
            DhcpV6Option::ServerId(_) => DhcpV6OptionCode::ServerId,
            DhcpV6Option::IANA(_) => DhcpV6OptionCode::IANA,
            DhcpV6Option::IATA(_) => DhcpV6OptionCode::IATA,
            DhcpV6Option::OptionRequestOption(_) => {
                DhcpV6OptionCode::OptionRequestOption
            }
            DhcpV6Option::Preference(_) => DhcpV6OptionCode::Preference,
            DhcpV6Option::ElapsedTime(_) => DhcpV6OptionCode::ElapsedTime,
            DhcpV6Option::ServerUnicast(_) => DhcpV6OptionCode::ServerUnicast,
            DhcpV6Option::StatusCode(_) => DhcpV6OptionCode::StatusCode,
            DhcpV6Option::RapidCommit => DhcpV6OptionCode::RapidCommit,
            DhcpV6Option::DnsServers(_) => DhcpV6OptionCode::DnsServers,
            DhcpV6Option::DomainList(_) => DhcpV6OptionCode::DomainList,
            DhcpV6Option::IAPD(_) => DhcpV6OptionCode::IAPD,
            DhcpV6Option::NtpServer(_) => DhcpV6OptionCode::NtpServer,
            DhcpV6Option::IAAddr(_) => DhcpV6OptionCode::IAAddr,
            DhcpV6Option::IAPrefix(_) => DhcpV6OptionCode::IAPrefix,
            DhcpV6Option::Unknown(u) => u.code(),
        }
    }

    pub(crate) fn parse(buf: &mut Buffer) -> Result<DhcpV6Option, DhcpError> {
        let code: DhcpV6OptionCode = buf
            .peek_u16_be()
            .context("Invalid DHCPv6 option code")?
            .into();
        let len: usize = buf
            .peek_u16_be_offset(2)
            .context("Invalid DHCPv6 option length")?
            .into();
        let opt_raw = buf.get_bytes(len + 4).context(format!(
            "Invalid DHCPv6 option {code} with length {len}"
        ))?;
        let mut opt_buf = Buffer::new(opt_raw);

        Ok(match code {
            DhcpV6OptionCode::IAAddr => {
                Self::IAAddr(DhcpV6OptionIaAddr::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::IAPrefix => {
                Self::IAPrefix(DhcpV6OptionIaPrefix::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::ClientId => {
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                Self::ClientId(DhcpV6Duid::parse(&mut opt_buf, len)?)
            }
            DhcpV6OptionCode::ServerId => {
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                Self::ServerId(DhcpV6Duid::parse(&mut opt_buf, len)?)
            }
            DhcpV6OptionCode::IANA => {
                Self::IANA(DhcpV6OptionIaNa::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::IATA => {
                Self::IATA(DhcpV6OptionIaTa::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::IAPD => {
                Self::IAPD(DhcpV6OptionIaPd::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::OptionRequestOption => {
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                let mut opts: Vec<DhcpV6OptionCode> = Vec::new();
                for _ in 0..len / 2 {
                    opts.push(
                        opt_buf
                            .get_u16_be()
                            .context("Invalid DHCPv6 option OPTION_ORO")?
                            .into(),
                    );
                }
                Self::OptionRequestOption(opts)
            }
            DhcpV6OptionCode::Preference => Self::Preference({
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                opt_buf
                    .get_u8()
                    .context("Invalid DHCPv6 option OPTION_PREFERENCE")?
            }),
            DhcpV6OptionCode::ElapsedTime => Self::ElapsedTime({
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option OPTION_ELAPSED_TIME")?
            }),
            DhcpV6OptionCode::ServerUnicast => Self::ServerUnicast({
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                opt_buf
                    .get_ipv6()
                    .context("Invalid DHCPv6 option OPTION_UNICAST")?
            }),
            DhcpV6OptionCode::StatusCode => {
                Self::StatusCode(DhcpV6OptionStatus::parse(&mut opt_buf)?)
            }
            DhcpV6OptionCode::RapidCommit => {
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                Self::RapidCommit
            }
            DhcpV6OptionCode::DnsServers => {
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                let mut addrs = Vec::new();
                for _ in 0..len / 16 {
                    addrs.push(
                        opt_buf.get_ipv6().context(
                            "Invalid DHCPv6 option OPTION_DNS_SERVERS",
                        )?,
                    );
                }
                Self::DnsServers(addrs)
            }
            DhcpV6OptionCode::DomainList => {
                // RFC 1035: 3.1. Name space definitions
                //      Domain names in messages are expressed in terms of a
                //      sequence of labels.  Each label is represented as a one
                //      octet length field followed by that number of octets.
                //      Since every domain name ends with the null label of the
                //      root, a domain name is terminated by a length byte of
                //      zero.  The high order two bits of every length octet
                //      must be zero, and the remaining six bits of the length
                //      field limit the label to 63 octets or less.  When
                //      both high bits are set, the octet is a compression
                //      pointer to a prior occurrence (RFC 1035 section
                //      4.1.4).  RFC 8415 section 10 forbids compression in
                //      DHCPv6, but broken servers send it anyway.
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                let raw = opt_buf
                    .get_bytes(len)
                    .context("Invalid DHCPv6 option OPTION_DOMAIN_LIST")?;
                let mut tmp_opt_buf = Buffer::new(raw);
                let mut domains = Vec::new();
                while !tmp_opt_buf.is_empty() {
                    domains.push(
                        parse_domain_name(&mut tmp_opt_buf).context(
                            "Invalid DHCPv6 option OPTION_DOMAIN_LIST",
                        )?,
                    );
                }
                Self::DomainList(domains)
            }
            DhcpV6OptionCode::NtpServer => {
                // RFC 5908
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                let raw = opt_buf
                    .get_bytes(len)
                    .context("Invalid DHCPv6 option OPTION_NTP_SERVER")?;
                let mut tmp_opt_buf = Buffer::new(raw);
                let mut srvs: Vec<DhcpV6OptionNtpServer> = Vec::new();
                while !tmp_opt_buf.is_empty() {
                    srvs.push(DhcpV6OptionNtpServer::parse(&mut tmp_opt_buf)?);
                }
                Self::NtpServer(srvs)
            }
            DhcpV6OptionCode::Other(d) => Self::Unknown({
                opt_buf.get_u16_be().context("Invalid DHCPv6 option code")?;
                opt_buf
                    .get_u16_be()
                    .context("Invalid DHCPv6 option length")?;
                DhcpV6OptionUnknown {
                    code: d,
                    raw: opt_buf
                        .get_bytes(len)
                        .context(format!("Invalid DHCPv6 option {d}"))?
                        .to_vec(),
                }
            }),
        })
    }

    pub(crate) fn emit(&self, buf: &mut BufferMut) {
        match self {
            Self::ClientId(id) | Self::ServerId(id) => {
                let mut value_buf = BufferMut::new();
                id.emit(&mut value_buf);
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(value_buf.len() as u16);
                buf.write_bytes(value_buf.data.as_slice());
            }
            Self::IAAddr(v) => v.emit(buf),
            Self::IAPrefix(v) => v.emit(buf),
            Self::IANA(v) => v.emit(buf),
            Self::IATA(v) => v.emit(buf),
            Self::IAPD(v) => v.emit(buf),
            Self::OptionRequestOption(opts) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be((opts.len() * 2) as u16);
                for opt in opts {
                    buf.write_u16_be((*opt).into());
                }
            }
            Self::Preference(d) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(1);
                buf.write_u8(*d);
            }
            Self::ElapsedTime(d) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(2);
                buf.write_u16_be(*d);
            }
            Self::ServerUnicast(i) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(16);
                buf.write_ipv6(*i);
            }
            Self::StatusCode(v) => {
                v.emit(buf);
            }
            Self::RapidCommit => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(0);
            }
            Self::DnsServers(addrs) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be((addrs.len() * 16) as u16);
                for addr in addrs {
                    buf.write_ipv6(*addr);
                }
            }
            Self::DomainList(domains) => {
                let mut value_buf = BufferMut::new();
                for domain in domains {
                    write_domain_name(&mut value_buf, domain);
                }
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(value_buf.len() as u16);
                buf.write_bytes(value_buf.data.as_slice());
            }
            Self::NtpServer(srvs) => {
                let mut value_buf = BufferMut::new();
                for srv in srvs {
                    srv.emit(&mut value_buf);
                }
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(value_buf.len() as u16);
                buf.write_bytes(value_buf.data.as_slice());
            }
            Self::Unknown(v) => {
                buf.write_u16_be(self.code().into());
                buf.write_u16_be(v.raw.len() as u16);
                buf.write_bytes(v.raw.as_slice());
            }
        }
    }
}

fn parse_domain_name(buf: &mut Buffer) -> Result<String, DhcpError> {
    let data = buf.data();
    let mut pos = buf.pos();
    let mut labels = Vec::new();
    let mut name_len = 1usize; // The root label.
    let mut label_count = 0usize;
    // Pointers are resolved against the start of the value passed in via
    // `buf`, matching the option-data buffers used by the DHCPv6 options.
    // RFC 1035 section 4.1.4: pointers reference a prior occurrence, so
    // each jump must go strictly backwards. This also prevents loops.
    let mut jump_barrier = pos;
    let mut resume_pos = None;

    loop {
        if label_count >= DNS_MAX_LABELS {
            return Err(DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                format!("Domain name exceeds {DNS_MAX_LABELS} labels"),
            ));
        }
        if pos >= data.len() {
            return Err(DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                "Invalid domain name label length".to_string(),
            ));
        }
        let label_len = data[pos];
        pos += 1;

        if (label_len & DNS_LABEL_LENGTH_MASK) == DNS_LABEL_LENGTH_MASK {
            // RFC 1035 section 4.1.4 compression pointer.
            if pos >= data.len() {
                return Err(DhcpError::new(
                    ErrorKind::InvalidDhcpMessage,
                    "Invalid domain name pointer: missing offset".to_string(),
                ));
            }
            let pointer = (usize::from(label_len & !DNS_LABEL_LENGTH_MASK)
                << 8)
                | usize::from(data[pos]);
            pos += 1;
            if pointer >= jump_barrier {
                return Err(DhcpError::new(
                    ErrorKind::InvalidDhcpMessage,
                    format!(
                        "Invalid domain name pointer {pointer}: must point to \
                         a prior occurrence"
                    ),
                ));
            }
            jump_barrier = pointer;
            resume_pos.get_or_insert(pos);
            pos = pointer;
            continue;
        }

        if (label_len & DNS_LABEL_LENGTH_MASK) != 0 {
            return Err(DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                format!(
                    "Invalid domain name label length {label_len}: reserved \
                     encoding"
                ),
            ));
        }
        if label_len == 0 {
            break;
        }

        let label_len = usize::from(label_len);
        if pos + label_len > data.len() {
            return Err(DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                "Invalid domain name label: truncated".to_string(),
            ));
        }
        label_count += 1;
        name_len += 1 + label_len;
        if name_len > DNS_NAME_MAX_LEN {
            return Err(DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                format!("Domain name exceeds {DNS_NAME_MAX_LEN} octets"),
            ));
        }
        let label = &data[pos..pos + label_len];
        pos += label_len;
        let label = std::str::from_utf8(label).map_err(|e| {
            DhcpError::new(
                ErrorKind::InvalidDhcpMessage,
                format!("Domain name label is not valid UTF-8: {e}"),
            )
        })?;
        labels.push(label.to_string());
    }

    buf.set_pos(resume_pos.unwrap_or(pos));
    Ok(labels.join("."))
}

fn write_domain_name(buf: &mut BufferMut, domain: &str) {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        buf.write_u8(0);
        return;
    }
    for label in domain.split('.') {
        let label_len = label.len();
        if label_len == 0 || label_len > DNS_LABEL_MAX_LEN {
            log::warn!(
                "Ignore invalid domain name in DHCPv6 option: label length \
                 {label_len}"
            );
            buf.write_u8(0);
            return;
        }
        buf.write_u8(label_len as u8);
        buf.write_bytes(label.as_bytes());
    }
    buf.write_u8(0);
}

#[derive(Debug, PartialEq, Eq, Clone, Default)]
pub struct DhcpV6OptionUnknown {
    pub code: u16,
    pub raw: Vec<u8>,
}

impl DhcpV6OptionUnknown {
    pub fn code(&self) -> DhcpV6OptionCode {
        self.code.into()
    }
}

/// DHCPv6 Option for NTP Server
///
/// Defined by RFC 5908
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DhcpV6OptionNtpServer {
    ServerAddr(Ipv6Addr),
    MulticastAddr(Ipv6Addr),
    ServerFqdn(String),
    Other((u16, Vec<u8>)),
}

const NTP_SUBOPTION_SRV_ADDR: u16 = 1;
const NTP_SUBOPTION_MC_ADDR: u16 = 2;
const NTP_SUBOPTION_SRV_FQDN: u16 = 3;

impl DhcpV6OptionNtpServer {
    pub(crate) fn parse(buf: &mut Buffer) -> Result<Self, DhcpError> {
        let subopt_type = buf
            .get_u16_be()
            .context("Invalid OPTION_NTP_SERVER suboption")?;
        let subopt_len = buf
            .get_u16_be()
            .context("Invalid OPTION_NTP_SERVER suboption-len")?;
        Ok(match subopt_type {
            NTP_SUBOPTION_SRV_ADDR => {
                let raw = buf.get_bytes(subopt_len.into()).context(
                    "Invalid OPTION_NTP_SERVER NTP_SUBOPTION_SRV_ADDR",
                )?;
                if raw.len() != 16 {
                    return Err(DhcpError::new(
                        ErrorKind::InvalidDhcpMessage,
                        format!(
                            "Invalid NTP SRV_ADDR subopt_len {}, expected 16",
                            subopt_len
                        ),
                    ));
                }
                let mut octets = [0u8; 16];
                octets.copy_from_slice(raw);
                Self::ServerAddr(Ipv6Addr::from(octets))
            }
            NTP_SUBOPTION_MC_ADDR => {
                let raw = buf.get_bytes(subopt_len.into()).context(
                    "Invalid OPTION_NTP_SERVER NTP_SUBOPTION_MC_ADDR",
                )?;
                if raw.len() != 16 {
                    return Err(DhcpError::new(
                        ErrorKind::InvalidDhcpMessage,
                        format!(
                            "Invalid NTP MC_ADDR subopt_len {}, expected 16",
                            subopt_len
                        ),
                    ));
                }
                let mut octets = [0u8; 16];
                octets.copy_from_slice(raw);
                Self::MulticastAddr(Ipv6Addr::from(octets))
            }
            NTP_SUBOPTION_SRV_FQDN => Self::ServerFqdn({
                let raw = buf.get_bytes(subopt_len.into()).context(
                    "Invalid OPTION_NTP_SERVER NTP_SUBOPTION_SRV_FQDN",
                )?;
                let mut fqdn_buf = Buffer::new(raw);
                let fqdn = parse_domain_name(&mut fqdn_buf).context(
                    "Invalid OPTION_NTP_SERVER NTP_SUBOPTION_SRV_FQDN",
                )?;
                if !fqdn_buf.is_empty() {
                    return Err(DhcpError::new(
                        ErrorKind::InvalidDhcpMessage,
                        format!(
                            "Invalid NTP SRV_FQDN subopt_len {subopt_len}, \
                             trailing data after domain name"
                        ),
                    ));
                }
                fqdn
            }),
            _ => Self::Other((
                subopt_type,
                buf.get_bytes(subopt_len.into())
                    .context(format!(
                        "Invalid OPTION_NTP_SERVER {}",
                        subopt_type
                    ))?
                    .to_vec(),
            )),
        })
    }

    pub(crate) fn emit(&self, buf: &mut BufferMut) {
        match self {
            Self::ServerAddr(ip) => {
                buf.write_u16_be(NTP_SUBOPTION_SRV_ADDR);
                buf.write_u16_be(16);
                buf.write_ipv6(*ip);
            }
            Self::MulticastAddr(ip) => {
                buf.write_u16_be(NTP_SUBOPTION_MC_ADDR);
                buf.write_u16_be(16);
                buf.write_ipv6(*ip);
            }
            Self::ServerFqdn(name) => {
                let mut value_buf = BufferMut::new();
                write_domain_name(&mut value_buf, name);
                buf.write_u16_be(NTP_SUBOPTION_SRV_FQDN);
                buf.write_u16_be(value_buf.len() as u16);
                buf.write_bytes(value_buf.data.as_slice());
            }
            Self::Other((subopt_type, v)) => {
                buf.write_u16_be(*subopt_type);
                buf.write_u16_be(v.len() as u16);
                buf.write_bytes(v.as_slice());
            }
        }
    }
}

#[cfg(test)]
mod test {
    use std::{sync::mpsc, thread, time::Duration};

    use super::*;

    // Run `DhcpV6Options::parse()` in a thread guarded by a watchdog so
    // that a regression into the infinite loop on malformed data fails
    // the test instead of hanging the whole test run.
    fn parse_options(raw: &[u8]) -> DhcpV6Options {
        let raw = raw.to_vec();
        let (tx, rx) = mpsc::channel();
        let handle = thread::spawn(move || {
            let mut buf = Buffer::new(raw.as_slice());
            let ret = DhcpV6Options::parse(&mut buf);
            tx.send(()).unwrap();
            ret
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("DhcpV6Options::parse() hang on malformed data");
        handle
            .join()
            .unwrap()
            .expect("DhcpV6Options::parse() failed on malformed data")
    }

    #[test]
    fn parse_truncated_option_code_not_hang() {
        let opts = parse_options(&[0x00]);
        assert!(opts.get_first(DhcpV6OptionCode::ElapsedTime).is_none());
    }

    #[test]
    fn parse_truncated_option_len_not_hang() {
        let opts = parse_options(&[0x00, 0x01, 0x00]);
        assert!(opts.get_first(DhcpV6OptionCode::ElapsedTime).is_none());
    }

    #[test]
    fn parse_overlong_option_len_not_hang() {
        let opts = parse_options(&[0x00, 0x17, 0xff, 0xff, 0x01, 0x02]);
        assert!(opts.get_first(DhcpV6OptionCode::ElapsedTime).is_none());
    }

    #[test]
    fn parse_malformed_tail_keeps_valid_options() {
        // OPTION_ELAPSED_TIME(8) with value 100 followed by a
        // truncated trailing option code.
        let opts = parse_options(&[0x00, 0x08, 0x00, 0x02, 0x00, 0x64, 0x00]);
        assert_eq!(
            opts.get_first(DhcpV6OptionCode::ElapsedTime),
            Some(&DhcpV6Option::ElapsedTime(100))
        );
    }

    // Issue 14: SRV_ADDR/MC_ADDR must honour subopt_len, not read a
    // hardcoded 16 bytes. A subopt_len that is not 16 must be rejected
    // by DhcpV6OptionNtpServer::parse (the outer DhcpV6Options::parse
    // swallows subopt errors silently, so test at the subopt level).
    #[test]
    fn ntp_srv_addr_malformed_subopt_len_rejects() {
        // subopt_type=1 (SRV_ADDR), subopt_len=8 (wrong, must be 16),
        // followed by 8 bytes of data.
        let raw: Vec<u8> = vec![
            0x00, 0x01, // subopt_type = SRV_ADDR (1)
            0x00, 0x08, // subopt_len = 8  (invalid — must be 16)
            0x20, 0x01, 0x0D, 0xB8, // 8 bytes
            0x00, 0x01,
        ];
        let mut buf = Buffer::new(&raw);
        assert!(
            DhcpV6OptionNtpServer::parse(&mut buf).is_err(),
            "expected Err for NTP SRV_ADDR subopt_len=8"
        );
    }

    #[test]
    fn ntp_mc_addr_malformed_subopt_len_rejects() {
        // subopt_type=2 (MC_ADDR), subopt_len=10 (wrong, must be 16)
        let raw: Vec<u8> = vec![
            0x00, 0x02, // subopt_type = MC_ADDR (2)
            0x00, 0x0A, // subopt_len = 10 (invalid)
            0xFF, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 10 bytes
            0x00, 0x01,
        ];
        let mut buf = Buffer::new(&raw);
        assert!(
            DhcpV6OptionNtpServer::parse(&mut buf).is_err(),
            "expected Err for NTP MC_ADDR subopt_len=10"
        );
    }

    #[test]
    fn ntp_srv_addr_valid_parses() {
        // subopt_type=1, subopt_len=16, value=2001:db8::1
        let raw: Vec<u8> = vec![
            0x00, 0x01, // SRV_ADDR
            0x00, 0x10, // subopt_len = 16
            0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x01,
        ];
        let mut buf = Buffer::new(&raw);
        let srv = DhcpV6OptionNtpServer::parse(&mut buf).expect("valid srv");
        assert_eq!(
            srv,
            DhcpV6OptionNtpServer::ServerAddr(Ipv6Addr::new(
                0x2001, 0x0DB8, 0, 0, 0, 0, 0, 1
            ))
        );
    }

    #[test]
    fn domain_list_parses_rfc1035_labels() {
        // OPTION_DOMAIN_LIST with "www.example.com" and "ntp.example.org"
        // encoded as RFC 1035 labels.
        let raw: Vec<u8> = vec![
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x22, // option-len = 34
            0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00, 0x03, b'n', b't', b'p', 0x07,
            b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'o', b'r', b'g',
            0x00,
        ];
        let mut buf = Buffer::new(&raw);
        let opt = DhcpV6Option::parse(&mut buf).expect("valid domain list");
        assert_eq!(
            opt,
            DhcpV6Option::DomainList(vec![
                "www.example.com".to_string(),
                "ntp.example.org".to_string(),
            ])
        );
    }

    #[test]
    fn domain_list_emit_uses_rfc1035_labels() {
        let opt = DhcpV6Option::DomainList(vec![
            "www.example.com".to_string(),
            "ntp.example.org".to_string(),
        ]);
        let mut buf = BufferMut::new();
        opt.emit(&mut buf);
        let expected: Vec<u8> = vec![
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x22, // option-len = 34
            0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00, 0x03, b'n', b't', b'p', 0x07,
            b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0x03, b'o', b'r', b'g',
            0x00,
        ];
        assert_eq!(buf.data, expected);
    }

    #[test]
    fn domain_list_accepts_maximum_rfc1035_labels() {
        // 127 single-character labels is the maximum allowed by
        // RFC 1035's 255-octet name limit.
        let mut value = Vec::new();
        for _ in 0..127 {
            value.push(1);
            value.push(b'a');
        }
        value.push(0);

        let mut raw = vec![0x00, 0x18]; // OPTION_DOMAIN_LIST
        raw.extend_from_slice(&(value.len() as u16).to_be_bytes());
        raw.extend(value);

        let mut buf = Buffer::new(&raw);
        let opt = DhcpV6Option::parse(&mut buf).expect("maximum labels");
        assert_eq!(
            opt,
            DhcpV6Option::DomainList(
                vec![vec!["a".to_string(); 127].join(".")]
            )
        );
    }

    #[test]
    fn domain_list_parses_pointer_to_previous_name() {
        // OPTION_DOMAIN_LIST containing "www.example.com" followed by an
        // RFC 1035 pointer (0xC0 0x00) back to that name.
        let raw: Vec<u8> = vec![
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x13, // option-len = 19
            0x03, b'w', b'w', b'w', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00, 0xC0, 0x00,
        ];
        let mut buf = Buffer::new(&raw);
        let opt = DhcpV6Option::parse(&mut buf).expect("valid domain list");
        assert_eq!(
            opt,
            DhcpV6Option::DomainList(vec![
                "www.example.com".to_string(),
                "www.example.com".to_string(),
            ])
        );
    }

    #[test]
    fn domain_list_parses_labels_ending_in_pointer() {
        // "FOO.BAR" followed by "ABC" plus a pointer to the "BAR" label
        // at offset 4.
        let raw: Vec<u8> = vec![
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x0F, // option-len = 15
            0x03, b'F', b'O', b'O', 0x03, b'B', b'A', b'R', 0x00, 0x03, b'A',
            b'B', b'C', 0xC0, 0x04,
        ];
        let mut buf = Buffer::new(&raw);
        let opt = DhcpV6Option::parse(&mut buf).expect("valid domain list");
        assert_eq!(
            opt,
            DhcpV6Option::DomainList(vec![
                "FOO.BAR".to_string(),
                "ABC.BAR".to_string(),
            ])
        );
    }

    #[test]
    fn domain_list_rejects_forward_pointer() {
        // "FOO" followed by "BAR" whose pointer (0xC0 0x06) points
        // forward instead of to a prior occurrence.
        let opts = parse_options(&[
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x0B, // option-len = 11
            0x03, b'F', b'O', b'O', 0x00, 0x03, b'B', b'A', b'R', 0xC0, 0x06,
        ]);
        assert!(
            opts.get_first(DhcpV6OptionCode::DomainList).is_none(),
            "expected forward pointer to be rejected"
        );
    }

    #[test]
    fn domain_list_rejects_pointer_without_prior_name() {
        // A pointer as the first name has no prior occurrence to point
        // to (RFC 1035 section 4.1.4).
        let opts = parse_options(&[
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x02, // option-len = 2
            0xC0, 0x00,
        ]);
        assert!(
            opts.get_first(DhcpV6OptionCode::DomainList).is_none(),
            "expected pointer without a prior name to be rejected"
        );
    }

    #[test]
    fn domain_list_rejects_truncated_pointer() {
        let opts = parse_options(&[
            0x00, 0x18, // OPTION_DOMAIN_LIST
            0x00, 0x01, // option-len = 1
            0xC0,
        ]);
        assert!(
            opts.get_first(DhcpV6OptionCode::DomainList).is_none(),
            "expected truncated pointer to be rejected"
        );
    }

    #[test]
    fn domain_list_rejects_reserved_label_encodings() {
        for marker in [0x40u8, 0x80u8] {
            let opts = parse_options(&[
                0x00, 0x18, // OPTION_DOMAIN_LIST
                0x00, 0x01, // option-len = 1
                marker,
            ]);
            assert!(
                opts.get_first(DhcpV6OptionCode::DomainList).is_none(),
                "expected reserved label encoding 0x{marker:02x} to be \
                 rejected"
            );
        }
    }

    #[test]
    fn ntp_server_fqdn_parses_rfc1035_labels() {
        // OPTION_NTP_SERVER with SRV_FQDN suboption carrying
        // "ntp.example.com" encoded as RFC 1035 labels.
        let raw: Vec<u8> = vec![
            0x00, 0x38, // OPTION_NTP_SERVER
            0x00, 0x15, // option-len = 21
            0x00, 0x03, // SRV_FQDN
            0x00, 0x11, // subopt-len = 17
            0x03, b'n', b't', b'p', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00,
        ];
        let mut buf = Buffer::new(&raw);
        let opt = DhcpV6Option::parse(&mut buf).expect("valid NTP server");
        assert_eq!(
            opt,
            DhcpV6Option::NtpServer(vec![DhcpV6OptionNtpServer::ServerFqdn(
                "ntp.example.com".to_string()
            )])
        );
    }

    #[test]
    fn ntp_server_fqdn_emit_uses_rfc1035_labels() {
        let opt =
            DhcpV6Option::NtpServer(vec![DhcpV6OptionNtpServer::ServerFqdn(
                "ntp.example.com".to_string(),
            )]);
        let mut buf = BufferMut::new();
        opt.emit(&mut buf);
        let expected: Vec<u8> = vec![
            0x00, 0x38, // OPTION_NTP_SERVER
            0x00, 0x15, // option-len = 21
            0x00, 0x03, // SRV_FQDN
            0x00, 0x11, // subopt-len = 17
            0x03, b'n', b't', b'p', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00,
        ];
        assert_eq!(buf.data, expected);
    }

    #[test]
    fn ntp_server_fqdn_emit_parse_round_trip() {
        let opt =
            DhcpV6Option::NtpServer(vec![DhcpV6OptionNtpServer::ServerFqdn(
                "ntp.example.com".to_string(),
            )]);
        let mut buf = BufferMut::new();
        opt.emit(&mut buf);
        let mut buf = Buffer::new(&buf.data);
        let parsed = DhcpV6Option::parse(&mut buf).expect("round-trip parse");
        assert_eq!(parsed, opt);
    }

    #[test]
    fn ntp_server_fqdn_trailing_bytes_rejected() {
        // subopt-len is 18, but the FQDN is only 17 bytes, leaving one
        // byte after the root label.
        let raw: Vec<u8> = vec![
            0x00, 0x03, // SRV_FQDN
            0x00, 0x12, // subopt-len = 18
            0x03, b'n', b't', b'p', 0x07, b'e', b'x', b'a', b'm', b'p', b'l',
            b'e', 0x03, b'c', b'o', b'm', 0x00, 0x01, // trailing byte
        ];
        let mut buf = Buffer::new(&raw);
        assert!(
            DhcpV6OptionNtpServer::parse(&mut buf).is_err(),
            "expected Err for NTP SRV_FQDN with trailing data"
        );
    }
}
