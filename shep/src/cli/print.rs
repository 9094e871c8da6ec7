//! How the commands print records, applications and status events.

use shep_proto::gateway::v1::{Application, StatusEvent};
use shep_proto::registry::v1::{LegalEntity, Person, PowerOfAttorney};

/// Prints the details of a person record: citizenship, documents.
pub(super) fn print_person_details(person: &Person) {
    let value = |dict: &Option<shep_proto::registry::v1::DictionaryValue>| {
        dict.as_ref()
            .map(|dict| format!("{} {}", dict.code, dict.name_ru))
            .unwrap_or_default()
    };
    println!(
        "  citizenship {}, nationality {}, life status {}{}",
        value(&person.citizenship),
        value(&person.nationality),
        value(&person.life_status),
        if person.death_date.is_empty() {
            String::new()
        } else {
            format!(" (died {})", person.death_date)
        }
    );
    for document in &person.documents {
        println!(
            "  document {} № {}, {} – {}, {}",
            value(&document.r#type),
            document.number,
            document.begin_date,
            document.end_date,
            value(&document.status)
        );
    }
}

/// Prints a legal entity record.
pub(super) fn print_entity(entity: &LegalEntity) {
    let address = entity.address.clone().unwrap_or_default();
    println!(
        "  {} ({}), БИН {}, registered {}, {}",
        entity.short_name_ru,
        entity
            .legal_form
            .as_ref()
            .map(|form| form.name_ru.as_str())
            .unwrap_or(""),
        entity.bin,
        entity.registration_date,
        entity
            .reg_status
            .as_ref()
            .map(|status| status.name_ru.as_str())
            .unwrap_or("")
    );
    println!(
        "  address: {}, {} {} (КАТО {})",
        address.city, address.street, address.building, address.kato
    );
    println!(
        "  head: {} {} (ИИН {})",
        entity.head_position, entity.head_name, entity.head_iin
    );
    for founder in &entity.founders {
        let id = match &founder.id {
            Some(shep_proto::registry::v1::founder::Id::Iin(iin)) => format!("ИИН {iin}"),
            Some(shep_proto::registry::v1::founder::Id::Bin(bin)) => format!("БИН {bin}"),
            None => String::new(),
        };
        println!(
            "  founder: {} ({id}) {} %",
            founder.name, founder.share_percent
        );
    }
}

/// Prints a power of attorney record.
pub(super) fn print_attorney(attorney: &PowerOfAttorney) {
    let principal = if attorney.principal_bin.is_empty() {
        format!("ИИН {}", attorney.principal_iin)
    } else {
        format!(
            "БИН {} (signed by ИИН {})",
            attorney.principal_bin, attorney.principal_iin
        )
    };
    println!(
        "  power of attorney № {}: {principal} -> representative ИИН {}",
        attorney.number, attorney.representative_iin
    );
    println!(
        "  {}, issued {}, valid until {}{}",
        attorney.notary_name,
        attorney.issue_date,
        attorney.valid_until,
        if attorney.revoked {
            format!(", REVOKED {}", attorney.revocation_date)
        } else {
            String::new()
        }
    );
    println!(
        "  services: {}",
        if attorney.service_ids.is_empty() {
            "any".to_owned()
        } else {
            attorney.service_ids.join(", ")
        }
    );
}

/// Prints a person record.
pub(super) fn print_person(person: &Person) {
    let address = person.reg_address.clone().unwrap_or_default();
    println!(
        "  {} {} {}, ИИН {}, born {}, {}",
        person.surname,
        person.name,
        person.patronymic,
        person.iin,
        person.birth_date,
        person
            .gender
            .as_ref()
            .map(|gender| gender.name_ru.as_str())
            .unwrap_or("")
    );
    println!(
        "  registered at {}, {} (КАТО {})",
        address.city, address.street, address.kato
    );
}

/// Prints one status event.
pub(super) fn print_event(event: &StatusEvent) {
    // An overdue mark keeps the status; say what it is.
    let what = if event.overdue {
        format!("OVERDUE ({})", event.status().as_str_name())
    } else {
        event.status().as_str_name().to_owned()
    };
    let mut line = format!("  [{}] {:<18} {}", event.sequence, what, event.notification);
    if let Some(result) = &event.result {
        line.push_str(&format!(
            " (result `{}`, {} bytes, signed)",
            result.name,
            result.content.len()
        ));
    }
    println!("{line}");
}

/// Prints an application summary.
pub(super) fn print_application(application: &Application) {
    println!(
        "  {} {} -> {}: {} (delivery {}){}{}",
        application.message_id,
        application.service_id,
        application.provider_id,
        application.status().as_str_name(),
        application.delivery_state().as_str_name(),
        if application.registration_number.is_empty() {
            String::new()
        } else {
            format!(", № {}", application.registration_number)
        },
        if application.overdue { ", OVERDUE" } else { "" }
    );
    for event in &application.events {
        print_event(event);
    }
}
