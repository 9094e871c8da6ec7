//! The mock national registries behind the gateway (ГБД ФЛ for now), the
//! IIN/BIN codecs they validate with, and the НУЦ test certification authority.
//! Registries know nothing of the gateway.

pub mod gbdfl;
pub mod grpc;
pub mod ident;
pub mod nuc;

use shep_proto::registry::v1::{LookupRequest, LookupResponse, MessageResult};

/// Why a registry could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry holds nothing for this key («нет данных»).
    #[error("no data for `{key}`")]
    NoData { key: String },
    /// The key is malformed (e.g. an IIN with a wrong check digit).
    #[error("invalid key `{key}`: {source}")]
    InvalidKey {
        key: String,
        #[source]
        source: ident::IdentError,
    },
    /// The request's key kind is not one this registry answers.
    #[error("registry `{registry}` does not answer this kind of key")]
    UnsupportedKey { registry: &'static str },
}

/// A registry answering lookups from memory.
pub trait Registry: Send + Sync + 'static {
    /// Looks up one record.
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError>;
}

/// The ГБД-style success result: code `00000`.
pub fn success() -> MessageResult {
    MessageResult {
        code: "00000".to_owned(),
        name_ru: "Сообщение успешно обработано".to_owned(),
        name_kk: "Хабарлама сәтті өңделді".to_owned(),
    }
}
