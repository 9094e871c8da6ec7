//! Who may use the admin API: the holder of the bearer token, or, on a TLS
//! listener, a client whose certificate is listed by its SHA-256 fingerprint.

use tonic::{Request, Status};

use crate::grpc::check_bearer;

/// The SHA-256 digest of a certificate's DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// Parses 64 hex digits, in either case; colons and spaces between them
    /// are ignored, as `openssl x509 -fingerprint -sha256` prints them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| !matches!(byte, b':' | b' '))
            .collect();
        if digits.len() != 64 {
            return Err(format!(
                "a SHA-256 fingerprint has 64 hex digits, this has {}",
                digits.len()
            ));
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| "not hex".to_owned())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| format!("`{pair}` is not hex"))?;
        }
        Ok(Self(bytes))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Lets a request through with a listed client certificate (the leaf the
/// TLS handshake verified against `tls.client_ca`) or with the bearer token;
/// refuses it otherwise exactly as a wrong token is refused.
pub(crate) fn check_admin<T>(
    request: &Request<T>,
    token: &str,
    client_certificates: &[Fingerprint],
) -> Result<(), Status> {
    let listed = request
        .peer_certs()
        .and_then(|chain| chain.first().map(|leaf| Fingerprint::of(leaf)))
        .is_some_and(|presented| client_certificates.contains(&presented));
    if listed {
        return Ok(());
    }
    check_bearer(request, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fingerprints_as_openssl_prints_them() {
        let der = b"not really a certificate";
        let fingerprint = Fingerprint::of(der);
        let plain = fingerprint.to_string();
        assert_eq!(plain.len(), 64);
        let openssl: Vec<String> = plain
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
            .collect();
        assert_eq!(Fingerprint::parse(&openssl.join(":")), Ok(fingerprint));
        assert_eq!(Fingerprint::parse(&plain), Ok(fingerprint));
        assert!(Fingerprint::parse(&plain[..62]).is_err());
        assert!(Fingerprint::parse(&format!("zz{}", &plain[2..])).is_err());
    }

    #[test]
    fn without_a_certificate_the_token_decides() {
        let token = "secret";
        let mut request = Request::new(());
        assert!(check_admin(&request, token, &[Fingerprint::of(b"x")]).is_err());
        request
            .metadata_mut()
            .insert("authorization", "Bearer secret".parse().unwrap());
        assert!(check_admin(&request, token, &[]).is_ok());
    }
}
