//! A real AnyConnect server for tests: `ocserv` 1.1 with password authentication, serving on
//! [`Netns::add_server`]'s address 10.99.0.1 (TCP and UDP 443), with a PKI made on the spot (a
//! CA and a server certificate for that address), a password file for [`USER`], and a pool
//! 10.96.0.0/24 that pushes a route to 10.200.0.0/24 and a DNS server. Recipe: spec
//! OPENCONNECT.md. Nothing is written outside the directory; the host's ocserv service is
//! never involved.
//!
//! [`Netns::add_server`]: crate::Netns::add_server

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::openvpn::{PASSWORD, USER};
use crate::{SandboxError, lines_of, require_tool, run_pki};

/// What [`prepare`] made.
pub struct Files {
    /// The server's configuration: `ocserv -f -c` it in the server's namespace.
    pub conf: PathBuf,
    /// The CA the server's certificate is signed by.
    pub ca: PathBuf,
}

/// The log line that says the server serves.
pub const READY: &str = "sec-mod initialized";

/// Makes the PKI, the password file and the configuration in `dir` (made traversable for the
/// `ocserv` user the server's workers run as).
pub fn prepare(dir: &Path) -> Result<Files, SandboxError> {
    let openssl = require_tool("openssl", "openssl")?;
    let ocpasswd = require_tool("ocpasswd", "ocserv")?;
    let io = |what: &'static str| move |e| SandboxError::Sys(what, e);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io("chmod the ocserv directory"))?;
    let d = |f: &str| dir.join(f).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_pki(
        Command::new(&openssl)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", &d("oc-ca.key"), "-out", &d("oc-ca.crt")])
            .args(["-subj", "/CN=tinynm ocserv CA", "-days", "2"]),
    )?;
    run_pki(
        Command::new(&openssl)
            .arg("req")
            .args(ec)
            .args(["-keyout", &d("oc-server.key"), "-out", &d("oc-server.csr")])
            .args(["-subj", "/CN=10.99.0.1"]),
    )?;
    std::fs::write(
        dir.join("oc-server.ext"),
        "subjectAltName=IP:10.99.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(io("write the certificate extensions"))?;
    run_pki(
        Command::new(&openssl)
            .args(["x509", "-req", "-in", &d("oc-server.csr")])
            .args(["-CA", &d("oc-ca.crt"), "-CAkey", &d("oc-ca.key")])
            .args(["-CAcreateserial", "-days", "2"])
            .args(["-out", &d("oc-server.crt"), "-extfile", &d("oc-server.ext")]),
    )?;
    // Its workers, as user ocserv, read the key.
    std::fs::set_permissions(
        dir.join("oc-server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .map_err(io("chmod the server key"))?;
    // ocpasswd reads the password twice from stdin.
    let mut child = Command::new(&ocpasswd)
        .args(["-c", &d("ocpasswd"), USER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("run ocpasswd"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
        .map_err(io("write to ocpasswd"))?;
    let o = child.wait_with_output().map_err(io("wait for ocpasswd"))?;
    if !o.status.success() {
        return Err(SandboxError::Setup(format!(
            "ocpasswd: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let conf = dir.join("ocserv.conf");
    std::fs::write(
        &conf,
        format!(
            "auth = \"plain[passwd={passwd}]\"\nlisten-host = 10.99.0.1\ntcp-port = 443\nudp-port = 443\n\
             run-as-user = ocserv\nrun-as-group = ocserv\nsocket-file = {sock}\nserver-cert = {cert}\n\
             server-key = {key}\nisolate-workers = false\nmax-clients = 16\nmax-same-clients = 16\n\
             keepalive = 32400\ndpd = 90\nmobile-dpd = 1800\ntry-mtu-discovery = false\n\
             tls-priorities = \"NORMAL:%SERVER_PRECEDENCE:%COMPAT:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1\"\n\
             auth-timeout = 240\nmin-reauth-time = 1\nmax-ban-score = 0\ncookie-timeout = 300\n\
             deny-roaming = false\nrekey-time = 172800\nrekey-method = ssl\nuse-occtl = false\n\
             pid-file = {pid}\nlog-level = 2\ndevice = vpns\npredictable-ips = true\n\
             ipv4-network = 10.96.0.0\nipv4-netmask = 255.255.255.0\ndns = 10.99.0.53\n\
             route = 10.200.0.0/255.255.255.0\nping-leases = false\ncisco-client-compat = true\n\
             dtls-legacy = true\n",
            passwd = d("ocpasswd"),
            sock = d("ocserv-socket"),
            cert = d("oc-server.crt"),
            key = d("oc-server.key"),
            pid = d("ocserv.pid"),
        ),
    )
    .map_err(io("write ocserv.conf"))?;
    Ok(Files {
        conf,
        ca: dir.join("oc-ca.crt"),
    })
}

/// A shell command that logs in headlessly (`openconnect --authenticate`, [`USER`]'s password
/// on stdin, the CA given) and prints the three secrets Debian's nm-openconnect-service needs,
/// as `KEY=VALUE` lines: `cookie`, `gateway`, `gwcert`.
pub fn login_command(files: &Files) -> String {
    format!(
        "out=$(printf '%s\\n' '{PASSWORD}' | openconnect --authenticate --protocol=anyconnect \
         --user={USER} --passwd-on-stdin --cafile={ca} https://10.99.0.1/) && eval \"$out\" && \
         printf 'cookie=%s\\ngateway=%s\\ngwcert=%s\\n' \"$COOKIE\" \"$HOST\" \"$FINGERPRINT\"",
        ca = files.ca.display()
    )
}

/// `ocserv` serving [`Files`] in a namespace, stopped (its process group, by PID) when dropped.
pub struct Server {
    child: std::process::Child,
}

impl Server {
    /// Starts it in `ns` (the server's) and waits (bounded) until it serves.
    pub fn start(ns: &crate::Netns, files: &Files) -> Result<Server, SandboxError> {
        use std::os::unix::process::CommandExt;
        let ocserv = require_tool("ocserv", "ocserv")?;
        let mut cmd = Command::new(ocserv);
        cmd.args(["-f", "-d", "1", "-c"])
            .arg(&files.conf)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        ns.prepare(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn ocserv", e))?;
        let rx = lines_of(&mut child);
        let server = Server { child };
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
                Ok(l) if l.contains(READY) => return Ok(server),
                Ok(l) => seen.push(l),
                Err(_) => {
                    return Err(SandboxError::Setup(format!(
                        "ocserv never logged {READY:?}:\n{}",
                        seen.join("\n")
                    )));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // ocserv forks its security module and a worker per client: the whole group goes.
        let pg = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGTERM);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !matches!(self.child.try_wait(), Ok(Some(_))) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
