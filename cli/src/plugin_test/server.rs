//! `--server CMD`: the plugin's peer, run in a second namespace joined to the plugin's by a
//! veth pair (the server 10.99.0.1/24, the plugin's side 10.99.0.2/24, and behind the server
//! 10.200.0.0/24 on `behind0`), started before the plugin and ended (by its process group)
//! after.

use super::*;

/// The server's process, ended when dropped.
pub(super) struct Server {
    child: std::process::Child,
    _ns: Netns,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its whole process group: a shell and what it started.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + FIVE;
        while !matches!(self.child.try_wait(), Ok(Some(_))) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (by `sh -c`) in a server namespace beside `ns`, and waits, up to `limit`,
/// until its output holds `ready` (if given).
pub(super) fn start(
    ns: &Netns,
    cmd: &str,
    ready: Option<&str>,
    limit: Duration,
) -> anyhow::Result<Server> {
    let server_ns = ns.add_server().context("the server's namespace")?;
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    server_ns.prepare(&mut c);
    let mut child = c
        .spawn()
        .with_context(|| format!("--server: cannot run {cmd:?}"))?;
    let lines = tinynm_sandbox::lines_of(&mut child);
    let server = Server {
        child,
        _ns: server_ns,
    };
    let Some(ready) = ready else {
        return Ok(server);
    };
    let end = Instant::now() + limit;
    let mut seen: Vec<String> = Vec::new();
    loop {
        match lines.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(l) if l.contains(ready) => return Ok(server),
            Ok(l) => seen.push(l),
            Err(_) => {
                let last = &seen[seen.len().saturating_sub(5)..];
                bail!(
                    "--server never printed {ready:?} within {} s; its last lines: {}",
                    limit.as_secs(),
                    last.join(" | ")
                );
            }
        }
    }
}
