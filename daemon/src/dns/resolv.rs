//! resolv.conf's formats, read from untrusted files: a resolv.conf itself, and the backup of
//! the original tinynmd keeps in its state directory. Pure: it imports nothing of the daemon,
//! so that the fuzz targets read them with this very code.

use std::net::IpAddr;
use std::path::PathBuf;

/// What a resolv.conf says: its servers and search domains as the `resolv-conf` crate reads
/// them (glibc's rules: the last `search` or `domain` line wins; a line it cannot read is
/// skipped), and the other lines (`options`, `sortlist`…) as they are, to be kept.
pub fn parse_resolv(text: &str) -> (Vec<IpAddr>, Vec<String>, Vec<String>) {
    let (cfg, _skipped) = resolv_conf::Config::parse_with_errors(text.as_bytes());
    let servers = cfg
        .nameservers
        .iter()
        .map(|s| IpAddr::from(s.clone()))
        .collect();
    let search = match (cfg.get_search(), cfg.get_domain()) {
        (Some(s), _) => s.clone(),
        (None, Some(d)) => vec![d.clone()],
        (None, None) => Vec::new(),
    };
    let other = text
        .lines()
        .map(str::trim)
        .filter(|t| match t.split_whitespace().next() {
            Some("nameserver" | "search" | "domain") | None => false,
            Some(x) => !x.starts_with('#') && !x.starts_with(';'),
        })
        .map(str::to_string)
        .collect();
    (servers, search, other)
}

/// The original resolv.conf as kept in the state directory, tied to the path it was taken
/// from; on disk, a header (`tinynm resolv.conf backup 1`, `path PATH`, `present` or `absent`,
/// an empty line) and the original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The file it was taken from.
    pub path: PathBuf,
    /// Its bytes; `None` when there was no such file.
    pub original: Option<Vec<u8>>,
}

const MAGIC: &str = "tinynm resolv.conf backup 1";

impl Backup {
    /// The bytes on disk.
    pub fn encode(&self) -> Vec<u8> {
        let state = if self.original.is_some() {
            "present"
        } else {
            "absent"
        };
        let mut out = format!("{MAGIC}\npath {}\n{state}\n\n", self.path.display()).into_bytes();
        out.extend(self.original.iter().flatten());
        out
    }

    /// Reads [`Backup::encode`]'s bytes, or says what is wrong with them.
    pub fn decode(b: &[u8]) -> Result<Backup, String> {
        if b.is_empty() {
            return Err("it is empty (0 bytes)".into());
        }
        let mut lines = Vec::new();
        let mut rest = b;
        while lines.len() < 4 {
            let Some(nl) = rest.iter().position(|c| *c == b'\n') else {
                return Err("its header is cut short".into());
            };
            let line = std::str::from_utf8(&rest[..nl]).map_err(|_| "its header is not text")?;
            lines.push(line.to_string());
            rest = &rest[nl + 1..];
        }
        if lines[0] != MAGIC {
            return Err(format!("it does not start with '{MAGIC}'"));
        }
        let path = lines[1]
            .strip_prefix("path ")
            .filter(|p| p.starts_with('/'))
            .ok_or("its second line is not 'path /…'")?;
        let original = match (lines[2].as_str(), lines[3].as_str()) {
            ("present", "") => Some(rest.to_vec()),
            ("absent", "") if rest.is_empty() => None,
            _ => return Err("its header is damaged".into()),
        };
        Ok(Backup {
            path: PathBuf::from(path),
            original,
        })
    }
}
