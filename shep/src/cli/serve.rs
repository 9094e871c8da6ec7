//! `shep serve`: the gateway with its registries, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::task::Poll;

use shep_gateway::config::{GatewayConfig, ParticipantAuth};
use shep_gateway::telemetry::Telemetry;

use super::population::PopulationArgs;

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// A gateway configuration file (docs/CONFIGURATION.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Overrides `routes`.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `cluster.nats`: keep applications, statuses and provider
    /// queues in NATS JetStream, shared with the other nodes there.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Sets `auth.participants = "off"`: anyone who reaches the port may act
    /// as any system and read any applicant's applications; the listener
    /// speaks plaintext unless `tls.cert` is set. For load tests on loopback.
    #[arg(long)]
    insecure: bool,
    /// Overrides `population.*`; `--fixtures` adds to the configured files.
    #[command(flatten)]
    population: PopulationArgs,
    /// Plays a provider system in-process with a script (docs/SCRIPTS.md):
    /// `PROVIDER=SCRIPT.toml`, repeatable. Its deliveries are answered as the
    /// script says, signed with the provider's demo identity, over the same
    /// sockets as any provider; no second terminal needed.
    #[arg(long, value_name = "PROVIDER=SCRIPT")]
    simulate: Vec<String>,
    /// Divides every simulated provider's scripted delay (`shep clock factor`
    /// runs the gateway's deadlines at the same pace).
    #[arg(long, default_value_t = 1.0)]
    simulate_factor: f64,
}

/// `PROVIDER=SCRIPT` of `--simulate`, with the script loaded and checked.
fn simulated(spec: &str) -> anyhow::Result<(String, std::sync::Arc<crate::script::Script>)> {
    let (provider, path) = spec
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("`--simulate {spec}`: expected PROVIDER=SCRIPT.toml"))?;
    let script = crate::script::Script::load(std::path::Path::new(path))?;
    Ok((provider.to_owned(), std::sync::Arc::new(script)))
}

/// Runs `shep serve`.
pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => GatewayConfig::load(path)?,
        None => GatewayConfig::default(),
    };
    let telemetry = Telemetry::start(&config.telemetry)?;
    crate::logging::install(telemetry.as_ref());
    let served = serve(args, config).await;
    if let Some(telemetry) = telemetry {
        // The last messages' spans, before the process exits; the flush
        // blocks on the exporter's thread.
        let flushed = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        if let Err(error) = flushed {
            tracing::warn!(
                error = format!("{error:#}"),
                "spans not exported at shutdown"
            );
        }
    }
    served
}

/// The gateway as `args` and `config` say, until Ctrl-C or its stop.
async fn serve(args: ServeArgs, mut config: GatewayConfig) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(routes) = args.routes {
        config.routes = Some(routes);
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(nats) = args.nats {
        config.cluster.nats = Some(nats);
    }
    if args.insecure {
        config.auth.participants = ParticipantAuth::Off;
    }
    args.population.apply(&mut config.population)?;
    // Scripts are checked before the port opens: a bad one stops here.
    let simulations = args
        .simulate
        .iter()
        .map(|spec| simulated(spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Install the Ctrl-C handler (on the future's first poll) before the port
    // opens: a SIGINT while the gateway starts would otherwise end the process
    // without the graceful stop, and a client that saw it serving may send one.
    let mut interrupt = Box::pin(tokio::signal::ctrl_c());
    if let Poll::Ready(result) =
        std::future::poll_fn(|cx| Poll::Ready(interrupt.as_mut().poll(cx))).await
    {
        return result.map_err(anyhow::Error::from);
    }
    let nats = config.cluster.nats.clone();
    let participants = config.auth.participants;
    let gateway = shep_gateway::server::start(config).await?;
    let data_dir = &gateway.data_dir;
    let routes = gateway.engine.routes();
    println!("shep-sim gateway listening on {}", gateway.url());
    println!(
        "  routing table: {} ({} services)",
        routes.source(),
        routes.routes().len()
    );
    match &nats {
        Some(nats) => println!("  storage: NATS JetStream at {nats}, shared with every node there"),
        None => println!("  storage: {}", gateway.engine.storage_state().0),
    }
    match participants {
        ParticipantAuth::Required => println!(
            "  participants: authenticated by transport certificate (mTLS, {}) or a system's password; the listener's certificate chains to {}",
            data_dir.0.join("systems").display(),
            data_dir.root_certificate().display()
        ),
        ParticipantAuth::Off => println!(
            "  participants: NOT AUTHENTICATED (--insecure / auth.participants = \"off\"): anyone who reaches {} can act as any system",
            gateway.url()
        ),
    }
    println!("  test НУЦ: {}", data_dir.nuc().display());
    println!(
        "  identities (key + certificate PEM): {}",
        data_dir.identities().display()
    );
    println!(
        "  admin token: {}",
        if data_dir.admin_token().exists() {
            data_dir.admin_token().display().to_string()
        } else {
            "from the configuration".to_owned()
        }
    );
    let (fixtures, _) = gateway.registry_data.summary();
    let population = gateway.registry_data.population();
    println!(
        "  registries: {} in-process; population seed {}, {}, {:.0} % absent; fixtures: {}",
        gateway.in_process.join(", "),
        population.seed(),
        population
            .size()
            .map(|size| format!("{size} IIN slots"))
            .unwrap_or_else(|| "every valid IIN".to_owned()),
        population.absent_share() * 100.0,
        fixtures.sources.join(", ")
    );
    for (provider, script) in simulations {
        if routes.system(&provider).is_none() {
            anyhow::bail!("`--simulate {provider}=…`: no system `{provider}` in the routing table");
        }
        let channel = super::connect_as(&gateway.url(), &data_dir.0, Some(&provider)).await?;
        let (key, cert) = data_dir.identity(&format!("provider-{provider}"));
        let participant = crate::client::Participant::new(
            &provider,
            shep_proto::envelope::v1::Channel::ProviderDesk,
            shep_nuc::ca::Signer::from_files(&key, &cert)?,
        );
        let options = crate::script::RunOptions {
            time_factor: args.simulate_factor,
            ..crate::script::RunOptions::default()
        };
        println!("  simulated provider `{provider}`: plays its script in-process");
        tokio::spawn(async move {
            if let Err(error) =
                crate::script::run_script(channel, participant, script, options).await
            {
                tracing::warn!(%provider, error = format!("{error:#}"), "the simulated provider stopped");
            }
        });
    }
    println!("  try: shep provider --id arm-rshep-sko-esil-edu   (in another terminal)");
    println!(
        "       shep send --service guardianship-certificate-esil --subject 850315301235 --watch"
    );
    let mut gateway = gateway;
    let interrupted = tokio::select! {
        result = &mut interrupt => {
            result?;
            true
        }
        result = gateway.stopped() => {
            result?;
            false
        }
    };
    if interrupted {
        println!("stopping");
        gateway.shutdown().await?;
    }
    Ok(())
}
