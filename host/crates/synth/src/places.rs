//! Reference data: the associations, names and codes the generator draws from. Small
//! embedded lists, enough to look like French out-of-hours care.

/// An out-of-hours GP association and the place it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Association {
    /// `sos-<city>`.
    pub name: &'static str,
    /// INSEE département code: `75`, `2A`, `974`, …
    pub departement: &'static str,
    /// A postcode of the city, in that département.
    pub postcode: &'static str,
    /// Relative size (share of consultations).
    pub weight: u32,
}

const fn association(
    name: &'static str,
    departement: &'static str,
    postcode: &'static str,
    weight: u32,
) -> Association {
    Association {
        name,
        departement,
        postcode,
        weight,
    }
}

pub const ASSOCIATIONS: [Association; 66] = [
    association("sos-bourg-en-bresse", "01", "01000", 1),
    association("sos-saint-quentin", "02", "02100", 1),
    association("sos-vichy", "03", "03200", 1),
    association("sos-nice", "06", "06000", 4),
    association("sos-marseille", "13", "13005", 6),
    association("sos-aix-en-provence", "13", "13100", 2),
    association("sos-caen", "14", "14000", 2),
    association("sos-la-rochelle", "17", "17000", 1),
    association("sos-bourges", "18", "18000", 1),
    association("sos-dijon", "21", "21000", 2),
    association("sos-saint-brieuc", "22", "22000", 1),
    association("sos-besancon", "25", "25000", 2),
    association("sos-valence", "26", "26000", 1),
    association("sos-quimper", "29", "29000", 1),
    association("sos-brest", "29", "29200", 2),
    association("sos-ajaccio", "2A", "20000", 1),
    association("sos-bastia", "2B", "20200", 1),
    association("sos-nimes", "30", "30000", 2),
    association("sos-toulouse", "31", "31000", 5),
    association("sos-bordeaux", "33", "33000", 5),
    association("sos-montpellier", "34", "34000", 4),
    association("sos-rennes", "35", "35000", 3),
    association("sos-tours", "37", "37000", 2),
    association("sos-grenoble", "38", "38000", 3),
    association("sos-saint-etienne", "42", "42000", 2),
    association("sos-nantes", "44", "44000", 4),
    association("sos-orleans", "45", "45000", 2),
    association("sos-angers", "49", "49000", 2),
    association("sos-cherbourg", "50", "50100", 1),
    association("sos-reims", "51", "51100", 2),
    association("sos-nancy", "54", "54000", 2),
    association("sos-vannes", "56", "56000", 1),
    association("sos-metz", "57", "57000", 2),
    association("sos-lille", "59", "59000", 5),
    association("sos-dunkerque", "59", "59140", 2),
    association("sos-beauvais", "60", "60000", 1),
    association("sos-arras", "62", "62000", 1),
    association("sos-clermont-ferrand", "63", "63000", 2),
    association("sos-pau", "64", "64000", 1),
    association("sos-bayonne", "64", "64100", 2),
    association("sos-perpignan", "66", "66000", 2),
    association("sos-strasbourg", "67", "67000", 4),
    association("sos-mulhouse", "68", "68100", 2),
    association("sos-lyon", "69", "69003", 6),
    association("sos-le-mans", "72", "72000", 2),
    association("sos-chambery", "73", "73000", 1),
    association("sos-annecy", "74", "74000", 2),
    association("sos-paris", "75", "75015", 8),
    association("sos-rouen", "76", "76000", 3),
    association("sos-le-havre", "76", "76600", 2),
    association("sos-meaux", "77", "77100", 2),
    association("sos-versailles", "78", "78000", 3),
    association("sos-amiens", "80", "80000", 2),
    association("sos-toulon", "83", "83000", 3),
    association("sos-avignon", "84", "84000", 2),
    association("sos-poitiers", "86", "86000", 1),
    association("sos-limoges", "87", "87000", 1),
    association("sos-evry", "91", "91000", 3),
    association("sos-nanterre", "92", "92000", 4),
    association("sos-saint-denis", "93", "93200", 4),
    association("sos-creteil", "94", "94000", 3),
    association("sos-cergy", "95", "95000", 2),
    association("sos-pointe-a-pitre", "971", "97110", 1),
    association("sos-fort-de-france", "972", "97200", 1),
    association("sos-cayenne", "973", "97300", 1),
    association("sos-saint-denis-reunion", "974", "97400", 2),
];

impl Association {
    /// The UTC offset of local time there on a day (overseas départements keep no
    /// summer time).
    pub fn offset(&self, day: i64) -> &'static str {
        match self.departement {
            "971" | "972" => "-04:00",
            "973" => "-03:00",
            "974" => "+04:00",
            _ => crate::calendar::metropolitan_offset(day),
        }
    }
}

pub const FAMILY_NAMES: [&str; 40] = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Müller",
    "Lefebvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Pérez",
];

pub const FEMALE_GIVEN_NAMES: [&str; 24] = [
    "Marie",
    "Hélène",
    "Zoé",
    "Léa",
    "Chloé",
    "Emma",
    "Jade",
    "Louise",
    "Inès",
    "Camille",
    "Manon",
    "Élodie",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Françoise",
    "Monique",
    "Anaïs",
    "Céline",
    "Sophie",
    "Juliette",
    "Clémence",
    "Noémie",
    "Béatrice",
];

pub const MALE_GIVEN_NAMES: [&str; 24] = [
    "Jean",
    "François",
    "Louis",
    "Gabriel",
    "Léo",
    "Raphaël",
    "Arthur",
    "Hugo",
    "Jules",
    "Noé",
    "Lucas",
    "Théo",
    "Michel",
    "Pierre",
    "Philippe",
    "Alain",
    "Jérôme",
    "Stéphane",
    "Frédéric",
    "Benoît",
    "Nicolas",
    "Thierry",
    "Joël",
    "Rémi",
];

/// ICD-10 codes seen all year round in out-of-hours care, with relative weights for
/// children (under 15) and for adults.
pub const BACKGROUND_CODES: [(&str, u32, u32); 14] = [
    ("J06", 26, 14),
    ("R50", 16, 5),
    ("H66", 14, 2),
    ("R10", 6, 9),
    ("N39", 1, 9),
    ("M54", 0, 10),
    ("S61", 3, 4),
    ("S93", 3, 4),
    ("T78", 3, 3),
    ("J02", 7, 5),
    ("J20", 4, 6),
    ("K59", 3, 3),
    ("L03", 2, 3),
    ("R51", 2, 5),
];

/// The seasonal syndromes the surveillance indicators follow.
pub const ILI_CODES: [&str; 2] = ["J10", "J11"];
pub const GASTRO_CODES: [&str; 2] = ["A08", "A09"];
pub const BRONCHIOLITIS_CODE: &str = "J21";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_association_postcode_lies_in_its_departement() {
        for association in ASSOCIATIONS {
            let expected = match association.departement {
                "2A" | "2B" => "20",
                overseas if overseas.len() == 3 => overseas,
                metropolitan => metropolitan,
            };
            assert!(
                association.postcode.starts_with(expected),
                "{}",
                association.name
            );
            assert!(association.name.starts_with("sos-"));
        }
    }

    #[test]
    fn background_code_weights_are_positive_for_both_age_groups() {
        assert!(BACKGROUND_CODES.iter().map(|&(_, c, _)| c).sum::<u32>() > 0);
        assert!(BACKGROUND_CODES.iter().map(|&(_, _, a)| a).sum::<u32>() > 0);
        assert!(BACKGROUND_CODES.iter().all(|&(code, _, _)| code.len() == 3));
    }

    #[test]
    fn association_names_are_unique() {
        let mut names: Vec<&str> = ASSOCIATIONS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSOCIATIONS.len());
    }
}
