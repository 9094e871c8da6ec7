use super::*;

fn target(to: To) -> Target {
    Target::from_proto(Some(&to)).unwrap()
}

fn probe(values: &[(Kind, &str)]) -> Probe {
    let mut probe = Probe::default();
    for (kind, value) in values {
        probe.add(*kind, *value);
    }
    probe
}

const UUID: &str = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890";

#[test]
fn the_most_specific_kind_wins_whatever_the_order_of_binding() {
    let bindings = Bindings::default();
    bindings
        .bind("by-subject", target(To::Subject("900101300123".into())))
        .unwrap();
    bindings
        .bind("by-system", target(To::SystemId("portal".into())))
        .unwrap();
    bindings
        .bind("by-session-id", target(To::SessionId(UUID.into())))
        .unwrap();
    let all = probe(&[
        (Kind::Subject, "900101300123"),
        (Kind::System, "portal"),
        (Kind::SessionId, UUID),
    ]);
    assert_eq!(bindings.session_of(&all).as_deref(), Some("by-session-id"));
    let no_session_id = probe(&[(Kind::Subject, "900101300123"), (Kind::System, "portal")]);
    assert_eq!(
        bindings.session_of(&no_session_id).as_deref(),
        Some("by-system")
    );
    let other = probe(&[(Kind::System, "crm"), (Kind::Subject, "111111111111")]);
    assert_eq!(bindings.session_of(&other), None);
}

#[test]
fn binding_a_target_again_replaces_its_session_and_keeps_its_id() {
    let bindings = Bindings::default();
    let first = bindings
        .bind("one", target(To::ProviderId("akimat".into())))
        .unwrap();
    let again = bindings
        .bind("two", target(To::ProviderId("akimat".into())))
        .unwrap();
    assert_eq!(first.id, "b-1");
    assert_eq!(again.id, "b-1");
    assert_eq!(again.session, "two");
    assert_eq!(bindings.list(None).len(), 1);
    let found = bindings.session_of(&probe(&[(Kind::Provider, "akimat")]));
    assert_eq!(found.as_deref(), Some("two"));
}

#[test]
fn uuids_and_fingerprints_are_normalised() {
    let braced = target(To::SessionId(format!("{{{}}}", UUID.to_uppercase())));
    assert_eq!(braced.value, UUID);
    assert_eq!(normal_uuid(&format!("{{{UUID}}}")).as_deref(), Some(UUID));
    let hex = "AB:".repeat(31) + "AB";
    let fingerprint = target(To::CertificateSha256(hex));
    assert_eq!(fingerprint.value, "ab".repeat(32));
    assert!(Target::from_proto(Some(&To::CertificateSha256("abc".into()))).is_err());
    assert!(Target::from_proto(Some(&To::SessionId("not-a-uuid".into()))).is_err());
    assert!(Target::from_proto(Some(&To::Subject("12345".into()))).is_err());
    assert!(Target::from_proto(Some(&To::Subject("12345678901x".into()))).is_err());
    assert!(Target::from_proto(Some(&To::SystemId(" ".into()))).is_err());
    assert!(Target::from_proto(None).is_err());
}

#[test]
fn sessions_are_checked_as_the_header_is() {
    let bindings = Bindings::default();
    let to = || target(To::SystemId("portal".into()));
    assert!(bindings.bind("", to()).is_err());
    assert!(bindings.bind(&"s".repeat(129), to()).is_err());
    assert!(bindings.bind("a\nb", to()).is_err());
    assert!(bindings.list(None).is_empty());
}

#[test]
fn the_table_is_bounded() {
    let bindings = Bindings::default();
    for n in 0..MAX_BINDINGS {
        bindings
            .bind("s", target(To::SystemId(format!("system-{n}"))))
            .unwrap();
    }
    let refused = bindings
        .bind("s", target(To::SystemId("one-more".into())))
        .unwrap_err();
    assert!(matches!(
        refused,
        GatewayError::InvalidField { field: "to", .. }
    ));
    // Replacing is not adding.
    assert!(
        bindings
            .bind("t", target(To::SystemId("system-0".into())))
            .is_ok()
    );
}

#[test]
fn unbinding_by_id_by_session_and_all() {
    let bindings = Bindings::default();
    bindings
        .bind("a", target(To::SystemId("x".into())))
        .unwrap();
    bindings
        .bind("a", target(To::SystemId("y".into())))
        .unwrap();
    bindings
        .bind("b", target(To::SystemId("z".into())))
        .unwrap();
    assert!(bindings.unbind("b-2"));
    assert!(!bindings.unbind("b-2"));
    assert!(!bindings.unbind("nonsense"));
    let ids: Vec<_> = bindings.list(None).into_iter().map(|b| b.id).collect();
    assert_eq!(ids, ["b-1", "b-3"]);
    assert_eq!(bindings.list(Some("b")).len(), 1);
    assert_eq!(bindings.clear(Some("a")), 1);
    assert!(bindings.wanted().has(Kind::System));
    assert_eq!(bindings.clear(None), 1);
    assert!(bindings.wanted().is_empty());
}

#[test]
fn the_wanted_kinds_follow_the_table() {
    let bindings = Bindings::default();
    assert!(bindings.wanted().is_empty());
    bindings
        .bind("c", target(To::CertificateSha256("00".repeat(32))))
        .unwrap();
    let wanted = bindings.wanted();
    assert!(wanted.has(Kind::Certificate));
    assert!(!wanted.has(Kind::System));
    // A certificate alone needs no body decoded.
    assert!(!wanted.body());
    bindings
        .bind("s", target(To::Subject("900101300123".into())))
        .unwrap();
    assert!(bindings.wanted().body());
}
