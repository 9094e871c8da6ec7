//! What the fuzz properties (`fuzz` modules, docs/FUZZING.md) share. Apart
//! from [`crate::testing`] so that any module can use it without an import
//! cycle: it depends on nothing in the crate.

/// A fuzz property's budget: `cases`, unless `PROPTEST_CASES` asks for a
/// longer run (an explicit `cases` would override the variable, which
/// proptest only reads into its default config).
pub(crate) fn budget(cases: u32) -> proptest::test_runner::Config {
    let config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        proptest::test_runner::Config { cases, ..config }
    }
}
