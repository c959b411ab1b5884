//! A real OpenVPN server for tests and benches: a PKI made on the spot (a CA, server and client
//! certificates, a tls-crypt key) and `openvpn` 2.6 serving it in a namespace of its own, on
//! [`Netns::add_server`]'s address 10.99.0.1, pushing a route to 10.200.0.0/24 and a DNS server.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Netns, SandboxError, lines_of, require_tool, run_pki, terminate};

/// The service name of OpenVPN plugins.
pub const OPENVPN: &str = "org.freedesktop.NetworkManager.openvpn";
/// The user the password server accepts.
pub const USER: &str = "alice";
/// Her password.
pub const PASSWORD: &str = "wonderland";

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(|e| SandboxError::Sys("write a server file", e))
}

/// A CA, a server and a client certificate (EC keys), and a tls-crypt key, in one directory.
pub struct Pki {
    /// Where the files are.
    pub dir: PathBuf,
}

impl Pki {
    /// Makes them with `openssl` and `openvpn --genkey`.
    pub fn generate(dir: &Path) -> Result<Pki, SandboxError> {
        let openssl = require_tool("openssl", "openssl")?;
        let openvpn = require_tool("openvpn", "openvpn")?;
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
                .args(["-keyout", &d("ca.key"), "-out", &d("ca.crt")])
                .args(["-subj", "/CN=tinynm test CA", "-days", "2"]),
        )?;
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            run_pki(
                Command::new(&openssl)
                    .arg("req")
                    .args(ec)
                    .args(["-keyout", &d(&format!("{name}.key"))])
                    .args(["-out", &d(&format!("{name}.csr"))])
                    .args(["-subj", &format!("/CN={name}")]),
            )?;
            let ext = d(&format!("{name}.ext"));
            write(
                Path::new(&ext),
                &format!("extendedKeyUsage={usage}\nkeyUsage=digitalSignature,keyAgreement\n"),
            )?;
            run_pki(
                Command::new(&openssl)
                    .args(["x509", "-req", "-in", &d(&format!("{name}.csr"))])
                    .args(["-CA", &d("ca.crt"), "-CAkey", &d("ca.key")])
                    .args(["-CAcreateserial", "-days", "2"])
                    .args(["-out", &d(&format!("{name}.crt")), "-extfile", &ext]),
            )?;
        }
        run_pki(Command::new(&openvpn).args(["--genkey", "tls-crypt", &d("tc.key")]))?;
        Ok(Pki {
            dir: dir.to_path_buf(),
        })
    }

    /// A client `.ovpn` for the sandbox's server (10.99.0.1, UDP 1194) with this PKI's CA,
    /// client certificate and key and tls-crypt key inline, as providers publish them.
    pub fn client_ovpn(&self) -> String {
        let inline = |tag: &str, f: &str| {
            format!(
                "<{tag}>\n{}</{tag}>\n",
                std::fs::read_to_string(self.dir.join(f)).unwrap_or_default()
            )
        };
        format!(
            "# the test's own client file\nclient\ndev tun\nproto udp\nremote 10.99.0.1 1194\nnobind\n\
             persist-key\npersist-tun\nremote-cert-tls server\ntun-mtu 1400\nverb 3\n{}{}{}{}",
            inline("ca", "ca.crt"),
            inline("cert", "client.crt"),
            inline("key", "client.key"),
            inline("tls-crypt", "tc.key"),
        )
    }

    /// One of its files, as an absolute path.
    pub fn file(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }
}

/// How the server authenticates clients (nm-openvpn-service's connection types).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    /// Certificates only (`tls`).
    Tls,
    /// Username and password only (`password`).
    Password,
    /// Both (`password-tls`).
    PasswordTls,
}

impl Auth {
    /// The `vpn.data` (and the secrets) a client profile of this type needs for this PKI.
    pub fn client_data(self, pki: &Pki) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let kind = match self {
            Auth::Tls => "tls",
            Auth::Password => "password",
            Auth::PasswordTls => "password-tls",
        };
        let mut data: BTreeMap<String, String> = [
            ("connection-type", kind.to_string()),
            ("remote", "10.99.0.1".to_string()),
            ("port", "1194".to_string()),
            ("dev", "tun".to_string()),
            ("ca", pki.file("ca.crt")),
            ("tls-crypt", pki.file("tc.key")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut secrets = BTreeMap::new();
        if self != Auth::Password {
            data.insert("cert".into(), pki.file("client.crt"));
            data.insert("key".into(), pki.file("client.key"));
        }
        if self != Auth::Tls {
            data.insert("username".into(), USER.into());
            data.insert("password-flags".into(), "0".into());
            secrets.insert("password".into(), PASSWORD.into());
        }
        (data, secrets)
    }
}

/// A real openvpn server in a namespace, stopped (by PID) when dropped.
pub struct Server {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    /// Starts it in `ns` and waits (bounded) until it serves.
    pub fn start(ns: &Netns, pki: &Pki, auth: Auth) -> Result<Server, SandboxError> {
        let openvpn = require_tool("openvpn", "openvpn")?;
        let file = Server::config(pki, auth)?;
        let mut cmd = Command::new(openvpn);
        cmd.arg("--config")
            .arg(&file)
            .current_dir(&pki.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        ns.prepare(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Sys("spawn the openvpn server", e))?;
        let log = lines_of(&mut child);
        let mut s = Server {
            child,
            log,
            seen: Vec::new(),
        };
        s.expect("Initialization Sequence Completed", Duration::from_secs(30))?;
        Ok(s)
    }

    /// Writes the server's configuration for `auth` beside the PKI: `openvpn --config` it in
    /// the server's namespace to serve (it logs "Initialization Sequence Completed").
    pub fn config(pki: &Pki, auth: Auth) -> Result<PathBuf, SandboxError> {
        let mut conf = format!(
            "dev tun\nproto udp\nlocal 10.99.0.1\nport 1194\ntopology subnet\n\
             server 10.8.0.0 255.255.255.0\nca {}\ncert {}\nkey {}\ndh none\ntls-crypt {}\n\
             push \"route 10.200.0.0 255.255.255.0\"\npush \"dhcp-option DNS 10.8.0.1\"\n\
             keepalive 2 20\nverb 3\n",
            pki.file("ca.crt"),
            pki.file("server.crt"),
            pki.file("server.key"),
            pki.file("tc.key"),
        );
        if auth != Auth::Tls {
            let check = pki.dir.join("check-password.sh");
            write(
                &check,
                &format!(
                    "#!/bin/sh\n# openvpn passes a file: username, then password\n\
                     [ \"$(sed -n 1p \"$1\")\" = {USER} ] && [ \"$(sed -n 2p \"$1\")\" = {PASSWORD} ]\n"
                ),
            )?;
            std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| SandboxError::Sys("chmod the password check", e))?;
            conf.push_str(&format!(
                "script-security 2\nauth-user-pass-verify {} via-file\n",
                check.display()
            ));
            if auth == Auth::Password {
                conf.push_str("verify-client-cert none\nusername-as-common-name\n");
            }
        }
        let file = pki.dir.join(format!("server-{auth:?}.conf"));
        write(&file, &conf)?;
        Ok(file)
    }

    /// Waits (at most `limit`) for a server log line containing `what`.
    pub fn expect(&mut self, what: &str, limit: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(what);
                    self.seen.push(l);
                    if hit {
                        return Ok(());
                    }
                }
                Err(_) => {
                    return Err(SandboxError::Setup(format!(
                        "the openvpn server never logged {what:?}:\n{}",
                        self.seen.join("\n")
                    )));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A `.name` file that makes `program` (tinynm-openvpn) the OpenVPN plugin.
pub fn name_file(program: &Path) -> String {
    format!(
        "[VPN Connection]\nname=openvpn\nservice={OPENVPN}\nprogram={}\nsupports-multiple-connections=true\n",
        program.display()
    )
}
