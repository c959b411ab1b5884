//! Batches of requests on a netlink socket of their own, with no protocol layer between: a
//! datagram holds up to [`BATCH`](super::BATCH) requests serialized back to back, numbered in
//! sequence, and only the last asks for an ACK. The kernel handles a datagram's requests in
//! order within the send, so that ACK means all are done; each refusal comes back before it
//! as an error carrying the refused request's sequence number. The socket has
//! `NETLINK_CAP_ACK`, so an error echoes the request's header only, not the whole request.

use std::io;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

/// `NLMSG_ERROR`: an error, or an ACK when its code is 0.
const NLMSG_ERROR: u16 = 2;
/// A netlink message header's length.
const HEADER: usize = 16;

pub(super) struct BatchSocket {
    sock: AsyncFd<Socket>,
    seq: u32,
    out: Vec<u8>,
    input: Vec<u8>,
}

impl BatchSocket {
    pub(super) fn new() -> io::Result<BatchSocket> {
        let mut s = Socket::new(NETLINK_ROUTE)?;
        s.bind_auto()?;
        s.connect(&SocketAddr::new(0, 0))?;
        // ACKs and errors of a whole batch must fit, or the kernel drops them.
        s.set_rx_buf_sz(4 << 20)?;
        s.set_cap_ack(true)?;
        s.set_non_blocking(true)?;
        // SAFETY: the socket owns its descriptor and is owned by the AsyncFd, so the
        // descriptor stays open for as long as it is registered.
        let sock = unsafe { AsyncFd::register(s) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(BatchSocket {
            sock,
            seq: 0,
            out: Vec::new(),
            input: Vec::with_capacity(64 << 10),
        })
    }

    /// Sends `n` requests as one datagram with `flags` (the ACK flag on the last only), each
    /// written by `write(i, out, flags, seq)`, and waits for its ACK; returns the refused
    /// requests, by index, with the kernel's error.
    pub(super) async fn send(
        &mut self,
        n: usize,
        flags: u16,
        mut write: impl FnMut(usize, &mut Vec<u8>, u16, u32),
    ) -> io::Result<Vec<(usize, io::Error)>> {
        let Some(last) = n.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n as u32);
        self.out.clear();
        for i in 0..n {
            let flags = if i == last {
                flags | NLM_F_ACK
            } else {
                flags & !NLM_F_ACK
            };
            write(i, &mut self.out, flags, first.wrapping_add(i as u32));
        }
        loop {
            let mut guard = self.sock.writable().await?;
            match guard.try_io(|s| s.get_ref().send(&self.out, 0)) {
                Ok(r) => {
                    r?;
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        if flags & NLM_F_CREATE != 0 && super::fail_point("batch-answers") {
            // Their answers are read, and passed over, with the next batch's.
            return Err(io::Error::other("its answers were lost (TINYNMD_FAIL_AT)"));
        }
        let ack = first.wrapping_add(last as u32);
        let mut failed = Vec::new();
        loop {
            self.input.clear();
            let mut guard = self.sock.readable().await?;
            let n = match guard.try_io(|s| s.get_ref().recv(&mut self.input, 0)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            let mut b = &self.input[..n.min(self.input.len())];
            let mut done = false;
            while b.len() >= HEADER {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                if len < HEADER || len > b.len() {
                    break;
                }
                // An error: its code, then the header of the request it answers.
                if kind == NLMSG_ERROR && len >= HEADER + 4 + HEADER {
                    let code = i32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
                    let seq = u32::from_ne_bytes([b[28], b[29], b[30], b[31]]);
                    let i = seq.wrapping_sub(first) as usize;
                    // Another number is a late answer to an earlier batch, which failed
                    // before it was answered (the timeout, a lost answer).
                    if code != 0 && i <= last {
                        failed.push((i, io::Error::from_raw_os_error(-code)));
                    }
                    if seq == ack {
                        done = true;
                    }
                }
                b = &b[len.next_multiple_of(4).min(b.len())..];
            }
            if done {
                return Ok(failed);
            }
        }
    }
}
