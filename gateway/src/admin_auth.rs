//! Who may use the admin API: the holder of the bearer token, or, on a TLS
//! listener, a client whose certificate is listed by its SHA-256 fingerprint.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::{GatewayError, into_status};

/// The SHA-256 digest of a certificate's DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Who may use an admin service: the token's holder or a listed client
/// certificate. As a tonic interceptor around the whole service, no method
/// can forget to ask.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    /// The token's SHA-256, so comparing says nothing of the token through
    /// its timing.
    token_digest: [u8; 32],
    client_certificates: Arc<[Fingerprint]>,
}

impl AdminAuth {
    /// Lets in `authorization: Bearer <token>` and, on a TLS listener, a
    /// client certificate with one of `client_certificates`.
    pub fn new(token: &str, client_certificates: Vec<Fingerprint>) -> Self {
        Self {
            token_digest: Fingerprint::of(token.as_bytes()).0,
            client_certificates: client_certificates.into(),
        }
    }

    /// Lets a request through with a listed client certificate (the leaf
    /// the TLS handshake verified against `tls.client_ca`) or with the bearer
    /// token; refuses it otherwise exactly as a wrong token is refused.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let listed = request
            .peer_certs()
            .and_then(|chain| chain.first().map(|leaf| Fingerprint::of(leaf)))
            .is_some_and(|presented| self.client_certificates.contains(&presented));
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let token = presented
            .is_some_and(|presented| Fingerprint::of(presented.as_bytes()).0 == self.token_digest);
        if listed || token {
            Ok(())
        } else {
            Err(into_status(GatewayError::Unauthenticated))
        }
    }
}

impl Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(&request)?;
        Ok(request)
    }
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
        let mut auth = AdminAuth::new("secret", vec![Fingerprint::of(b"x")]);
        let status = auth.call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer secreT".parse().unwrap());
        assert!(auth.call(wrong).is_err());
        let mut right = Request::new(());
        right
            .metadata_mut()
            .insert("authorization", "Bearer secret".parse().unwrap());
        assert!(auth.call(right).is_ok());
    }
}
