//! `shep certs …` and `shep sign`: the НУЦ from the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use prost::Message;
use shep_nuc::ca::{Signer, certificates, format_serial};
use shep_proto::envelope::v1::Body;
use shep_proto::nuc::v1::nuc_client::NucClient;
use shep_proto::nuc::v1::{
    self as pb, IssueRequest, RevokeRequest, StatusRequest, StatusResponse, revoke_request,
    status_request,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use shep_gateway::server::DataDir;

use super::admin::AdminArgs;
use super::{DEFAULT_GATEWAY, connect, connect_as, describe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum AlgorithmArg {
    Ed25519,
    P256,
    Rsa2048,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum PurposeArg {
    /// May sign envelopes (EKU emailProtection).
    Signing,
    /// Authentication only (EKU clientAuth): the gateway refuses its signatures.
    Authentication,
}

#[derive(Debug, Subcommand)]
pub(super) enum CertsCommand {
    /// Issues a key and certificate from the running simulator's НУЦ.
    Issue {
        /// The holder's IIN (SERIALNUMBER=IIN…).
        #[arg(long)]
        iin: String,
        /// The employer's BIN (OU=BIN…), for an employee of a legal entity.
        #[arg(long)]
        bin: Option<String>,
        /// The holder's name (CN).
        #[arg(long)]
        name: Option<String>,
        /// The employer's name (O).
        #[arg(long)]
        org: Option<String>,
        #[arg(long, value_enum, default_value = "ed25519")]
        alg: AlgorithmArg,
        #[arg(long, value_enum, default_value = "signing")]
        purpose: PurposeArg,
        /// Valid for this many days from `--not-before`.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Validity start, RFC 3339 (default: an hour ago).
        #[arg(long)]
        not_before: Option<String>,
        /// Validity end, RFC 3339 (overrides `--days`).
        #[arg(long)]
        not_after: Option<String>,
        /// Writes `<out>.key.pem` (PKCS#8) and `<out>.cert.pem` (certificate, then chain).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revokes a certificate.
    Revoke {
        /// The certificate (PEM).
        #[arg(long, conflicts_with = "serial")]
        cert: Option<PathBuf>,
        /// Or its serial number in hex.
        #[arg(long)]
        serial: Option<String>,
        /// unspecified, key-compromise, affiliation-changed, superseded, cessation-of-operation.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Shows a certificate: subject, IIN/BIN, validity, usages, and its status.
    Show {
        /// The certificate (PEM).
        cert: PathBuf,
        #[arg(long, default_value = DEFAULT_GATEWAY)]
        gateway: String,
    },
}

fn parse_time(field: &str, text: &str) -> anyhow::Result<prost_types::Timestamp> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("`--{field}` `{text}` is not an RFC 3339 time"))?;
    Ok(shep_gateway::storage::timestamp(time))
}

fn print_status(status: &StatusResponse) {
    let what = match status.status() {
        pb::CertificateStatus::Good => "good".to_owned(),
        pb::CertificateStatus::Revoked => format!(
            "REVOKED on {} ({})",
            status
                .revoked_at
                .as_ref()
                .and_then(|time| OffsetDateTime::from_unix_timestamp(time.seconds).ok())
                .map(shep_gateway::lifecycle::local_time)
                .unwrap_or_default(),
            status.reason
        ),
        _ => "unknown to this НУЦ".to_owned(),
    };
    println!("  status:   {what}");
}

/// Runs `shep certs …`.
pub(super) async fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Issue {
            iin,
            bin,
            name,
            org,
            alg,
            purpose,
            days,
            not_before,
            not_after,
            out,
            admin,
        } => {
            let not_before = not_before
                .map(|text| parse_time("not-before", &text))
                .transpose()?;
            let not_after = match not_after {
                Some(text) => Some(parse_time("not-after", &text)?),
                None => {
                    let start = not_before
                        .as_ref()
                        .and_then(|time| OffsetDateTime::from_unix_timestamp(time.seconds).ok())
                        .unwrap_or_else(|| OffsetDateTime::now_utc() - time::Duration::hours(1));
                    Some(shep_gateway::storage::timestamp(
                        start + time::Duration::days(i64::from(days)),
                    ))
                }
            };
            let request = IssueRequest {
                iin,
                bin: bin.unwrap_or_default(),
                common_name: name.unwrap_or_default(),
                organization: org.unwrap_or_default(),
                algorithm: match alg {
                    AlgorithmArg::Ed25519 => pb::KeyAlgorithm::Ed25519,
                    AlgorithmArg::P256 => pb::KeyAlgorithm::EcdsaP256,
                    AlgorithmArg::Rsa2048 => pb::KeyAlgorithm::Rsa2048,
                } as i32,
                purpose: match purpose {
                    PurposeArg::Signing => pb::Purpose::Signing,
                    PurposeArg::Authentication => pb::Purpose::Authentication,
                } as i32,
                not_before,
                not_after,
            };
            let mut client =
                NucClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
            let issued = client
                .issue(admin.authorized(request)?)
                .await
                .map_err(describe)?
                .into_inner();
            let key_path = with_suffix(&out, ".key.pem");
            let cert_path = with_suffix(&out, ".cert.pem");
            if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&key_path, &issued.key_pem)
                .with_context(|| format!("writing `{}`", key_path.display()))?;
            std::fs::write(&cert_path, &issued.certificate_pem)
                .with_context(|| format!("writing `{}`", cert_path.display()))?;
            println!("issued serial {}", issued.serial);
            println!("  key:         {}", key_path.display());
            println!("  certificate: {}", cert_path.display());
            show(&cert_path, None).await
        }
        CertsCommand::Revoke {
            cert,
            serial,
            reason,
            admin,
        } => {
            let id = match (cert, serial) {
                (Some(path), _) => revoke_request::Id::CertificateDer(leaf(&path)?),
                (None, Some(serial)) => revoke_request::Id::Serial(serial),
                (None, None) => anyhow::bail!("give --cert FILE or --serial HEX"),
            };
            let mut client =
                NucClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
            let status = client
                .revoke(admin.authorized(RevokeRequest {
                    id: Some(id),
                    reason,
                })?)
                .await
                .map_err(describe)?
                .into_inner();
            println!("serial {}", status.serial);
            print_status(&status);
            Ok(())
        }
        CertsCommand::Show { cert, gateway } => show(&cert, Some(&gateway)).await,
    }
}

/// The key and certificate files of the demo applicant signing with `alg`.
/// Ed25519 is the demo identity `shep serve` creates; the others are
/// `<data_dir>/identities/applicant-<alg>.{key,cert}.pem`, issued by the НУЦ of
/// the gateway at `nuc` (with the admin token of `data_dir`) when missing, and
/// kept for the next run.
pub(super) async fn applicant_identity(
    data_dir: &Path,
    nuc: &str,
    alg: AlgorithmArg,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = DataDir(data_dir.to_owned());
    let (name, algorithm) = match alg {
        AlgorithmArg::Ed25519 => return Ok(dir.identity("applicant")),
        AlgorithmArg::P256 => ("applicant-p256", pb::KeyAlgorithm::EcdsaP256),
        AlgorithmArg::Rsa2048 => ("applicant-rsa2048", pb::KeyAlgorithm::Rsa2048),
    };
    let (key_path, cert_path) = dir.identity(name);
    if key_path.exists() && cert_path.exists() {
        return Ok((key_path, cert_path));
    }
    let admin = AdminArgs {
        gateway: nuc.to_owned(),
        token: None,
        data_dir: data_dir.to_owned(),
    };
    let request = IssueRequest {
        iin: shep_gateway::server::DEMO_APPLICANT_IIN.to_owned(),
        common_name: "СЕРИКБАЕВ НУРЛАН".to_owned(),
        algorithm: algorithm as i32,
        purpose: pb::Purpose::Signing as i32,
        ..IssueRequest::default()
    };
    let issued = NucClient::new(connect(nuc).await?)
        .issue(admin.authorized(request)?)
        .await
        .map_err(describe)
        .with_context(|| format!("issuing `{name}` from the НУЦ at `{nuc}`"))?
        .into_inner();
    std::fs::create_dir_all(dir.identities())?;
    std::fs::write(&key_path, &issued.key_pem)
        .with_context(|| format!("writing `{}`", key_path.display()))?;
    std::fs::write(&cert_path, &issued.certificate_pem)
        .with_context(|| format!("writing `{}`", cert_path.display()))?;
    eprintln!(
        "issued `{name}` (serial {}) into `{}`",
        issued.serial,
        dir.identities().display()
    );
    Ok((key_path, cert_path))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    PathBuf::from(text)
}

fn leaf(path: &Path) -> anyhow::Result<Vec<u8>> {
    certificates(path)?
        .into_iter()
        .next()
        .with_context(|| format!("`{}` holds no PEM certificate", path.display()))
}

/// Prints a certificate and, when `gateway` is given, its status there.
async fn show(path: &Path, gateway: Option<&str>) -> anyhow::Result<()> {
    let der = leaf(path)?;
    let (_, certificate) = X509Certificate::from_der(&der)
        .map_err(|error| anyhow::anyhow!("`{}`: {error}", path.display()))?;
    let subject = certificate.subject();
    let find = |prefix: &str| {
        subject
            .iter_attributes()
            .filter_map(|attribute| attribute.as_str().ok())
            .find_map(|value| value.strip_prefix(prefix).map(str::to_owned))
    };
    println!("  subject:  {subject}");
    println!("  issuer:   {}", certificate.issuer());
    println!("  serial:   {}", format_serial(certificate.raw_serial()));
    println!(
        "  IIN:      {}",
        find("IIN").unwrap_or_else(|| "-".to_owned())
    );
    println!(
        "  BIN:      {}",
        find("BIN").unwrap_or_else(|| "-".to_owned())
    );
    let validity = certificate.validity();
    println!(
        "  valid:    {} .. {}",
        validity.not_before, validity.not_after
    );
    println!(
        "  key:      {}",
        match certificate
            .public_key()
            .algorithm
            .algorithm
            .to_id_string()
            .as_str()
        {
            "1.3.101.112" => "Ed25519",
            "1.2.840.10045.2.1" => "ECDSA P-256",
            "1.2.840.113549.1.1.1" => "RSA",
            _ => "other",
        }
    );
    if let Ok(Some(usage)) = certificate.extended_key_usage() {
        let mut names = Vec::new();
        if usage.value.email_protection {
            names.push("signing (emailProtection)");
        }
        if usage.value.client_auth {
            names.push("authentication (clientAuth)");
        }
        println!("  usage:    {}", names.join(", "));
    }
    for extension in certificate.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => {
                let oids: Vec<String> = policies
                    .iter()
                    .map(|policy| policy.policy_id.to_id_string())
                    .collect();
                println!("  policies: {}", oids.join(", "));
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    println!("  CRL:      {:?}", point.distribution_point);
                }
            }
            _ => {}
        }
    }
    if let Some(gateway) = gateway {
        match connect(gateway).await {
            Ok(channel) => {
                let status = NucClient::new(channel)
                    .get_status(StatusRequest {
                        id: Some(status_request::Id::CertificateDer(der)),
                        ..StatusRequest::default()
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                print_status(&status);
            }
            Err(_) => println!("  status:   not asked (no gateway at {gateway})"),
        }
    }
    Ok(())
}

/// Runs `shep sign`: signs a serialized `Body` file and writes the
/// `SignedEnvelope`.
pub(super) fn sign(key: &Path, cert: &Path, body: &Path, out: &Path) -> anyhow::Result<()> {
    let signer = Signer::from_files(key, cert)?;
    let bytes = std::fs::read(body).with_context(|| format!("reading `{}`", body.display()))?;
    let decoded = Body::decode(bytes.as_slice()).with_context(|| {
        format!(
            "`{}` is not a serialized shep.envelope.v1.Body",
            body.display()
        )
    })?;
    let envelope = shep_proto::envelope::v1::SignedEnvelope {
        xml_data: Vec::new(),
        signature: Some(signer.sign(&bytes)?),
        body: bytes,
    };
    std::fs::write(out, envelope.encode_to_vec())
        .with_context(|| format!("writing `{}`", out.display()))?;
    println!(
        "signed message {} ({}) into `{}`",
        decoded.message_id,
        decoded.service_id,
        out.display()
    );
    Ok(())
}
