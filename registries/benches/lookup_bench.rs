//! Lookup throughput and latency of the mock registries through the
//! in-process adapter (`shep_adapters::InProcess`, boxed as the gateway boxes
//! it), over synthetic populations of 1 thousand, 1 million and 20 million
//! persons and over every valid IIN; lookups in ГБД ЮЛ and ЕНИС; and the
//! start-up time of the default population (population + built-in fixtures,
//! and with the example fixture file).
//!
//! Run: `cargo bench -p shep-registries --bench lookup_bench`
//!
//! Criterion measures the mean time per lookup (throughput). It reports no
//! per-lookup percentiles, so after the criterion groups this bench times
//! 200 000 single lookups per population size and prints p50, p99 and p99.9,
//! with the process's resident memory (VmRSS, Linux) before and after each
//! size: the population stores nothing per person, so memory stays flat. Each
//! lookup goes through the whole path the gateway uses: key check, fixtures,
//! synthesis of the record, the access audit (bounded), the adapter.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use shep_adapters::{InProcess, RegistryAdapter};
use shep_proto::registry::v1::{LookupRequest, RequestContext, lookup_request::Key};
use shep_registries::enis::PowerOfAttorneyRegistry;
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::gbdul::LegalEntityRegistry;
use shep_registries::ident::make_bin;
use shep_registries::{PopulationConfig, RegistryData};
use tower::ServiceExt;

/// Population sizes (IIN slots); `None` is every valid IIN.
const SIZES: [(&str, Option<u64>); 4] = [
    ("1k", Some(1_000)),
    ("1M", Some(1_000_000)),
    ("20M", Some(20_000_000)),
    ("all", None),
];

/// Distinct keys each run cycles through.
const KEYS: usize = 4_096;

/// Lookups timed one by one for the percentiles.
const SAMPLES: usize = 200_000;

/// Completes a future that is ready at once (the in-process adapter's are).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-process lookup completes at once"),
    }
}

fn request(key: Key) -> LookupRequest {
    LookupRequest {
        key: Some(key),
        context: Some(RequestContext {
            requester_system: "is-con".to_owned(),
            operator_iin: "920704404563".to_owned(),
            service_id: "GbdflInfoByIin_v1".to_owned(),
            purpose: "bench".to_owned(),
            message_id: "5b7f8a1e-0000-4000-8000-000000000000".to_owned(),
            test: false,
            ..RequestContext::default()
        }),
    }
}

fn data(size: Option<u64>) -> Arc<RegistryData> {
    let config = PopulationConfig {
        size,
        ..PopulationConfig::default()
    };
    Arc::new(RegistryData::new(&config, shep_registries::audit::DEFAULT_CAPACITY).unwrap())
}

/// IINs of persons the population holds, spread over all its slots.
fn persons(data: &RegistryData, count: usize) -> Vec<String> {
    let population = data.population();
    let slots = population
        .size()
        .unwrap_or(shep_registries::population::MAX_SIZE);
    let step = (slots / (count as u64 * 2)).max(1);
    let mut found = Vec::with_capacity(count);
    let mut slot = 7;
    while found.len() < count {
        if let Some(iin) = population.iin_at(slot % slots)
            && data.person(&iin).is_some()
        {
            found.push(iin);
        }
        slot += step;
    }
    found
}

fn lookup(adapter: &RegistryAdapter, key: Key) {
    let response = now(adapter.clone().oneshot(request(key)));
    black_box(response.expect("the key is in the population"));
}

fn persons_bench(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("gbdfl_lookup");
    group.throughput(Throughput::Elements(1));
    for (name, size) in SIZES {
        let data = data(size);
        let keys = persons(&data, KEYS);
        let adapter = InProcess::new("gbdfl", Arc::new(PersonRegistry::new(data))).boxed();
        let mut index = 0;
        group.bench_function(BenchmarkId::from_parameter(name), |bencher| {
            bencher.iter(|| {
                index = (index + 1) % keys.len();
                lookup(&adapter, Key::Iin(keys[index].clone()));
            });
        });
    }
    group.finish();
}

fn registries_bench(criterion: &mut Criterion) {
    let data = data(None);
    let mut group = criterion.benchmark_group("registry_lookup");
    group.throughput(Throughput::Elements(1));

    let bins: Vec<String> = (0..KEYS as u32 * 2)
        .filter_map(|serial| make_bin(12, 7, 4, 0, serial))
        .filter(|bin| data.legal_entity(bin).is_some())
        .take(KEYS)
        .collect();
    let gbdul = InProcess::new("gbdul", Arc::new(LegalEntityRegistry::new(data.clone()))).boxed();
    let mut index = 0;
    group.bench_function("gbdul", |bencher| {
        bencher.iter(|| {
            index = (index + 1) % bins.len();
            lookup(&gbdul, Key::Bin(bins[index].clone()));
        });
    });

    let numbers: Vec<String> = persons(&data, KEYS * 4)
        .into_iter()
        .map(|iin| format!("{iin}-01"))
        .filter(|number| data.power_of_attorney(number).is_some())
        .take(KEYS)
        .collect();
    let enis = InProcess::new("enis", Arc::new(PowerOfAttorneyRegistry::new(data.clone()))).boxed();
    let mut index = 0;
    group.bench_function("enis", |bencher| {
        bencher.iter(|| {
            index = (index + 1) % numbers.len();
            lookup(&enis, Key::PowerOfAttorneyNumber(numbers[index].clone()));
        });
    });

    let gbdfl = InProcess::new("gbdfl", Arc::new(PersonRegistry::new(data))).boxed();
    group.bench_function("gbdfl_fixture", |bencher| {
        bencher.iter(|| lookup(&gbdfl, Key::Iin("850315301235".to_owned())));
    });
    group.finish();
}

fn startup_bench(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("startup");
    group.bench_function("default_population", |bencher| {
        bencher.iter(|| black_box(data(None)));
    });
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example.json");
    let config = PopulationConfig {
        fixtures: vec![example],
        ..PopulationConfig::default()
    };
    group.bench_function("default_population_with_example_fixtures", |bencher| {
        bencher.iter(|| black_box(RegistryData::new(&config, 100_000).unwrap()));
    });
    group.finish();
}

/// Resident memory of this process (VmRSS), in MiB, where the OS says.
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

/// Times single lookups for the percentiles, and watches memory.
fn latency_report() {
    println!(
        "\nper-lookup latency through the in-process adapter ({SAMPLES} lookups per size, \
         {KEYS} distinct persons cycled)"
    );
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "size", "p50", "p99", "p99.9", "RSS before", "RSS after"
    );
    for (name, size) in SIZES {
        let before = resident_mib();
        let data = data(size);
        let keys = persons(&data, KEYS);
        let adapter = InProcess::new("gbdfl", Arc::new(PersonRegistry::new(data))).boxed();
        // Warm up past the audit's capacity, so that its ring is full and
        // each lookup drops the oldest record, as in a long run.
        for index in 0..shep_registries::audit::DEFAULT_CAPACITY + 20_000 {
            lookup(&adapter, Key::Iin(keys[index % keys.len()].clone()));
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for index in 0..SAMPLES {
            let key = Key::Iin(keys[index % keys.len()].clone());
            let started = Instant::now();
            lookup(&adapter, key);
            times.push(started.elapsed());
        }
        times.sort_unstable();
        let after = resident_mib();
        let mib = |value: Option<f64>| {
            value
                .map(|mib| format!("{mib:.1} MiB"))
                .unwrap_or_else(|| "n/a".to_owned())
        };
        println!(
            "{name:>6} {:>10.2?} {:>10.2?} {:>10.2?} {:>14} {:>14}",
            percentile(&times, 500),
            percentile(&times, 990),
            percentile(&times, 999),
            mib(before),
            mib(after)
        );
    }
    let started = Instant::now();
    black_box(data(None));
    println!(
        "start-up of the default population (one run, cold): {:.2?}",
        started.elapsed()
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    persons_bench(&mut criterion);
    registries_bench(&mut criterion);
    startup_bench(&mut criterion);
    criterion.final_summary();
    // `cargo test --benches` runs benches once as a smoke test; keep that quick.
    if std::env::args().any(|arg| arg == "--bench") {
        latency_report();
    }
}
