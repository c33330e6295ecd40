//! French regions (the 18 of the 2016 reform) from the INSEE département codes of the
//! `departement` column: the host computes a table's `region` dimension from them, so a
//! study never names a region itself.

/// Metropolitan regions, then overseas ones, then Saint-Pierre-et-Miquelon, each with
/// its INSEE region code and its départements.
const REGIONS: [(&str, &str, &[&str]); 19] = [
    (
        "Auvergne-Rhône-Alpes",
        "84",
        &[
            "01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74",
        ],
    ),
    (
        "Bourgogne-Franche-Comté",
        "27",
        &["21", "25", "39", "58", "70", "71", "89", "90"],
    ),
    ("Bretagne", "53", &["22", "29", "35", "56"]),
    (
        "Centre-Val de Loire",
        "24",
        &["18", "28", "36", "37", "41", "45"],
    ),
    // `20`, Corsica's code before its 1976 split, is read as Corse too.
    ("Corse", "94", &["2A", "2B", "20"]),
    (
        "Grand Est",
        "44",
        &["08", "10", "51", "52", "54", "55", "57", "67", "68", "88"],
    ),
    ("Hauts-de-France", "32", &["02", "59", "60", "62", "80"]),
    (
        "Île-de-France",
        "11",
        &["75", "77", "78", "91", "92", "93", "94", "95"],
    ),
    ("Normandie", "28", &["14", "27", "50", "61", "76"]),
    (
        "Nouvelle-Aquitaine",
        "75",
        &[
            "16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87",
        ],
    ),
    (
        "Occitanie",
        "76",
        &[
            "09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82",
        ],
    ),
    ("Pays de la Loire", "52", &["44", "49", "53", "72", "85"]),
    (
        "Provence-Alpes-Côte d'Azur",
        "93",
        &["04", "05", "06", "13", "83", "84"],
    ),
    ("Guadeloupe", "01", &["971"]),
    ("Martinique", "02", &["972"]),
    ("Guyane", "03", &["973"]),
    ("La Réunion", "04", &["974"]),
    ("Mayotte", "06", &["976"]),
    // Not a département nor a region but an overseas collectivity; the warehouse stores
    // its postcodes (975xx) as `975`, so it is reported on its own.
    ("Saint-Pierre-et-Miquelon", "975", &["975"]),
];

/// The names [`region_of_departement`] gives: the 13 metropolitan regions
/// alphabetically, the 5 overseas regions, then `Saint-Pierre-et-Miquelon`.
pub const REGION_NAMES: [&str; 19] = {
    let mut names = [""; 19];
    let mut index = 0;
    while index < REGIONS.len() {
        names[index] = REGIONS[index].0;
        index += 1;
    }
    names
};

/// Index in [`REGION_NAMES`] of the region of an INSEE département code, for studies
/// that count into arrays rather than by name.
pub fn region_index(departement: &str) -> Option<usize> {
    let slot = slot(departement.trim().as_bytes())?;
    match BY_SLOT[slot] {
        NONE => None,
        index => Some(usize::from(index)),
    }
}

const NONE: u8 = u8::MAX;
/// Slots: `00`–`99` as their number, `2A` and `2B` as 100 and 101, `970`–`979` as
/// 102–111.
const SLOTS: usize = 112;

/// Where a département code sits in [`BY_SLOT`], without allocating: this runs once per
/// row.
const fn slot(code: &[u8]) -> Option<usize> {
    match code {
        [b'2', b'A'] => Some(100),
        [b'2', b'B'] => Some(101),
        [tens @ b'0'..=b'9', units @ b'0'..=b'9'] => {
            Some(((*tens - b'0') * 10 + (*units - b'0')) as usize)
        }
        [b'9', b'7', units @ b'0'..=b'9'] => Some(102 + (*units - b'0') as usize),
        _ => None,
    }
}

/// The index in [`REGIONS`] of each slot's département, [`NONE`] if it has none.
const BY_SLOT: [u8; SLOTS] = {
    let mut by_slot = [NONE; SLOTS];
    let mut region = 0;
    while region < REGIONS.len() {
        let departements = REGIONS[region].2;
        let mut index = 0;
        while index < departements.len() {
            match slot(departements[index].as_bytes()) {
                Some(slot) => by_slot[slot] = region as u8,
                None => panic!("a département code of REGIONS has no slot"),
            }
            index += 1;
        }
        region += 1;
    }
    by_slot
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_departement_has_exactly_one_region() {
        let mut codes: Vec<String> = (1..=95)
            .filter(|n| *n != 20)
            .map(|n| format!("{n:02}"))
            .collect();
        codes.extend(["2A", "2B"].map(String::from));
        codes.extend((971..=976).filter(|n| *n != 975).map(|n| n.to_string()));
        for code in &codes {
            let holders = REGIONS
                .iter()
                .filter(|(_, _, departements)| departements.contains(&code.as_str()))
                .count();
            assert_eq!(holders, 1, "{code}");
            assert!(region_index(code).is_some(), "{code}");
        }
        assert_eq!(region_index("2A").map(|i| REGION_NAMES[i]), Some("Corse"));
        assert_eq!(region_index("99"), None);
        assert_eq!(region_index("Paris"), None);
    }
}
