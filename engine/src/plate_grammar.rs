//! Plate grammars: which country's registration formats a normalised plate
//! fits. The scenario generator and the recogniser's decoder both use them.
//!
//! A format is a pattern over the normalised key: `L` is a letter of the
//! format's alphabet, `D` a digit, any other character stands for itself.

/// One registration format of one country.
#[derive(Clone, Copy, Debug)]
pub struct PlateFormat {
    /// ISO 3166 alpha-2 code of the issuing country.
    pub country: &'static str,
    /// What the format is ("standard since 2015", "diplomatic", …).
    pub name: &'static str,
    pub pattern: &'static str,
    /// Letters allowed where the pattern has `L`.
    pub letters: &'static str,
}

const LATIN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The twelve Cyrillic letters of Ukrainian plates, written as their Latin look-alikes.
pub const UA_LETTERS: &str = "ABCEHIKMOPTX";

/// The formats known to the engine, most specific first within a country.
pub const FORMATS: &[PlateFormat] = &[
    PlateFormat { country: "MD", name: "standard (2015)", pattern: "LLLDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "district (1992-2015)", pattern: "LLLLDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "diplomatic", pattern: "CDDDDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "temporary", pattern: "HDDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "police", pattern: "MAIDDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "army", pattern: "ADDDD", letters: LATIN },
    PlateFormat { country: "MD", name: "border police", pattern: "FPDDDD", letters: LATIN },
    PlateFormat { country: "UA", name: "standard (2004)", pattern: "LLDDDDLL", letters: UA_LETTERS },
    PlateFormat { country: "UA", name: "diplomatic", pattern: "DDDCDDDD", letters: UA_LETTERS },
    PlateFormat { country: "UA", name: "transit", pattern: "DDLLDDDD", letters: UA_LETTERS },
    PlateFormat { country: "RO", name: "standard", pattern: "LLDDLLL", letters: LATIN },
    PlateFormat { country: "RO", name: "Bucharest", pattern: "LDDDLLL", letters: LATIN },
    PlateFormat { country: "PL", name: "standard", pattern: "LLDDDDD", letters: LATIN },
    PlateFormat { country: "BG", name: "standard", pattern: "LLDDDDLL", letters: "ABEKMHOPCTYX" },
    PlateFormat { country: "LT", name: "standard", pattern: "LLLDDD", letters: LATIN },
    PlateFormat { country: "DE", name: "standard", pattern: "LLLDDDD", letters: LATIN },
];

/// Whether `norm` (a [`crate::plate_norm`] key) fits `format`.
pub fn matches(format: &PlateFormat, norm: &str) -> bool {
    norm.len() == format.pattern.len()
        && norm.chars().zip(format.pattern.chars()).all(|(c, p)| match p {
            'L' => format.letters.contains(c),
            'D' => c.is_ascii_digit(),
            literal => c == literal,
        })
}

/// The formats `norm` fits, in [`FORMATS`] order.
pub fn matching_formats(norm: &str) -> impl Iterator<Item = &'static PlateFormat> + '_ {
    FORMATS.iter().filter(move |f| matches(f, norm))
}

/// The country of the first format `norm` fits, preferring `prefer` (the
/// country the camera stands in) when several countries' formats fit.
pub fn plate_country(norm: &str, prefer: Option<&str>) -> Option<&'static str> {
    let mut first = None;
    for format in matching_formats(norm) {
        if Some(format.country) == prefer {
            return Some(format.country);
        }
        first.get_or_insert(format.country);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_are_recognised() {
        assert_eq!(plate_country("ABC123", None), Some("MD"));
        assert_eq!(plate_country("AI5255EI", None), Some("UA"));
        assert_eq!(plate_country("B123ABC", None), Some("RO"));
        assert_eq!(plate_country("WA12345", None), Some("PL"));
    }

    #[test]
    fn ukrainian_plates_only_use_latin_look_alikes() {
        // F and Z have no Cyrillic look-alike on Ukrainian plates.
        assert!(!matching_formats("AF1234ZZ").any(|f| f.country == "UA"));
    }

    #[test]
    fn the_camera_country_wins_ties() {
        // LLLDDD is Moldovan and Lithuanian.
        assert_eq!(plate_country("ABC123", Some("LT")), Some("LT"));
        assert_eq!(plate_country("ABC123", Some("UA")), Some("MD"));
    }
}
