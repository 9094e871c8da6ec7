//! The gRPC contracts of shep-sim: generated messages, clients and servers for
//! `shep.envelope.v1`, `shep.gateway.v1`, `shep.provider.v1`, `shep.registry.v1`
//! and `shep.admin.v1`, plus the encoded descriptor set for gRPC reflection;
//! the [`catalogue`] of error reasons every server of the simulator uses; and
//! the national identifiers (IIN, BIN) every part validates ([`ident`]).

pub mod catalogue;
pub mod ident;

/// `shep.envelope.v1`: the signed envelope, its body, statuses and error reasons.
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod envelope {
    pub mod v1 {
        tonic::include_proto!("shep.envelope.v1");
    }
}

/// `shep.registry.v1`: the mock national registries (lookups, audit, fixtures).
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod registry {
    pub mod v1 {
        tonic::include_proto!("shep.registry.v1");
    }
}

/// `shep.gateway.v1`: the consumer side (Call, Submit, GetStatus, History, Watch).
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod gateway {
    pub mod v1 {
        tonic::include_proto!("shep.gateway.v1");
    }
}

/// `shep.provider.v1`: the provider side (Subscribe, GetMessages, Acknowledge, Report).
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod provider {
    pub mod v1 {
        tonic::include_proto!("shep.provider.v1");
    }
}

/// `shep.admin.v1`: routes, registry fixtures and the access audit.
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod admin {
    pub mod v1 {
        tonic::include_proto!("shep.admin.v1");
    }
}

/// `shep.nuc.v1`: the НУЦ mock (status, CRL, issuance, revocation).
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod nuc {
    pub mod v1 {
        tonic::include_proto!("shep.nuc.v1");
    }
}

/// The encoded `FileDescriptorSet` of every shep proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/shep_descriptor.bin"));
