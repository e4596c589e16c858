//! A certificate authority made for one run: [`TestCertificates`](crate::TestCertificates).

use std::sync::atomic::{AtomicU64, Ordering};

use pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
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
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        // A distinct name per CA: verifiers find issuers by name, so two test CAs sharing
        // one would look like a bad signature instead of an unknown issuer.
        static CA_SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = CA_SERIAL.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("https-pool test CA {}-{serial}-{nanos}", std::process::id()),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

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
