//! What one connection put in the kernel, in order (`Journal`), how each object is described
//! and undone, and the journal on disk: written ahead of every change the kernel is asked for
//! (`Wal`, fsync'd before the request is sent), read at the next start to remove exactly what a
//! crashed tinynmd left (`recover.rs`). Pure: it imports nothing of the daemon, so that the
//! fuzz targets read journals with this very code.

use std::io;
use std::io::Write;
use std::sync::Arc;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};

use super::route::{DEL_ROUTE, NEW_ROUTE, Route};

/// One object added to the kernel, as it must be undone.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// An address we added.
    Address(AddressMessage),
    /// A route we added.
    Route(Route),
    /// A route on the parent that several VPNs may need (the host route to a shared VPN
    /// server): counted, and deleted when the last VPN that needs it goes.
    SharedRoute(Route),
    /// The MTU we changed: (ifindex, old MTU).
    Mtu(u32, u32),
    /// A link that was down and we set up (ifindex).
    Up(u32),
    /// A policy routing rule we added.
    Rule(netlink_packet_route::rule::RuleMessage),
}

/// Everything one connection put in the kernel, in order. Held as the parts it went in as, each
/// shared: a plan's routes are moved in whole when applied, never copied, and a clone of the
/// journal shares them, so that a VPN's routes exist once while it is up (its IP4Config reads
/// them from a clone).
#[derive(Debug, Clone, Default)]
pub struct Journal {
    parts: Vec<Arc<Vec<Applied>>>,
}

impl PartialEq for Journal {
    fn eq(&self, other: &Journal) -> bool {
        self.iter().eq(other.iter())
    }
}

impl From<Vec<Applied>> for Journal {
    fn from(items: Vec<Applied>) -> Journal {
        let mut j = Journal::default();
        j.append(items);
        j
    }
}

impl Journal {
    /// The objects in the order applied.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Applied> + Clone {
        self.parts.iter().flat_map(|p| p.iter())
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Adds these objects after the others, moving the vector in without copying it.
    pub fn append(&mut self, items: Vec<Applied>) {
        if !items.is_empty() {
            self.parts.push(Arc::new(items));
        }
    }

    /// Adds another journal's objects after these.
    pub fn extend(&mut self, other: Journal) {
        self.parts
            .extend(other.parts.into_iter().filter(|p| !p.is_empty()));
    }

    /// The objects, in one vector (a part still shared is copied).
    #[cfg(test)]
    pub fn into_items(self) -> Vec<Applied> {
        let mut parts: Vec<Vec<Applied>> =
            self.parts.into_iter().map(Arc::unwrap_or_clone).collect();
        if parts.len() == 1 {
            return parts.pop().unwrap_or_default();
        }
        parts.concat()
    }

    /// Number of routes in the journal.
    pub fn routes(&self) -> usize {
        self.iter()
            .filter(|a| matches!(a, Applied::Route(_) | Applied::SharedRoute(_)))
            .count()
    }
}

/// On disk, a journal is records back to back, each a netlink message: the add request of an
/// object tinynmd is about to add (or has added), a link message carrying the MTU a link had
/// before tinynmd changed it, and the delete request of an object written earlier whose add the
/// kernel refused (so it is not ours: a retraction). Enough for a later tinynmd to undo exactly
/// what it did after a crash.
impl Journal {
    /// The journal's objects as records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for a in self.iter() {
            a.write_record(&mut out, false);
        }
        out
    }

    /// Reads what [`Journal::to_bytes`] or a [`Wal`] wrote: the objects it can read, and what
    /// was damaged (a torn tail, a record that is not one of ours), if anything.
    pub fn from_bytes(all: &[u8]) -> (Journal, Vec<String>) {
        let mut items: Vec<Applied> = Vec::new();
        let mut damage = Vec::new();
        let mut b = all;
        while !b.is_empty() {
            let at = all.len() - b.len();
            let len = if b.len() >= 16 {
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize
            } else {
                0
            };
            if len < 16 || len > b.len() {
                damage.push(format!(
                    "bytes {at} to {} of {} are not a whole record (a torn write?)",
                    all.len(),
                    all.len()
                ));
                break;
            }
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[..len]);
            let inner = match m {
                Ok(NetlinkMessage {
                    payload: NetlinkPayload::InnerMessage(i),
                    ..
                }) => Some(i),
                _ => None,
            };
            match inner.map(Record::from_message) {
                Some(Some(Record::Add(a))) => items.push(a),
                Some(Some(Record::Retract(a))) => {
                    if let Some(i) = items.iter().rposition(|x| x.record() == a.record()) {
                        items.remove(i);
                    }
                }
                Some(None) => damage.push(format!(
                    "the record at byte {at} is not an address, route, rule or link change"
                )),
                None => damage.push(format!("the record at byte {at} is not a netlink message")),
            }
            b = &b[len..];
        }
        (Journal::from(items), damage)
    }
}

enum Record {
    Add(Applied),
    Retract(Applied),
}

impl Record {
    fn from_message(m: RouteNetlinkMessage) -> Option<Record> {
        use RouteNetlinkMessage as M;
        Some(match m {
            M::NewRoute(r) => Record::Add(Applied::Route(Route::from_message(&r)?)),
            M::NewAddress(a) => Record::Add(Applied::Address(a)),
            M::NewRule(r) => Record::Add(Applied::Rule(r)),
            M::NewLink(l) => Record::Add(link_change(&l)?),
            M::DelRoute(r) => Record::Retract(Applied::Route(Route::from_message(&r)?)),
            M::DelAddress(a) => Record::Retract(Applied::Address(a)),
            M::DelRule(r) => Record::Retract(Applied::Rule(r)),
            M::DelLink(l) => Record::Retract(link_change(&l)?),
            _ => return None,
        })
    }
}

fn link_change(l: &LinkMessage) -> Option<Applied> {
    let mtu = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    });
    match mtu {
        Some(m) => Some(Applied::Mtu(l.header.index, m)),
        None if l.header.change_mask.contains(LinkFlags::Up) => Some(Applied::Up(l.header.index)),
        None => None,
    }
}

/// Appends `m` as one request of a datagram: header (`flags`, `seq`), then the message,
/// padded to 4 bytes.
pub(super) fn serialize_request(out: &mut Vec<u8>, m: &RouteNetlinkMessage, flags: u16, seq: u32) {
    use rtnetlink::packet_core::NetlinkSerializable;
    const HEADER: usize = 16;
    let len = HEADER + NetlinkSerializable::buffer_len(m);
    let at = out.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&NetlinkSerializable::message_type(m).to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.resize(at + len, 0);
    NetlinkSerializable::serialize(m, &mut out[at + HEADER..]);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends `m` as a journal record: a request with no flags and no number.
fn push_record(out: &mut Vec<u8>, m: RouteNetlinkMessage) {
    serialize_request(out, &m, 0, 0);
}

/// A connection's journal file, appended to ahead of each change the kernel is asked for and
/// fsync'd before the request is sent: whatever reached the kernel is always on disk. Opening
/// it never truncates, so a re-apply appends to what is already there.
pub struct Wal {
    file: std::fs::File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
}

impl Wal {
    /// Opens (or creates, with its directory, synced) the journal at `path` for appending.
    pub fn open(path: &std::path::Path) -> io::Result<Wal> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir)?;
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if !existed {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(Wal {
            file,
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    /// Records that these objects are about to be added (or, for an MTU, changed).
    pub fn intend<'a>(&mut self, items: impl IntoIterator<Item = &'a Applied>) {
        for a in items {
            a.write_record(&mut self.buf, false);
        }
    }

    /// Records that the kernel refused these: they are not ours to undo.
    pub fn retract<'a>(&mut self, items: impl IntoIterator<Item = &'a Applied>) {
        for a in items {
            a.write_record(&mut self.buf, true);
        }
    }

    /// Writes what was recorded and waits until it is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        self.file.sync_data()
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

pub(super) fn describe_address(a: &AddressMessage) -> String {
    use netlink_packet_route::address::AddressAttribute as A;
    let local = a.attributes.iter().find_map(|x| match x {
        A::Local(l) => Some(*l),
        _ => None,
    });
    let addr = a.attributes.iter().find_map(|x| match x {
        A::Address(l) => Some(*l),
        _ => None,
    });
    match (local, addr) {
        (Some(l), Some(p)) if l != p => {
            format!(
                "{l} peer {p}/{} on #{}",
                a.header.prefix_len, a.header.index
            )
        }
        (Some(l), _) | (None, Some(l)) => {
            format!("{l}/{} on #{}", a.header.prefix_len, a.header.index)
        }
        _ => format!("address on #{}", a.header.index),
    }
}

impl Applied {
    pub(super) fn describe(&self) -> String {
        match self {
            Applied::Address(a) => format!("address {}", describe_address(a)),
            Applied::Route(r) | Applied::SharedRoute(r) => format!("route {r}"),
            Applied::Mtu(i, m) => format!("MTU of #{i} (was {m})"),
            Applied::Up(i) => format!("up state of #{i} (was down)"),
            Applied::Rule(r) => format!("rule {}", describe_rule(r)),
        }
    }

    /// An MTU or up state: undone by a link change, not by a delete request.
    pub(super) fn is_link_change(&self) -> bool {
        matches!(self, Applied::Mtu(..) | Applied::Up(_))
    }

    pub(super) fn shared_key(&self) -> Option<String> {
        match self {
            Applied::SharedRoute(r) => Some(format!("{r} table {}", r.kernel_table())),
            _ => None,
        }
    }

    /// Appends the object's journal record to `out`: its add request (a retraction: its
    /// delete request), or for an MTU a link message with the MTU to put back. A route's is
    /// written straight ([`Route::encode`]).
    pub(super) fn write_record(&self, out: &mut Vec<u8>, retract: bool) {
        if let Applied::Route(r) | Applied::SharedRoute(r) = self {
            let kind = if retract { DEL_ROUTE } else { NEW_ROUTE };
            r.encode(out, kind, 0, 0);
            return;
        }
        let m = match (self.record(), retract) {
            (m, false) => m,
            (RouteNetlinkMessage::NewAddress(x), true) => RouteNetlinkMessage::DelAddress(x),
            (RouteNetlinkMessage::NewRule(r), true) => RouteNetlinkMessage::DelRule(r),
            (RouteNetlinkMessage::NewLink(l), true) => RouteNetlinkMessage::DelLink(l),
            (other, true) => other,
        };
        push_record(out, m);
    }

    /// Appends the object's add (or delete) request to a batch's datagram; false for a link
    /// change, which has none.
    pub(super) fn write_request(&self, out: &mut Vec<u8>, add: bool, flags: u16, seq: u32) -> bool {
        if let Applied::Route(r) | Applied::SharedRoute(r) = self {
            r.encode(out, if add { NEW_ROUTE } else { DEL_ROUTE }, flags, seq);
            return true;
        }
        let m = if add {
            self.add_message()
        } else {
            self.del_message()
        };
        match m {
            Some(m) => {
                serialize_request(out, &m, flags, seq);
                true
            }
            None => false,
        }
    }

    /// How the object is written in a journal: its add request, or for an MTU a link message
    /// with the MTU to put back.
    pub(super) fn record(&self) -> RouteNetlinkMessage {
        match self {
            Applied::Mtu(index, old) => {
                let mut l = LinkMessage::default();
                l.header.index = *index;
                l.attributes.push(LinkAttribute::Mtu(*old));
                RouteNetlinkMessage::NewLink(l)
            }
            Applied::Up(index) => {
                let mut l = LinkMessage::default();
                l.header.index = *index;
                l.header.flags = LinkFlags::Up;
                l.header.change_mask = LinkFlags::Up;
                RouteNetlinkMessage::NewLink(l)
            }
            other => other.add_message().expect("not a link change"),
        }
    }

    pub(super) fn add_message(&self) -> Option<RouteNetlinkMessage> {
        match self {
            Applied::Address(a) => Some(RouteNetlinkMessage::NewAddress(a.clone())),
            Applied::Route(r) | Applied::SharedRoute(r) => {
                Some(RouteNetlinkMessage::NewRoute(r.message()))
            }
            Applied::Mtu(..) | Applied::Up(_) => None,
            Applied::Rule(r) => Some(RouteNetlinkMessage::NewRule(r.clone())),
        }
    }

    pub(super) fn del_message(&self) -> Option<RouteNetlinkMessage> {
        match self {
            Applied::Address(a) => Some(RouteNetlinkMessage::DelAddress(a.clone())),
            Applied::Route(r) | Applied::SharedRoute(r) => {
                Some(RouteNetlinkMessage::DelRoute(r.message()))
            }
            Applied::Mtu(..) | Applied::Up(_) => None,
            Applied::Rule(r) => Some(RouteNetlinkMessage::DelRule(r.clone())),
        }
    }
}

pub(super) fn describe_rule(r: &netlink_packet_route::rule::RuleMessage) -> String {
    use netlink_packet_route::rule::RuleAttribute as A;
    let mut s = String::new();
    for a in &r.attributes {
        match a {
            A::Priority(p) => s.push_str(&format!("priority {p} ")),
            A::Source(x) => s.push_str(&format!("from {x}/{} ", r.header.src_len)),
            A::Destination(x) => s.push_str(&format!("to {x}/{} ", r.header.dst_len)),
            A::Table(t) => s.push_str(&format!("table {t} ")),
            _ => {}
        }
    }
    s.trim_end().to_string()
}

/// Replaces a connection's journal with exactly `j`, atomically: an unpredictable temporary
/// file in the same directory, fsync'd, renamed over it, the directory fsync'd.
pub fn save_journal(path: &std::path::Path, j: &Journal) -> io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".journal")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(&j.to_bytes())?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(n: u8) -> Applied {
        Applied::Route(Route {
            dest: std::net::Ipv4Addr::new(10, 0, 0, n).into(),
            prefix: 32,
            gateway: None,
            pref_src: None,
            oif: 3,
            metric: 50,
            table: 0,
            protocol: netlink_packet_route::route::RouteProtocol::Static,
            unreachable: false,
        })
    }

    #[test]
    fn link_changes_round_trip_and_retractions_take_objects_out() {
        let j = Journal::from(vec![
            Applied::Up(7),
            Applied::Mtu(7, 1500),
            route(1),
            route(2),
        ]);
        let mut bytes = j.to_bytes();
        assert_eq!(Journal::from_bytes(&bytes), (j.clone(), vec![]));
        // The kernel refused route 1 (someone else's): retracted, it is not ours to delete.
        let mut tail = Vec::new();
        push_record(
            &mut tail,
            match route(1).record() {
                RouteNetlinkMessage::NewRoute(r) => RouteNetlinkMessage::DelRoute(r),
                _ => unreachable!(),
            },
        );
        bytes.extend(tail);
        let (read, damage) = Journal::from_bytes(&bytes);
        assert!(damage.is_empty());
        assert_eq!(
            read.into_items(),
            vec![Applied::Up(7), Applied::Mtu(7, 1500), route(2)]
        );
    }

    #[test]
    fn a_wal_appends_what_it_is_told_and_keeps_it_across_opens() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ac-1.journal");
        let mut w = Wal::open(&p).unwrap();
        w.intend([&Applied::Mtu(3, 1400), &route(1), &route(2)]);
        w.sync().unwrap();
        w.retract([&route(2)]);
        w.sync().unwrap();
        let mut w = Wal::open(&p).unwrap();
        w.intend([&route(3)]);
        w.sync().unwrap();
        let (j, damage) = Journal::from_bytes(&std::fs::read(&p).unwrap());
        assert!(damage.is_empty());
        assert_eq!(
            j.into_items(),
            vec![Applied::Mtu(3, 1400), route(1), route(3)]
        );
    }

    #[test]
    fn a_torn_tail_is_damage_and_what_precedes_it_is_kept() {
        let j = Journal::from(vec![route(1), route(2)]);
        let bytes = j.to_bytes();
        let (read, damage) = Journal::from_bytes(&bytes[..bytes.len() - 3]);
        assert_eq!(read.into_items(), vec![route(1)]);
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert!(damage[0].contains("torn write"));
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        let p = d.path().join("ac-1.journal");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(Wal::open(&p).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]

        /// Whatever is on disk, reading it gives objects and named damage, never a panic.
        #[test]
        fn any_bytes_read_without_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let (_, damage) = Journal::from_bytes(&b);
            for d in damage {
                proptest::prop_assert!(!d.is_empty());
            }
        }

        /// What a journal holds reads back as it was, and a tail cut anywhere loses only the
        /// record it cuts, which is reported.
        #[test]
        fn journals_read_back_and_cut_tails_are_reported(
            n in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            mtu in 576u32..9000,
            cut in 1usize..60,
        ) {
            let mut items = vec![Applied::Up(3), Applied::Mtu(3, mtu)];
            items.extend(n.iter().map(|x| route(*x)));
            let j = Journal::from(items.clone());
            let bytes = j.to_bytes();
            proptest::prop_assert_eq!(Journal::from_bytes(&bytes), (j.clone(), vec![]));
            let cut = cut.min(bytes.len() - 1);
            let end = bytes.len() - cut;
            // Where records end: a cut there is a shorter journal, anywhere else a torn one.
            let mut ends = vec![0];
            while let Some(&at) = ends.last().filter(|a| **a < bytes.len()) {
                let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                ends.push(at + len);
            }
            let (read, damage) = Journal::from_bytes(&bytes[..end]);
            proptest::prop_assert_eq!(damage.len(), usize::from(!ends.contains(&end)));
            proptest::prop_assert!(read.len() < items.len());
            proptest::prop_assert_eq!(&items[..read.len()], &read.into_items()[..]);
        }
    }
}
