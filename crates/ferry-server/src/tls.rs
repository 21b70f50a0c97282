//! TLS for ssl and wss listeners (rustls with the ring provider, TLS 1.2 and 1.3): loading
//! and checking the PEM files, reloading them when they change, and reading the client
//! certificate's CN, DN or SAN for `peer_cert_as_username` / `peer_cert_as_clientid`.
//!
//! A [`TlsConfig`] holds the current `rustls::ServerConfig` behind a short `RwLock` (read
//! once per handshake, never across an `.await`); a reload builds a new one from the files
//! and swaps it in, so handshakes in progress and established connections keep the one
//! they started with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::config::{PeerCertField, TlsOptions, Verify};

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// What is wrong with a listener's TLS settings or files. `key` is the config key
/// (`certfile`, `keyfile`, `cacertfile`, ...); the listener's own key is put in front by
/// the caller.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: required")]
    Required { key: &'static str },
    #[error("{key}: cannot read {}: {source}", file.display())]
    Read {
        key: &'static str,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: no {what} found in {}", file.display())]
    Missing {
        key: &'static str,
        file: PathBuf,
        what: &'static str,
    },
    #[error("{key}: {}: not a valid X.509 certificate: {reason}", file.display())]
    BadCertificate {
        key: &'static str,
        file: PathBuf,
        reason: String,
    },
    #[error("{key}: the certificate {subject:?} in {} expired on {not_after}", file.display())]
    Expired {
        key: &'static str,
        file: PathBuf,
        subject: String,
        not_after: String,
    },
    #[error("{key}: {}: {reason}", file.display())]
    Rejected {
        key: &'static str,
        file: PathBuf,
        reason: String,
    },
    #[error("{key}: needs verify = \"verify_peer\" (and a cacertfile)")]
    NeedsVerifyPeer { key: &'static str },
}

fn read(key: &'static str, file: &Path) -> Result<Vec<u8>, TlsError> {
    if file.as_os_str().is_empty() {
        return Err(TlsError::Required { key });
    }
    std::fs::read(file).map_err(|source| TlsError::Read {
        key,
        file: file.to_owned(),
        source,
    })
}

/// Reads a PEM file of certificates, refusing an empty one and expired certificates.
fn certificates(key: &'static str, file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, file)?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| TlsError::BadCertificate {
            key,
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        let parsed = Certificate::from_der(&c).map_err(|e| TlsError::BadCertificate {
            key,
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        let not_after = parsed.tbs_certificate.validity.not_after;
        if not_after.to_system_time() < SystemTime::now() {
            return Err(TlsError::Expired {
                key,
                file: file.to_owned(),
                subject: parsed.tbs_certificate.subject.to_string(),
                not_after: not_after.to_string(),
            });
        }
        certs.push(c);
    }
    if certs.is_empty() {
        return Err(TlsError::Missing {
            key,
            file: file.to_owned(),
            what: "PEM certificate",
        });
    }
    Ok(certs)
}

/// Builds the rustls server config from the files named in `opts`.
pub fn server_config(opts: &TlsOptions) -> Result<ServerConfig, TlsError> {
    let verify_peer = opts.verify == Verify::VerifyPeer;
    if !verify_peer {
        if opts.peer_cert_as_username.is_some() {
            return Err(TlsError::NeedsVerifyPeer {
                key: "peer_cert_as_username",
            });
        }
        if opts.peer_cert_as_clientid.is_some() {
            return Err(TlsError::NeedsVerifyPeer {
                key: "peer_cert_as_clientid",
            });
        }
    }
    let chain = certificates("certfile", &opts.certfile)?;
    let key_pem = read("keyfile", &opts.keyfile)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Missing {
        key: "keyfile",
        file: opts.keyfile.clone(),
        what: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "PEM private key",
            _ => "valid PEM private key",
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rejected {
            key: "certfile",
            file: opts.certfile.clone(),
            reason: e.to_string(),
        })?;
    let builder = if verify_peer {
        let ca = opts.cacertfile.as_deref().unwrap_or(Path::new(""));
        let mut roots = RootCertStore::empty();
        for c in certificates("cacertfile", ca)? {
            roots.add(c).map_err(|e| TlsError::Rejected {
                key: "cacertfile",
                file: ca.to_owned(),
                reason: e.to_string(),
            })?;
        }
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let v = if opts.fail_if_no_peer_cert {
            v
        } else {
            v.allow_unauthenticated()
        };
        let v = v.build().map_err(|e| TlsError::Rejected {
            key: "cacertfile",
            file: ca.to_owned(),
            reason: e.to_string(),
        })?;
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rejected {
            key: "keyfile",
            file: opts.keyfile.clone(),
            reason: format!("does not go with the certfile: {e}"),
        })
}

/// When a file was last changed, as far as polling can tell.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The TLS side of one listener: the current server config and how to reload it.
pub struct TlsConfig {
    opts: TlsOptions,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("opts", &self.opts)
            .finish()
    }
}

impl TlsConfig {
    /// Loads and checks the files; the error names the key and the file.
    pub fn load(opts: TlsOptions) -> Result<TlsConfig, TlsError> {
        let stamps = Mutex::new(Self::stamps_of(&opts));
        let cfg = server_config(&opts)?;
        Ok(TlsConfig {
            opts,
            current: RwLock::new(Arc::new(cfg)),
            stamps,
        })
    }

    fn stamps_of(opts: &TlsOptions) -> Vec<Stamp> {
        let mut v = vec![stamp(&opts.certfile), stamp(&opts.keyfile)];
        if let Some(ca) = &opts.cacertfile {
            v.push(stamp(ca));
        }
        v
    }

    pub fn options(&self) -> &TlsOptions {
        &self.opts
    }

    /// The config new handshakes use.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again and, if they are good, uses them for new handshakes. On an
    /// error the previous certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Self::stamps_of(&self.opts);
        if let Ok(mut s) = self.stamps.lock() {
            *s = fresh;
        }
        let cfg = Arc::new(server_config(&self.opts)?);
        match self.current.write() {
            Ok(mut g) => *g = cfg,
            Err(poisoned) => *poisoned.into_inner() = cfg,
        }
        Ok(())
    }

    /// Reloads if any file's modification time or size changed since the last (re)load;
    /// `None` if nothing changed. A failed reload is reported once per change.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let fresh = Self::stamps_of(&self.opts);
        let changed = match self.stamps.lock() {
            Ok(s) => *s != fresh,
            Err(_) => true,
        };
        changed.then(|| self.reload())
    }
}

/// The requested part of a client certificate (DER), if it has one.
pub(crate) fn peer_cert_field(der: &[u8], field: PeerCertField) -> Option<String> {
    let cert = Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate;
    match field {
        PeerCertField::Dn => Some(tbs.subject.to_string()),
        PeerCertField::Cn => tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == OID_CN)
            .and_then(|atv| {
                let v = &atv.value;
                Utf8StringRef::try_from(v)
                    .map(|s| s.to_string())
                    .or_else(|_| PrintableStringRef::try_from(v).map(|s| s.to_string()))
                    .or_else(|_| Ia5StringRef::try_from(v).map(|s| s.to_string()))
                    .or_else(|_| TeletexStringRef::try_from(v).map(|s| s.to_string()))
                    .ok()
            }),
        PeerCertField::San => {
            let ext = tbs.extensions?.into_iter().find(|e| e.extn_id == OID_SAN)?;
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).ok()?;
            let pick = |want: fn(&GeneralName) -> Option<String>| san.0.iter().find_map(want);
            pick(|g| match g {
                GeneralName::DnsName(s) => Some(s.to_string()),
                _ => None,
            })
            .or_else(|| {
                pick(|g| match g {
                    GeneralName::Rfc822Name(s) => Some(s.to_string()),
                    _ => None,
                })
            })
            .or_else(|| {
                pick(|g| match g {
                    GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                    _ => None,
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_dn_and_san_are_read_from_a_client_certificate() {
        let mut p =
            rcgen::CertificateParams::new(vec!["dev1.fleet.example".to_owned()]).expect("params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Fleet");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "vehicle-7");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("cert");
        let der = cert.der().to_vec();
        assert_eq!(
            peer_cert_field(&der, PeerCertField::Cn).as_deref(),
            Some("vehicle-7")
        );
        assert_eq!(
            peer_cert_field(&der, PeerCertField::San).as_deref(),
            Some("dev1.fleet.example")
        );
        let dn = peer_cert_field(&der, PeerCertField::Dn).expect("dn");
        assert!(
            dn.contains("CN=vehicle-7") && dn.contains("O=Fleet"),
            "{dn}"
        );
    }

    fn opts(dir: &Path) -> TlsOptions {
        TlsOptions {
            certfile: dir.join("cert.pem"),
            keyfile: dir.join("key.pem"),
            cacertfile: None,
            verify: Verify::VerifyNone,
            fail_if_no_peer_cert: false,
            peer_cert_as_username: None,
            peer_cert_as_clientid: None,
        }
    }

    #[test]
    fn errors_name_the_key_the_file_and_an_expiry_date() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        let e = server_config(&o).unwrap_err().to_string();
        assert!(
            e.starts_with("certfile: cannot read ") && e.contains("cert.pem"),
            "{e}"
        );
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 6, 30);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        std::fs::write(&o.certfile, cert.pem()).unwrap();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(
            e.starts_with("certfile: the certificate") && e.contains("expired on 2021-06-30"),
            "{e}"
        );
        p.not_after = rcgen::date_time_ymd(4000, 1, 1);
        std::fs::write(&o.certfile, p.self_signed(&key).unwrap().pem()).unwrap();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(e.starts_with("keyfile: cannot read"), "{e}");
        std::fs::write(&o.keyfile, "nothing here").unwrap();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(e.starts_with("keyfile: no PEM private key found in"), "{e}");
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&o.keyfile, other.serialize_pem()).unwrap();
        let e = server_config(&o).unwrap_err().to_string();
        assert!(e.contains("does not go with the certfile"), "{e}");
        std::fs::write(&o.keyfile, key.serialize_pem()).unwrap();
        server_config(&o).unwrap();
        let needs = TlsOptions {
            peer_cert_as_clientid: Some(PeerCertField::Cn),
            ..o.clone()
        };
        let e = server_config(&needs).unwrap_err().to_string();
        assert!(e.starts_with("peer_cert_as_clientid: needs verify"), "{e}");
        let no_ca = TlsOptions {
            verify: Verify::VerifyPeer,
            ..o
        };
        let e = server_config(&no_ca).unwrap_err().to_string();
        assert_eq!(e, "cacertfile: required");
    }
}
