//! Compiles `protos/` with protox (pure Rust, no system `protoc`) and generates
//! prost messages and tonic clients/servers into `OUT_DIR`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "protos/shep/envelope/v1/envelope.proto",
        "protos/shep/registry/v1/registry.proto",
        "protos/shep/gateway/v1/gateway.proto",
        "protos/shep/provider/v1/provider.proto",
        "protos/shep/admin/v1/admin.proto",
        "protos/shep/nuc/v1/nuc.proto",
    ];
    println!("cargo:rerun-if-changed=protos");
    let fds = protox::compile(files, ["protos"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set is also served by gRPC reflection.
    std::fs::write(
        out.join("shep_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
