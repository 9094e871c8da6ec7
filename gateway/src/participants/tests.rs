use super::*;

const TABLE: &str = r#"
[[system]]
id = "pep"
name_ru = "ПЭП"
role = "portal"

[[system]]
id = "arm-a"
name_ru = "АРМ А"
role = "provider"
operators = ["800417400129"]
bin = "151240012341"
password = "s3cret"

[[system]]
id = "arm-b"
name_ru = "АРМ Б"
role = "provider"
operators = ["770905300455"]
"#;

fn routes() -> RoutingTable {
    RoutingTable::from_toml(TABLE, "test", &["gbdfl"]).unwrap()
}

fn identity(common_name: &str, iin: Option<&str>, bin: Option<&str>) -> SignerIdentity {
    SignerIdentity {
        iin: iin.map(str::to_owned),
        bin: bin.map(str::to_owned),
        common_name: common_name.to_owned(),
        ..SignerIdentity::default()
    }
}

#[test]
fn a_certificate_names_a_system_with_its_bin_or_a_person() {
    let routes = routes();
    assert_eq!(
        from_certificate(&routes, &identity("pep", None, None)),
        Ok(Principal::System("pep".to_owned()))
    );
    assert_eq!(
        from_certificate(&routes, &identity("arm-a", None, Some("151240012341"))),
        Ok(Principal::System("arm-a".to_owned()))
    );
    let wrong_bin = from_certificate(&routes, &identity("arm-a", None, Some("100440123456")));
    assert!(wrong_bin.unwrap_err().contains("carries BIN 100440123456"));
    assert!(from_certificate(&routes, &identity("arm-a", None, None)).is_err());
    assert_eq!(
        from_certificate(&routes, &identity("СЕРИКБАЕВ", Some("850315301235"), None)),
        Ok(Principal::Person("850315301235".to_owned()))
    );
    // An employee's certificate is neither a system nor a private person.
    let employee = identity("КАСЕНОВА", Some("800417400129"), Some("151240012341"));
    assert!(from_certificate(&routes, &employee).is_err());
}

#[test]
fn only_a_system_with_a_password_accepts_one() {
    let routes = routes();
    let login = |id: &str, password: &str| from_password(&routes, (id.into(), password.into()));
    assert_eq!(
        login("arm-a", "s3cret").unwrap(),
        Principal::System("arm-a".into())
    );
    let wrong = login("arm-a", "s3creT").unwrap_err();
    assert_eq!(
        wrong.reason(),
        shep_proto::envelope::v1::Reason::NotAuthenticated
    );
    assert!(login("arm-b", "").is_err(), "no password configured");
    assert!(login("nobody", "s3cret").is_err());
}

#[test]
fn a_system_acts_only_as_itself() {
    let pep = Principal::System("pep".into());
    assert!(pep.act_as("pep", "send").is_ok());
    let denied = pep.act_as("is-con", "send").unwrap_err();
    assert_eq!(
        denied.reason(),
        shep_proto::envelope::v1::Reason::AccessDenied
    );
    assert!(Principal::Anyone.act_as("is-con", "send").is_ok());
    let nobody = Principal::Nobody.act_as("pep", "send").unwrap_err();
    assert_eq!(
        nobody.reason(),
        shep_proto::envelope::v1::Reason::NotAuthenticated
    );
    assert!(
        Principal::Person("850315301235".into())
            .act_as("pep", "send")
            .is_err()
    );
}

#[test]
fn applications_are_read_by_consumers_their_provider_or_their_applicant() {
    let routes = routes();
    let subject = SubjectId::Iin("850315301235".into());
    let other = SubjectId::Iin("061211600012".into());
    let pep = Principal::System("pep".into());
    assert_eq!(
        pep.read(&routes, Some(&subject), None).unwrap(),
        Some("pep".into())
    );
    let arm = Principal::System("arm-a".into());
    assert!(arm.read(&routes, Some(&subject), Some("arm-a")).is_ok());
    assert!(arm.read(&routes, Some(&subject), Some("arm-b")).is_err());
    assert!(
        arm.read(&routes, Some(&subject), None).is_err(),
        "no history by IIN"
    );
    let person = Principal::Person("850315301235".into());
    assert!(person.read(&routes, Some(&subject), Some("arm-a")).is_ok());
    let denied = person.read(&routes, Some(&other), None).unwrap_err();
    assert_eq!(
        denied.reason(),
        shep_proto::envelope::v1::Reason::AccessDenied
    );
    assert!(
        Principal::Nobody
            .read(&routes, Some(&subject), None)
            .is_err()
    );
    assert!(pep.reads_everything(&routes) && !arm.reads_everything(&routes));
}
