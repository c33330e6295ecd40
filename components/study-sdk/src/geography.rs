//! French regions (the 18 of the 2016 reform) from the INSEE département codes the
//! warehouse stores in `departement`.

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

/// The region (name as INSEE spells it, such as `Île-de-France`) of an INSEE
/// département code: `01`–`95` (`2A` and `2B` for Corsica) and `971`–`976` overseas,
/// as the `departement` column stores them. `975` (Saint-Pierre-et-Miquelon, an
/// overseas collectivity) gives `Saint-Pierre-et-Miquelon`; anything else `None`.
pub fn region_of_departement(departement: &str) -> Option<&'static str> {
    region_index(departement).map(|index| REGION_NAMES[index])
}

/// The INSEE region code (`11` for Île-de-France, `01`–`06` overseas) of a département;
/// `975` for Saint-Pierre-et-Miquelon, which has no region.
pub fn region_code_of_departement(departement: &str) -> Option<&'static str> {
    region_index(departement).map(|index| REGIONS[index].1)
}

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
        codes.extend((971..=976).map(|n| n.to_string()));
        assert_eq!(codes.len(), 96 + 6);
        for code in &codes {
            let holders = REGIONS
                .iter()
                .filter(|(_, _, departements)| departements.contains(&code.as_str()))
                .count();
            assert_eq!(holders, 1, "{code}");
            assert!(region_of_departement(code).is_some(), "{code}");
        }
        let listed: usize = REGIONS.iter().map(|(_, _, d)| d.len()).sum();
        // Every listed code is one of those, plus the old Corsican `20`.
        assert_eq!(listed, codes.len() + 1);
    }

    #[test]
    fn there_are_18_regions_and_saint_pierre() {
        let mut names = REGION_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 19);
        let mut region_codes: Vec<_> = REGIONS.iter().map(|(_, code, _)| *code).collect();
        region_codes.sort_unstable();
        region_codes.dedup();
        assert_eq!(region_codes.len(), 19);
    }

    #[test]
    fn known_departements() {
        assert_eq!(region_of_departement("75"), Some("Île-de-France"));
        assert_eq!(region_of_departement("93"), Some("Île-de-France"));
        assert_eq!(
            region_of_departement("13"),
            Some("Provence-Alpes-Côte d'Azur")
        );
        assert_eq!(region_of_departement("2A"), Some("Corse"));
        assert_eq!(region_of_departement("2B"), Some("Corse"));
        assert_eq!(region_of_departement("29"), Some("Bretagne"));
        assert_eq!(region_of_departement("59"), Some("Hauts-de-France"));
        assert_eq!(region_of_departement("67"), Some("Grand Est"));
        assert_eq!(region_of_departement("69"), Some("Auvergne-Rhône-Alpes"));
        assert_eq!(region_of_departement("33"), Some("Nouvelle-Aquitaine"));
        assert_eq!(region_of_departement("31"), Some("Occitanie"));
        assert_eq!(region_of_departement("44"), Some("Pays de la Loire"));
        assert_eq!(region_of_departement("76"), Some("Normandie"));
        assert_eq!(region_of_departement("45"), Some("Centre-Val de Loire"));
        assert_eq!(region_of_departement("21"), Some("Bourgogne-Franche-Comté"));
        assert_eq!(region_of_departement("971"), Some("Guadeloupe"));
        assert_eq!(region_of_departement("972"), Some("Martinique"));
        assert_eq!(region_of_departement("973"), Some("Guyane"));
        assert_eq!(region_of_departement("974"), Some("La Réunion"));
        assert_eq!(region_of_departement("976"), Some("Mayotte"));
        assert_eq!(
            region_of_departement("975"),
            Some("Saint-Pierre-et-Miquelon")
        );
        assert_eq!(region_code_of_departement("75"), Some("11"));
        assert_eq!(region_code_of_departement("974"), Some("04"));
    }

    #[test]
    fn unknown_codes_have_no_region() {
        for code in ["", "00", "96", "99", "977", "98", "2C", "1", "7", "750"] {
            assert_eq!(region_of_departement(code), None, "{code}");
        }
    }
}
