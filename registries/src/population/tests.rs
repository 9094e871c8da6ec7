use super::*;
use crate::ident::parse_iin;
use crate::reference::region_of;

fn population(seed: u64) -> Population {
    Population::new(seed, None, 0.05).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_records_and_another_seed_others() {
    let first = population(1);
    let again = population(1);
    let other = population(2);
    let iins = [
        "061211600012",
        "910312400290",
        "900101300811",
        "850315301235",
    ];
    let mut differs = 0;
    for iin in iins {
        let info = parse_iin(iin, Strictness::Strict).unwrap();
        let record = first.synthesize_person(iin, &info);
        assert_eq!(record, again.synthesize_person(iin, &info), "{iin}");
        if record != other.synthesize_person(iin, &info) {
            differs += 1;
        }
    }
    assert_eq!(differs, iins.len(), "another seed changes every record");
    let bin = "940140000385";
    assert_eq!(
        first.synthesize_entity(bin, &first),
        again.synthesize_entity(bin, &again)
    );
    assert_ne!(
        first.synthesize_entity(bin, &first),
        other.synthesize_entity(bin, &other)
    );
}

#[test]
fn persons_are_consistent_with_their_iins_and_live_in_real_regions() {
    let population = Population::new(7, Some(200_000), 0.0).unwrap();
    let mut deceased = 0;
    let mut kazakh = 0;
    let mut checked = 0;
    for index in (0..200_000).step_by(997) {
        let Some(iin) = population.iin_at(index) else {
            continue;
        };
        let info = parse_iin(&iin, Strictness::Strict).unwrap();
        let person = population.person(&iin).expect("no absent share");
        checked += 1;
        assert_eq!(person.birth_date, info.birth_date.to_string());
        let gender = person.gender.as_ref().unwrap();
        assert_eq!(gender.code, if info.sex == Sex::Male { "1" } else { "2" });
        if info.sex == Sex::Female && person.surname.ends_with("ов") {
            panic!("{} is a woman with a masculine surname", person.surname);
        }
        let address = person.reg_address.as_ref().unwrap();
        let region = region_of(&address.kato).expect("a real region prefix");
        assert_eq!(address.region.as_ref().unwrap().code, region.prefix);
        assert!(!person.name.is_empty() && !person.surname.is_empty());
        if person.death_date.is_empty() {
            assert_eq!(person.life_status.as_ref().unwrap().code, "0");
            let document = &person.documents[0];
            assert_eq!(document.status.as_ref().unwrap().code, "00", "{iin}");
            assert!(document.begin_date.as_str() >= person.birth_date.as_str());
            assert!(document.begin_date < AS_OF.to_string());
        } else {
            deceased += 1;
            assert_eq!(person.life_status.as_ref().unwrap().code, "1");
            assert!(person.death_date > person.birth_date);
            assert!(person.death_date < AS_OF.to_string());
        }
        if person.nationality.as_ref().unwrap().code == "005" {
            kazakh += 1;
        }
    }
    assert!(checked > 150, "{checked}");
    assert!(
        deceased > 0 && deceased < checked / 5,
        "{deceased} of {checked}"
    );
    assert!(kazakh > checked / 2, "{kazakh} of {checked}");
}

#[test]
fn slots_and_iins_map_both_ways_and_size_bounds_the_population() {
    let population = Population::new(3, Some(1_000), 0.0).unwrap();
    let mut members = 0;
    for index in 0..1_000 {
        if let Some(iin) = population.iin_at(index) {
            members += 1;
            assert_eq!(population.index_of(&iin), Some(index));
            assert!(population.person(&iin).is_some());
        }
    }
    // About 1 slot in 121 has no check digit.
    assert!(members > 970, "{members}");
    assert_eq!(population.iin_at(1_000), None);
    // Slot 1000 exists in the enumeration but not in this population.
    let outside = Population::new(3, None, 0.0)
        .unwrap()
        .iin_at(
            (1_000..1_100)
                .find(|index| {
                    Population::new(3, None, 0.0)
                        .unwrap()
                        .iin_at(*index)
                        .is_some()
                })
                .unwrap(),
        )
        .unwrap();
    assert!(population.person(&outside).is_none());
    assert!(
        Population::new(3, None, 0.0)
            .unwrap()
            .person(&outside)
            .is_some()
    );
}

#[test]
fn a_small_population_spreads_over_all_ages() {
    let population = Population::new(11, Some(1_000), 0.0).unwrap();
    let mut decades = std::collections::BTreeSet::new();
    for index in 0..1_000 {
        if let Some(iin) = population.iin_at(index) {
            let info = parse_iin(&iin, Strictness::Strict).unwrap();
            decades.insert(info.birth_date.year() / 10);
        }
    }
    // 1926-2025: ten or eleven decades, all of them present.
    assert!(decades.len() >= 10, "{decades:?}");
}

#[test]
fn the_absent_share_is_respected() {
    let population = Population::new(5, Some(100_000), 0.2).unwrap();
    let (mut absent, mut total) = (0, 0);
    for index in 0..20_000 {
        if let Some(iin) = population.iin_at(index) {
            total += 1;
            if population.person(&iin).is_none() {
                absent += 1;
            }
        }
    }
    let share = f64::from(absent) / f64::from(total);
    assert!((0.18..0.22).contains(&share), "{share}");
    assert!(!Population::new(5, None, 0.0).unwrap().is_absent("x"));
}

#[test]
fn births_after_the_population_date_have_no_data() {
    let population = population(1);
    let iin = make_iin(date!(2026 - 03 - 01), Sex::Male, 1).unwrap();
    assert!(population.person(&iin).is_none());
    let old = make_iin(date!(1880 - 05 - 05), Sex::Female, 12).unwrap();
    let person = Population::new(1, None, 0.0).unwrap().person(&old).unwrap();
    assert_eq!(
        person.life_status.unwrap().code,
        "1",
        "born in 1880: deceased"
    );
    assert!(person.documents.is_empty() || person.death_date.as_str() >= "1995-01-01");
}

#[test]
fn legal_entities_match_their_bins_and_link_to_living_adults() {
    let population = Population::new(9, None, 0.0).unwrap();
    let mut checked = 0;
    for serial in 0..400u32 {
        let Some(bin) = crate::ident::make_bin(12, 7, 4, (serial % 4) as u8, serial) else {
            continue;
        };
        let entity = population.legal_entity(&bin, &population).unwrap();
        checked += 1;
        assert!(entity.registration_date.starts_with("2012-07-"), "{bin}");
        assert!(!entity.full_name_ru.is_empty() && !entity.full_name_kk.is_empty());
        let form = entity.legal_form.as_ref().unwrap().code.as_str();
        match serial % 4 {
            1 => assert_eq!(form, "60"),
            2 => assert_eq!(form, "70"),
            3 => assert_eq!(form, "90"),
            _ => assert!(["10", "11", "20", "30", "40", "50"].contains(&form)),
        }
        assert!(region_of(&entity.address.as_ref().unwrap().kato).is_some());
        let head = population
            .person(&entity.head_iin)
            .expect("the head exists");
        assert!(head.death_date.is_empty());
        assert!(
            head.birth_date.as_str() <= "1994-07-31",
            "adult at registration"
        );
        assert_eq!(entity.head_name, full_name(&head));
        let shares: f64 = entity.founders.iter().map(|f| f.share_percent).sum();
        if form == "20" {
            assert!(!entity.founders.is_empty());
            assert!((shares - 100.0).abs() < 1e-9, "{bin}: {shares}");
        }
        for founder in &entity.founders {
            match founder.id.as_ref().unwrap() {
                shep_proto::registry::v1::founder::Id::Iin(iin) => {
                    assert!(population.person(iin).is_some())
                }
                shep_proto::registry::v1::founder::Id::Bin(bin) => {
                    assert!(population.legal_entity(bin, &population).is_some())
                }
            }
        }
    }
    assert!(checked > 300);
    // Registered before 1990 or after the population date: no such BIN.
    let old = crate::ident::make_bin(85, 1, 4, 0, 1)
        .or_else(|| crate::ident::make_bin(85, 1, 4, 0, 2))
        .unwrap();
    assert!(population.legal_entity(&old, &population).is_none());
}

#[test]
fn powers_of_attorney_link_existing_people_and_some_are_revoked_or_expired() {
    let population = Population::new(4, Some(1_000_000), 0.0).unwrap();
    let (mut found, mut revoked, mut expired, mut limited) = (0, 0, 0, 0);
    for index in 0..3_000 {
        let Some(iin) = population.iin_at(index * 331) else {
            continue;
        };
        for ordinal in 1..=4 {
            let number = format!("{iin}-{ordinal:02}");
            let Some(attorney) = population.power_of_attorney(&number, &population) else {
                continue;
            };
            assert!(ordinal <= 3);
            found += 1;
            assert_eq!(attorney.principal_iin, iin);
            assert_ne!(attorney.representative_iin, iin);
            let representative = population.person(&attorney.representative_iin).unwrap();
            assert!(representative.death_date.is_empty());
            assert!(attorney.valid_until > attorney.issue_date);
            assert!(attorney.notary_name.starts_with("Нотариус г. "));
            if attorney.revoked {
                revoked += 1;
                assert!(attorney.revocation_date >= attorney.issue_date);
            }
            if attorney.valid_until < AS_OF.to_string() {
                expired += 1;
            }
            if !attorney.service_ids.is_empty() {
                limited += 1;
            }
        }
    }
    assert!(found > 1_000, "{found}");
    assert!(
        revoked > found / 30 && revoked < found / 5,
        "{revoked} of {found}"
    );
    assert!(expired > found / 20, "{expired} of {found}");
    assert!(limited > found / 5, "{limited} of {found}");
    assert!(
        population
            .power_of_attorney("not-a-number", &population)
            .is_none()
    );
    assert!(
        population
            .power_of_attorney("850315301235-00", &population)
            .is_none()
    );
}

#[test]
fn rejects_bad_settings() {
    assert_eq!(
        Population::new(1, None, 0.95).unwrap_err(),
        PopulationError::AbsentShare(0.95)
    );
    assert_eq!(
        Population::new(1, Some(0), 0.0).unwrap_err(),
        PopulationError::Size(0)
    );
    assert!(Population::new(1, Some(MAX_SIZE + 1), 0.0).is_err());
}

#[test]
fn persons_of_a_region_spread_over_its_districts_by_population_share() {
    // North Kazakhstan (59) holds about 3 % of the population: scanning IINs
    // until 2 000 of its residents turn up gives shares to compare with the
    // districts' weights.
    let population = Population::new(13, None, 0.0).unwrap();
    let north = crate::reference::REGIONS
        .iter()
        .find(|region| region.prefix == "59")
        .unwrap();
    let mut counts = std::collections::HashMap::<String, u32>::new();
    let mut num_residents = 0u32;
    let mut index = 0;
    while num_residents < 2_000 {
        index += 1;
        assert!(index < 200_000, "too few residents of 59: {num_residents}");
        let Some(iin) = population.iin_at(index * 7) else {
            continue;
        };
        let address = population.person(&iin).unwrap().reg_address.unwrap();
        if !address.kato.starts_with("59") {
            continue;
        }
        num_residents += 1;
        let district = address.district.unwrap();
        // The address follows the district: its seat's code and name.
        let (_, known) = crate::reference::district_of(&address.kato).unwrap();
        assert_eq!(district.code, known.kato, "{iin}");
        assert_eq!(address.kato, known.seat.kato, "{iin}");
        assert_eq!(address.city, known.seat.locality_ru(), "{iin}");
        *counts.entry(district.code).or_default() += 1;
    }
    let total_weight: u32 = north.districts.iter().map(|district| district.weight).sum();
    let residents = f64::from(num_residents);
    for district in north.districts {
        let expected = f64::from(district.weight) / f64::from(total_weight);
        let found = f64::from(counts.get(district.kato).copied().unwrap_or(0)) / residents;
        // 3.5 standard deviations of a share of `residents` draws.
        let tolerance = 3.5 * (expected * (1.0 - expected) / residents).sqrt();
        assert!(
            (found - expected).abs() <= tolerance,
            "{}: {found:.3} against {expected:.3} ± {tolerance:.3}",
            district.name_ru()
        );
    }
    assert_eq!(counts.len(), north.districts.len(), "{counts:?}");
}

#[test]
fn a_region_kept_at_centre_level_places_everyone_in_its_centre() {
    let population = Population::new(13, None, 0.0).unwrap();
    let mut num_found = 0;
    for index in 0..20_000 {
        let Some(iin) = population.iin_at(index * 7) else {
            continue;
        };
        let address = population.person(&iin).unwrap().reg_address.unwrap();
        if address.kato.starts_with("75") {
            num_found += 1;
            assert_eq!(address.kato, "751000000");
            assert_eq!(address.district.unwrap().code, "751000000");
            assert_eq!(address.city, "г. Алматы");
        }
    }
    assert!(num_found > 100, "{num_found}");
}
