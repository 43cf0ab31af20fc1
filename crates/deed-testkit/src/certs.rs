//! Throwaway TLS material for one test, made with the openssl command: a
//! CA, a server certificate for 127.0.0.1 and localhost, and a client
//! certificate, all signed by the CA; and a second, unrelated CA that
//! nothing is signed by, to prove verification refuses a stranger.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("cannot run openssl ({e}): apt-get install openssl (scripts/setup does)")
    });
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Certs {
    /// Certificates for one test; the client certificate's common name is
    /// `client` (PostgreSQL's `cert` authentication takes it as the role).
    pub fn make(label: &str, client: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("deed-certs-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("certs directory");
        let key = |name: &str| {
            openssl(
                &dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    name,
                ],
            );
        };
        for (ca, subject) in [("ca", "/CN=deed test CA"), ("other_ca", "/CN=someone else")] {
            key(&format!("{ca}.key"));
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    &format!("{ca}.key"),
                    "-days",
                    "2",
                    "-subj",
                    subject,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-out",
                    &format!("{ca}.pem"),
                ],
            );
        }
        let client_subject = format!("/CN={client}");
        for (name, subject, ext) in [
            (
                "server",
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", client_subject.as_str(), "extendedKeyUsage=clientAuth"),
        ] {
            key(&format!("{name}.key"));
            openssl(
                &dir,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-subj",
                    subject,
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            std::fs::write(dir.join(format!("{name}.ext")), format!("{ext}\n"))
                .expect("extensions");
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other_ca.pem"),
            dir,
        }
    }
}

impl Certs {
    /// Lets a PostgreSQL server started as `postgres` (when the tests run
    /// as root) read the server's files, its key private to it.
    pub fn readable_by_postgres(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let files = [&self.server_cert, &self.server_key, &self.ca];
        for f in files {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let status =
                Command::new("chown").arg("postgres:postgres").args(files).status().expect("chown");
            assert!(status.success(), "chown postgres the server's certificate files");
        }
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
