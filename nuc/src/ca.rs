//! НУЦ: a test certification authority in the national conventions.
//!
//! A root CA and an issuing CA issue end-entity certificates whose subject carries
//! `SERIALNUMBER=IIN…` (and `OU=BIN…` for an employee of a legal entity), with the
//! key usages for signing and authentication. [`Signer`] signs envelope bodies
//! with such a key and certificate. The CA keeps a register of what it issued
//! and revoked ([`register`]), answers status queries and signs CRLs.

pub mod register;

use std::path::Path;

use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber, SigningKey,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use shep_proto::envelope::v1::{Body, Signature, SignatureAlgorithm, SignedEnvelope};
use time::{Duration, OffsetDateTime};

pub use register::{CertificateStatus, RevocationReason, format_serial, parse_serial};
use register::{IssuedRecord, RevocationRegistry};

/// OID of the X.520 `serialNumber` attribute, where national certificates carry
/// `IIN…`.
const SERIAL_NUMBER_OID: [u64; 4] = [2, 5, 4, 5];
/// Owner-type policy of an individual's certificate (KalkanUtil).
pub const POLICY_INDIVIDUAL: &[u64] = &[1, 2, 398, 3, 3, 4, 1, 1];
/// Owner-type policy of a legal entity's employee.
pub const POLICY_EMPLOYEE: &[u64] = &[1, 2, 398, 3, 3, 4, 1, 2];
/// Owner-type policy refinement: an ordinary employee.
pub const POLICY_EMPLOYEE_ORDINARY: &[u64] = &[1, 2, 398, 3, 3, 4, 1, 2, 5];
const CERTIFICATE_POLICIES_OID: &[u64] = &[2, 5, 29, 32];
const AUTHORITY_INFO_ACCESS_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const ACCESS_OCSP_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const ACCESS_CA_ISSUERS_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

/// Errors of the test CA and of signing.
#[derive(Debug, thiserror::Error)]
pub enum NucError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("unsupported key algorithm: Ed25519, ECDSA P-256 and RSA keys can sign here")]
    UnsupportedKey,
    #[error("randomness unavailable")]
    Random,
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
    #[error("`{path}` line {line}: {problem}")]
    Corrupt {
        path: String,
        line: usize,
        problem: String,
    },
    #[error("no certificate with serial `{0}` was issued by this НУЦ")]
    UnknownSerial(String),
    #[error("cannot parse the certificate: {0}")]
    BadCertificate(String),
}

/// Key algorithms the test CA issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    #[default]
    Ed25519,
    EcdsaP256,
    /// RSA-2048 with SHA-256 (PKCS#1 v1.5 signatures).
    Rsa2048,
}

impl KeyAlgorithm {
    fn generate(self) -> Result<KeyPair, NucError> {
        match self {
            Self::Ed25519 => Ok(KeyPair::generate_for(&rcgen::PKCS_ED25519)?),
            Self::EcdsaP256 => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?),
            // ring signs with RSA keys but cannot make them: the RustCrypto
            // `rsa` crate generates the key, ring does the rest.
            Self::Rsa2048 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .map_err(|error| NucError::Rsa(error.to_string()))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|error| NucError::Rsa(error.to_string()))?;
                Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                    &rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes()),
                    &rcgen::PKCS_RSA_SHA256,
                )?)
            }
        }
    }
}

/// What a certificate's key is for. The national CA issues separate
/// authentication (AUTH) and signing (RSA/GOST "sign") certificates; only a
/// signing certificate may sign envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// digitalSignature + nonRepudiation, EKU emailProtection.
    #[default]
    Signing,
    /// digitalSignature + keyEncipherment, EKU clientAuth.
    Authentication,
}

/// Who a certificate is issued to.
#[derive(Debug, Clone)]
pub struct IdentitySpec {
    /// The holder's IIN (`SERIALNUMBER=IIN…`).
    pub iin: String,
    /// The employer's BIN (`OU=BIN…`), for an employee of a legal entity.
    pub bin: Option<String>,
    /// The holder's name (`CN`).
    pub common_name: String,
    /// The employer's name (`O`).
    pub organization: Option<String>,
    pub algorithm: KeyAlgorithm,
    pub purpose: Purpose,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl IdentitySpec {
    /// An individual's certificate valid from an hour ago for a year.
    pub fn individual(iin: &str, common_name: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            iin: iin.to_owned(),
            bin: None,
            common_name: common_name.to_owned(),
            organization: None,
            algorithm: KeyAlgorithm::Ed25519,
            purpose: Purpose::Signing,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(365),
        }
    }

    /// A participant system's transport certificate (TLS client
    /// authentication): `CN=<system id>`, the operator's BIN (`OU=BIN…`) if
    /// any, no IIN; ECDSA P-256, which every TLS stack speaks.
    pub fn system(system_id: &str, bin: Option<&str>, organization: &str) -> Self {
        Self {
            iin: String::new(),
            bin: bin.map(str::to_owned),
            organization: Some(organization.to_owned()),
            algorithm: KeyAlgorithm::EcdsaP256,
            purpose: Purpose::Authentication,
            ..Self::individual("", system_id)
        }
    }

    /// An employee's certificate (IIN plus the employer's BIN).
    pub fn employee(iin: &str, bin: &str, common_name: &str, organization: &str) -> Self {
        Self {
            bin: Some(bin.to_owned()),
            organization: Some(organization.to_owned()),
            ..Self::individual(iin, common_name)
        }
    }
}

/// An issued key and certificate, with the chain up to (not including) the root.
#[derive(Debug)]
pub struct IssuedIdentity {
    pub key: KeyPair,
    pub certificate_der: Vec<u8>,
    pub chain_der: Vec<Vec<u8>>,
}

impl IssuedIdentity {
    /// The private key as PKCS#8 PEM, in the form OpenSSL and Python's
    /// `cryptography` read.
    pub fn key_pem(&self) -> String {
        let der = self.key.serialize_der();
        let der = pkcs8_v1(&der).unwrap_or(der);
        pem::encode(&pem::Pem::new("PRIVATE KEY", der))
    }

    /// The certificate followed by its chain, as PEM.
    pub fn certificate_pem(&self) -> String {
        std::iter::once(&self.certificate_der)
            .chain(&self.chain_der)
            .map(|der| pem_certificate(der))
            .collect()
    }

    /// Writes `<name>.key.pem` and `<name>.cert.pem` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(), NucError> {
        write_file(&dir.join(format!("{name}.key.pem")), &self.key_pem())?;
        write_file(
            &dir.join(format!("{name}.cert.pem")),
            &self.certificate_pem(),
        )
    }

    /// A signer with this key and certificate.
    pub fn signer(&self) -> Result<Signer, NucError> {
        Signer::new(
            KeyPair::from_pem(&self.key_pem())?,
            self.certificate_der.clone(),
            self.chain_der.clone(),
        )
    }
}

/// ring writes Ed25519 keys as PKCS#8 v2 (RFC 5958, with the public key),
/// which OpenSSL 3.0 and Python's `cryptography` refuse. The same key without
/// the public key is the v1 form of RFC 8410 they read (and ring reads too).
fn pkcs8_v1(der: &[u8]) -> Option<Vec<u8>> {
    use pkcs8::der::{Decode as _, Encode as _};
    let info = pkcs8::PrivateKeyInfo::from_der(der).ok()?;
    info.public_key?;
    pkcs8::PrivateKeyInfo {
        algorithm: info.algorithm,
        private_key: info.private_key,
        public_key: None,
    }
    .to_der()
    .ok()
}

/// One certificate as PEM.
pub fn pem_certificate(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn write_file(path: &Path, contents: &str) -> Result<(), NucError> {
    std::fs::write(path, contents).map_err(|source| NucError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, NucError> {
    std::fs::read_to_string(path).map_err(|source| NucError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn random_serial() -> Result<SerialNumber, NucError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NucError::Random)?;
    // A positive INTEGER: clear the top bit.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The test НУЦ: a root and an issuing CA, and the register of what the
/// issuing CA issued and revoked.
#[derive(Debug)]
pub struct CertificateAuthority {
    root_der: Vec<u8>,
    issuing_der: Vec<u8>,
    issuing: Issuer<'static, KeyPair>,
    register: RevocationRegistry,
    /// Base URL put into certificates' CRL distribution point and OCSP-style
    /// access information (e.g. `http://127.0.0.1:7700`).
    public_url: Option<String>,
}

const ROOT_FILE: &str = "root.cert.pem";
const ISSUING_FILE: &str = "issuing.cert.pem";
const ISSUING_KEY_FILE: &str = "issuing.key.pem";

/// The HTTP paths the gateway serves for the НУЦ, below its public URL.
pub const CRL_PATH: &str = "/nuc/crl";
/// Where the issuing CA certificate is served (AIA caIssuers).
pub const CA_ISSUERS_PATH: &str = "/nuc/issuing.cer";
/// The status query (the gRPC `shep.nuc.v1.Nuc/GetStatus` is the same data).
pub const STATUS_PATH: &str = "/nuc/status";

impl CertificateAuthority {
    /// Creates a new root and issuing CA (Ed25519), valid for ten years, with
    /// an in-memory register.
    pub fn generate() -> Result<Self, NucError> {
        let now = OffsetDateTime::now_utc();
        let ca_params = |common_name: &str| -> Result<CertificateParams, NucError> {
            let mut params = CertificateParams::default();
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, common_name);
            name.push(DnType::CountryName, "KZ");
            params.distinguished_name = name;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(3650);
            params.serial_number = Some(random_serial()?);
            Ok(params)
        };
        let root_key = KeyAlgorithm::Ed25519.generate()?;
        let root_params = ca_params("НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)")?;
        let root_cert = root_params.self_signed(&root_key)?;
        let root = Issuer::new(root_params, root_key);

        let issuing_key = KeyAlgorithm::Ed25519.generate()?;
        let issuing_params = ca_params("ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)")?;
        let issuing_cert = issuing_params.signed_by(&issuing_key, &root)?;
        Ok(Self {
            root_der: root_cert.der().to_vec(),
            issuing_der: issuing_cert.der().to_vec(),
            issuing: Issuer::new(issuing_params, issuing_key),
            register: RevocationRegistry::open(None)?,
            public_url: None,
        })
    }

    /// Loads the CA from `dir`, or creates and saves one there on first use.
    pub fn load_or_generate(dir: &Path) -> Result<Self, NucError> {
        if dir.join(ISSUING_KEY_FILE).exists() {
            return Self::load(dir);
        }
        std::fs::create_dir_all(dir).map_err(|source| NucError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let mut ca = Self::generate()?;
        ca.save(dir)?;
        ca.register = RevocationRegistry::open(Some(dir))?;
        Ok(ca)
    }

    /// Loads a CA saved by [`CertificateAuthority::save`], with its register.
    pub fn load(dir: &Path) -> Result<Self, NucError> {
        let root_der = first_certificate(&dir.join(ROOT_FILE))?;
        let issuing_der = first_certificate(&dir.join(ISSUING_FILE))?;
        let key = KeyPair::from_pem(&read_file(&dir.join(ISSUING_KEY_FILE))?)?;
        let issuing = Issuer::from_ca_cert_der(&CertificateDer::from(issuing_der.clone()), key)?;
        Ok(Self {
            root_der,
            issuing_der,
            issuing,
            register: RevocationRegistry::open(Some(dir))?,
            public_url: None,
        })
    }

    /// Saves the root and issuing certificates and the issuing key into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), NucError> {
        write_file(&dir.join(ROOT_FILE), &pem_certificate(&self.root_der))?;
        write_file(&dir.join(ISSUING_FILE), &pem_certificate(&self.issuing_der))?;
        write_file(
            &dir.join(ISSUING_KEY_FILE),
            &self.issuing.key().serialize_pem(),
        )
    }

    /// Sets the base URL written into issued certificates' CRL distribution
    /// point and authority information access.
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// The root certificate (the trust anchor), DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The issuing CA certificate, DER.
    pub fn issuing_der(&self) -> &[u8] {
        &self.issuing_der
    }

    /// The issuing CA's key, which signs certificates, CRLs and OCSP answers.
    pub(crate) fn issuing_key(&self) -> &KeyPair {
        self.issuing.key()
    }

    /// Issues a key and certificate for `spec` and records it.
    pub fn issue(&self, spec: &IdentitySpec) -> Result<IssuedIdentity, NucError> {
        let key = spec.algorithm.generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, spec.common_name.as_str());
        // An information system's certificate names no person.
        if !spec.iin.is_empty() {
            name.push(
                DnType::CustomDnType(SERIAL_NUMBER_OID.to_vec()),
                format!("IIN{}", spec.iin),
            );
        }
        name.push(DnType::CountryName, "KZ");
        if let Some(organization) = &spec.organization {
            name.push(DnType::OrganizationName, organization.as_str());
        }
        if let Some(bin) = &spec.bin {
            name.push(DnType::OrganizationalUnitName, format!("BIN{bin}"));
        }
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        (params.key_usages, params.extended_key_usages) = match spec.purpose {
            Purpose::Signing => (
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::ContentCommitment,
                ],
                vec![ExtendedKeyUsagePurpose::EmailProtection],
            ),
            Purpose::Authentication => (
                vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ],
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            ),
        };
        let policies: &[&[u64]] = if spec.bin.is_some() {
            &[POLICY_EMPLOYEE, POLICY_EMPLOYEE_ORDINARY]
        } else {
            &[POLICY_INDIVIDUAL]
        };
        params
            .custom_extensions
            .push(certificate_policies(policies));
        if let Some(url) = &self.public_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![format!("{url}{CRL_PATH}")],
            }];
            params.custom_extensions.push(authority_info_access(
                &format!("{url}{STATUS_PATH}"),
                &format!("{url}{CA_ISSUERS_PATH}"),
            ));
        }
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(random_serial()?);
        let certificate = params.signed_by(&key, &self.issuing)?;
        self.register.record_issued(IssuedRecord {
            // As the certificate carries it: DER drops leading zero bytes.
            serial: serial_of(certificate.der())?,
            subject: format!(
                "CN={}{}{}",
                spec.common_name,
                if spec.iin.is_empty() {
                    String::new()
                } else {
                    format!(", SERIALNUMBER=IIN{}", spec.iin)
                },
                spec.bin
                    .as_ref()
                    .map(|bin| format!(", OU=BIN{bin}"))
                    .unwrap_or_default()
            ),
            not_after: spec.not_after,
        })?;
        Ok(IssuedIdentity {
            key,
            certificate_der: certificate.der().to_vec(),
            chain_der: vec![self.issuing_der.clone()],
        })
    }

    /// Issues a TLS server certificate for `hosts` (DNS names or IP
    /// addresses; the first is the CN), ECDSA P-256, valid for a year.
    pub fn issue_server(&self, hosts: &[String]) -> Result<IssuedIdentity, NucError> {
        let key = KeyAlgorithm::EcdsaP256.generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            hosts.first().map(String::as_str).unwrap_or("localhost"),
        );
        name.push(DnType::CountryName, "KZ");
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        params.serial_number = Some(random_serial()?);
        let certificate = params.signed_by(&key, &self.issuing)?;
        Ok(IssuedIdentity {
            key,
            certificate_der: certificate.der().to_vec(),
            chain_der: vec![self.issuing_der.clone()],
        })
    }

    /// Revokes the certificate with `serial`.
    pub fn revoke(
        &self,
        serial: &[u8],
        reason: RevocationReason,
    ) -> Result<CertificateStatus, NucError> {
        self.register
            .revoke(serial, reason, OffsetDateTime::now_utc())
    }

    /// The status of the certificate with `serial`.
    pub fn status(&self, serial: &[u8]) -> CertificateStatus {
        self.register.status(serial)
    }

    /// The distinguished name (DER) this CA issues under: a certificate
    /// naming another issuer is not in its register, whatever its serial.
    pub fn issuer_name(&self) -> Vec<u8> {
        x509_parser::parse_x509_certificate(&self.issuing_der)
            .map(|(_, certificate)| certificate.subject().as_raw().to_vec())
            .unwrap_or_default()
    }

    /// The status of the certificate `serial` of `issuer` (a DN, DER):
    /// UNKNOWN for another issuer's.
    pub fn status_of(&self, issuer: &[u8], serial: &[u8]) -> CertificateStatus {
        if issuer == self.issuer_name().as_slice() {
            self.register.status(serial)
        } else {
            CertificateStatus::Unknown
        }
    }

    /// What the register holds about `serial`: the subject, if issued here.
    pub fn issued_subject(&self, serial: &[u8]) -> Option<String> {
        self.register.issued(serial).map(|record| record.subject)
    }

    /// A CRL of every revocation, signed by the issuing CA, valid for a day.
    pub fn crl(&self) -> Result<Vec<u8>, NucError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::days(1),
            // Increasing with time, as RFC 5280 asks of CRL numbers.
            crl_number: SerialNumber::from(now.unix_timestamp() as u64),
            issuing_distribution_point: None,
            revoked_certs: self
                .register
                .revoked()
                .into_iter()
                .map(|(serial, at, reason)| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: at,
                    reason_code: Some(reason.to_rcgen()),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuing)?.der().to_vec())
    }
}

/// The serial number of a DER certificate.
pub fn serial_of(certificate_der: &[u8]) -> Result<Vec<u8>, NucError> {
    x509_parser::parse_x509_certificate(certificate_der)
        .map(|(_, certificate)| certificate.raw_serial().to_vec())
        .map_err(|error| NucError::BadCertificate(error.to_string()))
}

fn oid(components: &[u64]) -> yasna::models::ObjectIdentifier {
    yasna::models::ObjectIdentifier::from_slice(components)
}

/// certificatePolicies: a SEQUENCE of PolicyInformation with the owner-type OIDs.
fn certificate_policies(policies: &[&[u64]]) -> CustomExtension {
    let content = yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            for policy in policies {
                writer
                    .next()
                    .write_sequence(|writer| writer.next().write_oid(&oid(policy)));
            }
        });
    });
    CustomExtension::from_oid_content(CERTIFICATE_POLICIES_OID, content)
}

/// authorityInfoAccess: the status responder and the issuer certificate URLs.
fn authority_info_access(status_url: &str, ca_issuers_url: &str) -> CustomExtension {
    let content = yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            for (method, url) in [
                (ACCESS_OCSP_OID, status_url),
                (ACCESS_CA_ISSUERS_OID, ca_issuers_url),
            ] {
                writer.next().write_sequence(|writer| {
                    writer.next().write_oid(&oid(method));
                    // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String.
                    writer
                        .next()
                        .write_tagged_implicit(yasna::Tag::context(6), |writer| {
                            writer.write_ia5_string(url)
                        });
                });
            }
        });
    });
    CustomExtension::from_oid_content(AUTHORITY_INFO_ACCESS_OID, content)
}

fn first_certificate(path: &Path) -> Result<Vec<u8>, NucError> {
    certificates(path)?
        .into_iter()
        .next()
        .ok_or_else(|| NucError::NoCertificate {
            path: path.display().to_string(),
        })
}

/// Reads every PEM certificate in `path`, in order.
pub fn certificates(path: &Path) -> Result<Vec<Vec<u8>>, NucError> {
    let pem = read_file(path)?;
    Ok(CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|der| der.to_vec())
        .collect())
}

/// Signs envelope bodies with one key and certificate.
#[derive(Debug)]
pub struct Signer {
    key: KeyPair,
    algorithm: SignatureAlgorithm,
    certificate_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
}

impl Signer {
    /// Creates a signer; the key must match the certificate.
    pub fn new(
        key: KeyPair,
        certificate_der: Vec<u8>,
        chain_der: Vec<Vec<u8>>,
    ) -> Result<Self, NucError> {
        let algorithm = if key.algorithm() == &rcgen::PKCS_ED25519 {
            SignatureAlgorithm::Ed25519
        } else if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            SignatureAlgorithm::EcdsaP256Sha256
        } else if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
            SignatureAlgorithm::RsaPkcs1Sha256
        } else {
            return Err(NucError::UnsupportedKey);
        };
        Ok(Self {
            key,
            algorithm,
            certificate_der,
            chain_der,
        })
    }

    /// Loads a PKCS#8 PEM key and a PEM certificate file (leaf first, then the chain).
    pub fn from_files(key_path: &Path, certificate_path: &Path) -> Result<Self, NucError> {
        let key = KeyPair::from_pem(&read_file(key_path)?)?;
        let mut all = certificates(certificate_path)?.into_iter();
        let leaf = all.next().ok_or_else(|| NucError::NoCertificate {
            path: certificate_path.display().to_string(),
        })?;
        Self::new(key, leaf, all.collect())
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The chain certificates sent with each signature (DER, leaf excluded).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The algorithm this signer's key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Signs `bytes` and returns the detached signature.
    pub fn sign(&self, bytes: &[u8]) -> Result<Signature, NucError> {
        Ok(Signature {
            algorithm: self.algorithm.into(),
            certificate_der: self.certificate_der.clone(),
            value: self.key.sign(bytes)?,
            chain_der: self.chain_der.clone(),
        })
    }

    /// Serializes `body` and signs the bytes.
    pub fn seal(&self, body: &Body) -> Result<SignedEnvelope, NucError> {
        let bytes = body.encode_to_vec();
        let signature = self.sign(&bytes)?;
        Ok(SignedEnvelope {
            xml_data: Vec::new(),
            body: bytes,
            signature: Some(signature),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_pem_round_trips_through_files() {
        let dir = std::env::temp_dir().join(format!("shep-nuc-test-{}", std::process::id()));
        let ca = CertificateAuthority::load_or_generate(&dir).unwrap();
        let again = CertificateAuthority::load_or_generate(&dir).unwrap();
        assert_eq!(ca.root_der(), again.root_der());

        let identity = again
            .issue(&IdentitySpec::individual(
                "850315301235",
                "СЕРИКБАЕВ НУРЛАН",
            ))
            .unwrap();
        identity.write(&dir, "applicant").unwrap();
        let signer = Signer::from_files(
            &dir.join("applicant.key.pem"),
            &dir.join("applicant.cert.pem"),
        )
        .unwrap();
        assert_eq!(
            signer.certificate_der(),
            identity.certificate_der.as_slice()
        );
        let signature = signer.sign(b"body").unwrap();
        assert_eq!(signature.value.len(), 64);
        assert_eq!(signature.chain_der, vec![ca.issuing_der().to_vec()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
