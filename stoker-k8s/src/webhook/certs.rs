//! The webhooks' own certificate authority, without cert-manager: what is in the TLS Secret,
//! whether it is still good, and how a new CA or serving certificate is made. Pure functions of
//! the Secret's bytes and the time; the keeper ([`super::keeper`]) does the I/O.
//!
//! Words used here:
//! - **authority** (CA): a self-signed certificate whose key signs the serving certificates.
//!   The API server trusts it through the webhook configurations' `caBundle`.
//! - **bundle**: the PEM the `caBundle` holds — the current authority first, then, during a
//!   rotation, the previous one, so certificates signed by either are trusted.
//! - **serving certificate**: what the webhook server presents; names the Service's DNS names.
//! - **staged**: a new authority written into the bundle but not yet signing the serving
//!   certificate. It signs only once the API server has had time to see the new bundle, so no
//!   admission call meets a certificate it cannot verify.
//!
//! A certificate is renewed when less than a third of its validity is left (cert-manager's
//! default), which leaves replicas many polling rounds to pick the new one up.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::error::{Error, Result};

/// Secret key of the bundle (PEM, current authority first).
pub const CA_CERT_KEY: &str = "ca.crt";
/// Secret key of the current authority's private key (PEM).
pub const CA_KEY_KEY: &str = "ca.key";
/// Secret key of the serving certificate (PEM), as in a `kubernetes.io/tls` Secret.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// Secret key of the serving certificate's private key (PEM).
pub const TLS_KEY_KEY: &str = "tls.key";

/// The four PEM documents of the TLS Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// The bundle: the current authority, then possibly the previous one.
    pub ca_bundle: String,
    /// The current authority's key.
    pub ca_key: String,
    /// The serving certificate.
    pub cert: String,
    /// The serving certificate's key.
    pub key: String,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("ca_bundle", &self.ca_bundle)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// How long new certificates are valid, and how long a staged authority waits before it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A new authority's validity (default 10 years).
    pub authority: Duration,
    /// A new serving certificate's validity (default 1 year).
    pub serving: Duration,
    /// How long a staged authority waits before signing (default 1 minute): the time the API
    /// server needs to see a new `caBundle`.
    pub staging: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Lifetimes {
            authority: Duration::from_secs(10 * 365 * DAY),
            serving: Duration::from_secs(365 * DAY),
            staging: Duration::from_secs(60),
        }
    }
}

/// What a certificate says about itself, as far as renewing it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    not_before: SystemTime,
    not_after: SystemTime,
    subject: String,
    issuer: String,
    names: BTreeSet<String>,
}

impl Facts {
    /// When less than a third of the validity is left.
    fn renew_at(&self) -> SystemTime {
        let span = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_after - span / 3
    }
}

/// What the keeper must do with the Secret's material at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good until `recheck` (when the first renewal or the staged authority falls due).
    Fresh {
        /// When to look again at the latest.
        recheck: SystemTime,
    },
    /// Make a new authority and stage it (no usable authority, or it is due).
    NewAuthority(String),
    /// Sign a new serving certificate with the current authority.
    NewServing(String),
}

/// Judges `material` (None: no Secret, or one missing keys) for serving `names` at `now`.
/// `staged_at` is when the current authority was staged, if it was.
pub fn judge(
    material: Option<&Material>,
    names: &BTreeSet<String>,
    now: SystemTime,
    staged_at: Option<SystemTime>,
    lifetimes: &Lifetimes,
) -> Verdict {
    let Some(material) = material else {
        return Verdict::NewAuthority("no certificate authority yet".to_owned());
    };
    let authority = match first_certificate(&material.ca_bundle) {
        Ok(facts) => facts,
        Err(why) => return Verdict::NewAuthority(format!("the authority: {why}")),
    };
    if KeyPair::from_pem(&material.ca_key).is_err() {
        return Verdict::NewAuthority("the authority's key does not parse".to_owned());
    }
    if now >= authority.renew_at() {
        return Verdict::NewAuthority("the authority is due for renewal".to_owned());
    }
    let serving = match first_certificate(&material.cert) {
        Ok(facts) => facts,
        Err(why) => return Verdict::NewServing(format!("the serving certificate: {why}")),
    };
    let usable_at = staged_at.map_or(now, |at| at + lifetimes.staging);
    let staged = serving.issuer != authority.subject;
    if let Some(why) = serving_problem(&serving, material, names, now) {
        return Verdict::NewServing(why);
    }
    if staged && now >= usable_at {
        return Verdict::NewServing("the staged authority is ready to sign".to_owned());
    }
    let mut recheck = authority.renew_at().min(serving.renew_at());
    if staged {
        recheck = recheck.min(usable_at);
    }
    Verdict::Fresh { recheck }
}

/// Why the serving certificate cannot stay, if it cannot.
fn serving_problem(
    serving: &Facts,
    material: &Material,
    names: &BTreeSet<String>,
    now: SystemTime,
) -> Option<String> {
    if now >= serving.renew_at() {
        return Some("the serving certificate is due for renewal".to_owned());
    }
    if !names.is_subset(&serving.names) {
        let missing: Vec<&String> = names.difference(&serving.names).collect();
        return Some(format!("the serving certificate does not name {missing:?}"));
    }
    let trusted = certificates(&material.ca_bundle)
        .iter()
        .any(|ca| ca.subject == serving.issuer && now < ca.not_after);
    if !trusted {
        return Some("the serving certificate's issuer is not in the bundle".to_owned());
    }
    if KeyPair::from_pem(&material.key).is_err() {
        return Some("the serving certificate's key does not parse".to_owned());
    }
    None
}

/// A new authority staged in front of the current one: the bundle becomes `new, current`
/// (older ones are dropped) and the serving certificate stays as it is until the new authority
/// is usable. With no material yet, the new authority signs a serving certificate at once
/// (nobody trusts anything yet, so there is nothing to wait for).
pub fn stage_authority(
    material: Option<&Material>,
    names: &BTreeSet<String>,
    now: SystemTime,
    lifetimes: &Lifetimes,
) -> Result<Material> {
    let (ca_cert, ca_key) = new_authority(now, lifetimes.authority)?;
    match material {
        Some(old) if first_certificate(&old.ca_bundle).is_ok() => {
            let previous = pem_blocks(&old.ca_bundle)
                .into_iter()
                .next()
                .unwrap_or_default();
            Ok(Material {
                ca_bundle: format!("{ca_cert}{previous}"),
                ca_key,
                cert: old.cert.clone(),
                key: old.key.clone(),
            })
        }
        _ => {
            let mut material = Material {
                ca_bundle: ca_cert,
                ca_key,
                cert: String::new(),
                key: String::new(),
            };
            sign_serving(&mut material, names, now, lifetimes)?;
            Ok(material)
        }
    }
}

/// Replaces the serving certificate with one the current authority signs for `names`.
pub fn sign_serving(
    material: &mut Material,
    names: &BTreeSet<String>,
    now: SystemTime,
    lifetimes: &Lifetimes,
) -> Result<()> {
    let ca_pem = pem_blocks(&material.ca_bundle)
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the bundle holds no certificate"))?;
    let ca_key = KeyPair::from_pem(&material.ca_key).map_err(rcgen_error("the authority's key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(rcgen_error("the authority"))?;
    let key = KeyPair::generate().map_err(rcgen_error("a serving key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("stoker-webhook");
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, now, lifetimes.serving)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(rcgen_error("signing the serving certificate"))?;
    material.cert = cert.pem();
    material.key = key.serialize_pem();
    Ok(())
}

/// A new self-signed authority (certificate and key, PEM).
fn new_authority(now: SystemTime, lifetime: Duration) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(rcgen_error("an authority key"))?;
    let mut params = CertificateParams::default();
    // The name tells authorities apart (a serving certificate's issuer names the one that
    // signed it, which is how a staged authority is recognised): the time it was made and the
    // end of its public key, which is random.
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let raw = key.public_key_raw();
    let tail: String = raw[raw.len().saturating_sub(6)..]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    params.distinguished_name = name(&format!("stoker-webhook-ca@{}-{tail}", since.as_secs()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, now, lifetime)?;
    let cert = params
        .self_signed(&key)
        .map_err(rcgen_error("self-signing the authority"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn san(name: &str) -> Result<SanType> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .try_into()
        .map_err(|_| invalid(&format!("{name:?} is not a DNS name")))?;
    Ok(SanType::DnsName(dns))
}

/// Valid from a minute ago (clocks differ a little between nodes) for `lifetime`.
fn validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) -> Result<()> {
    let start = now - Duration::from_secs(60).min(lifetime / 10);
    params.not_before = offset(start)?;
    params.not_after = offset(now + lifetime)?;
    Ok(())
}

fn offset(at: SystemTime) -> Result<time::OffsetDateTime> {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid("the clock is before 1970"))?
        .as_secs();
    let seconds = i64::try_from(seconds).map_err(|_| invalid("a time beyond 2^63 seconds"))?;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| invalid("a time out of the certificate range"))
}

/// The PEM `CERTIFICATE` blocks of `pem`, each as its own PEM text.
fn pem_blocks(pem: &str) -> Vec<String> {
    pem::parse_many(pem)
        .unwrap_or_default()
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| pem::encode(&block))
        .collect()
}

fn certificates(pem: &str) -> Vec<Facts> {
    pem::parse_many(pem)
        .unwrap_or_default()
        .iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .filter_map(|block| facts(block.contents()).ok())
        .collect()
}

fn first_certificate(pem: &str) -> std::result::Result<Facts, String> {
    let blocks = pem::parse_many(pem).map_err(|e| format!("not PEM: {e}"))?;
    let block = blocks
        .iter()
        .find(|block| block.tag() == "CERTIFICATE")
        .ok_or("no CERTIFICATE block")?;
    facts(block.contents())
}

fn facts(der: &[u8]) -> std::result::Result<Facts, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("not X.509: {e}"))?;
    let time = |t: x509_parser::time::ASN1Time| {
        let seconds = u64::try_from(t.timestamp()).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(seconds)
    };
    let mut names = BTreeSet::new();
    if let Ok(Some(alt)) = cert.subject_alternative_name() {
        for general in &alt.value.general_names {
            match general {
                GeneralName::DNSName(dns) => {
                    names.insert((*dns).to_owned());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Facts {
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// The serving certificate's expiry, for logs and tests.
pub fn serving_not_after(material: &Material) -> Option<SystemTime> {
    first_certificate(&material.cert).ok().map(|f| f.not_after)
}

/// The subject of the certificate that signed the serving certificate, for logs and tests.
pub fn serving_issuer(material: &Material) -> Option<String> {
    first_certificate(&material.cert).ok().map(|f| f.issuer)
}

fn invalid(message: &str) -> Error {
    Error::Certificate {
        message: message.to_owned(),
    }
}

fn rcgen_error(what: &'static str) -> impl Fn(rcgen::Error) -> Error {
    move |error| Error::Certificate {
        message: format!("{what}: {error}"),
    }
}

#[cfg(test)]
mod tests;
