//! The mock national registries behind the gateway — ГБД ФЛ (persons), ГБД ЮЛ
//! (legal entities) and ЕНИС (powers of attorney) over a seeded synthetic
//! population with fixtures on top. Registries know nothing of the gateway.

pub mod audit;
pub mod data;
pub mod enis;
pub mod fixtures;
pub mod gbdfl;
pub mod gbdul;
pub mod grpc;
mod hash;
pub mod names;
pub mod population;
pub mod reference;

/// The IIN/BIN codec the registries validate with, now in `shep_proto`.
pub use shep_proto::ident;

use shep_proto::registry::v1::{LookupRequest, LookupResponse, MessageResult};

pub use data::{PopulationConfig, RegistryData, RegistryKind, Scope, UnknownRegistry};

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
    /// A power-of-attorney number that cannot be one (empty, too long, spaces).
    #[error("`{number}` is not a power-of-attorney number (1-64 characters, no spaces)")]
    InvalidNumber { number: String },
    /// The request's key kind is not one this registry answers.
    #[error("registry `{registry}` does not answer this kind of key")]
    UnsupportedKey { registry: &'static str },
}

/// A registry answering lookups from memory.
pub trait Registry: Send + Sync + 'static {
    /// Looks up one record.
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError>;
}

impl<R: Registry + ?Sized> Registry for std::sync::Arc<R> {
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError> {
        (**self).lookup(request)
    }
}

impl RegistryKind {
    /// The registry of this kind over `data`: what the gateway serves
    /// in-process and `shep registry` serves alone. A new registry is a
    /// variant, its module, and its arm here.
    pub fn registry(self, data: std::sync::Arc<RegistryData>) -> std::sync::Arc<dyn Registry> {
        match self {
            Self::Persons => std::sync::Arc::new(gbdfl::PersonRegistry::new(data)),
            Self::LegalEntities => std::sync::Arc::new(gbdul::LegalEntityRegistry::new(data)),
            Self::PowersOfAttorney => std::sync::Arc::new(enis::PowerOfAttorneyRegistry::new(data)),
        }
    }
}

/// The ГБД-style success result: code `00000`.
pub fn success() -> MessageResult {
    MessageResult {
        code: "00000".to_owned(),
        name_ru: "Сообщение успешно обработано".to_owned(),
        name_kk: "Хабарлама сәтті өңделді".to_owned(),
    }
}
