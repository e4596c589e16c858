//! A certificate authority made for one run: [`TestCertificates`](crate::TestCertificates).

use std::sync::atomic::{AtomicU64, Ordering};

use pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority made for one run, and a server certificate it signed.
#[derive(Debug)]
pub struct TestCertificates {
    /// The CA certificate, PEM: give it to the client as its trusted root.
    pub ca_pem: String,
    /// The server's chain (leaf, then CA), DER.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key, PKCS#8 DER.
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl TestCertificates {
    /// Generates a CA and a leaf certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    ///
    /// rcgen's error if a name is unusable.
    pub fn generate(names: &[String]) -> Result<TestCertificates, rcgen::Error> {
        let ca = new_ca("https-pool test CA")?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(names.to_vec())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "https-pool test server");
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
        Ok(TestCertificates {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        })
    }
}

/// A self-signed CA with a name no other CA of this process has: verifiers find issuers by
/// name, so two test CAs sharing one would look like a bad signature instead of an unknown
/// issuer.
fn new_ca(label: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    static CA_SERIAL: AtomicU64 = AtomicU64::new(0);
    let serial = CA_SERIAL.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("{label} {}-{serial}-{nanos}", std::process::id()),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)
}

/// A certificate authority for client certificates (mutual TLS): give its
/// [`ca_pem`](Self::ca_pem) to a server
/// ([`TestServerConfig::client_auth_ca_pem`](crate::TestServerConfig::client_auth_ca_pem)) and
/// the identities it [`issue`](Self::issue)s to clients.
pub struct TestClientCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClientCa").finish_non_exhaustive()
    }
}

/// A client certificate and its private key, PEM, as a client configures them.
#[derive(Debug, Clone)]
pub struct TestClientIdentity {
    /// The client's certificate chain: its certificate, then the CA's.
    pub cert_chain_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl TestClientCa {
    /// A new CA.
    ///
    /// # Errors
    ///
    /// rcgen's error if key generation or signing fails.
    pub fn generate() -> Result<TestClientCa, rcgen::Error> {
        Ok(TestClientCa {
            issuer: new_ca("https-pool test client CA")?,
        })
    }

    /// The CA certificate, PEM: what the server trusts client certificates by.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate for `common_name` with a new ECDSA P-256 key.
    ///
    /// # Errors
    ///
    /// rcgen's error if key generation or signing fails.
    pub fn issue(&self, common_name: &str) -> Result<TestClientIdentity, rcgen::Error> {
        self.issue_for(common_name, KeyPair::generate()?)
    }

    /// A client certificate for `common_name` and the key in `key_pem` (PKCS#8 PEM; RSA or
    /// ECDSA), e.g. an RSA key, which rcgen cannot generate with *ring*.
    ///
    /// # Errors
    ///
    /// rcgen's error if the key does not parse or signing fails.
    pub fn issue_for_key(
        &self,
        common_name: &str,
        key_pem: &str,
    ) -> Result<TestClientIdentity, rcgen::Error> {
        self.issue_for(common_name, KeyPair::from_pem(key_pem)?)
    }

    fn issue_for(
        &self,
        common_name: &str,
        key: KeyPair,
    ) -> Result<TestClientIdentity, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(TestClientIdentity {
            cert_chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
        })
    }
}
