//! Fuzzing plate keys: any text a camera, a vendor feed or an analyst may
//! hand over. Normalising must not panic; its key is upper-case Latin
//! letters and digits only, normalising it again changes nothing,
//! separators and case do not matter, and Cyrillic look-alikes give the
//! Latin key (the contract of `plate_norm` in the architecture). The plate
//! grammars take any key, and the keyed hashes of a key are the same every
//! time and bounded in number, whatever the text.
//!
//! Why proptest and not cargo-fuzz or AFL: both need a nightly compiler or
//! their own toolchain, which the project's machines and CI do not have.
//! proptest runs on stable as an ordinary `cargo test`, from a fixed seed
//! by default, shrinks a failure to a small input, and takes more cases
//! from `BORDERFLOW_FUZZ_CASES` for long runs (see `fuzz_config`).

use std::collections::HashSet;

use borderflow_types::plate_grammar::{formats_for, matches, plate_country};
use borderflow_types::plate_hash::MASKED_KEY_CHARS_MAX;
use borderflow_types::{Direction, ExchangeKeys, PlateRead, Point, key_variants, plate_fuzzy, plate_norm, pre_arrival_records, read_keys_batch};
use proptest::prelude::*;

use crate::fuzz_config;

/// Latin letters and the Cyrillic letters folded to them.
const LOOK_ALIKES: &[(char, char, char)] = &[
    ('A', 'А', 'а'),
    ('B', 'В', 'в'),
    ('E', 'Е', 'е'),
    ('I', 'І', 'і'),
    ('K', 'К', 'к'),
    ('M', 'М', 'м'),
    ('H', 'Н', 'н'),
    ('O', 'О', 'о'),
    ('P', 'Р', 'р'),
    ('C', 'С', 'с'),
    ('T', 'Т', 'т'),
    ('X', 'Х', 'х'),
    ('Y', 'У', 'у'),
];

const SEPARATORS: &[char] = &[' ', '-', '.', '/', '·', '\t', '_', '\u{a0}'];

/// Any characters at all, short and now and then long.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(any::<char>(), 0..24),
        1 => proptest::collection::vec(any::<char>(), 0..400),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

/// Text that looks like a plate: Latin and Cyrillic letters of both cases,
/// digits and separators.
fn plate_like() -> impl Strategy<Value = String> {
    let character = prop_oneof![
        3 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('a', 'z'),
        3 => proptest::char::range('0', '9'),
        2 => proptest::sample::select(LOOK_ALIKES).prop_map(|(_, upper, _)| upper),
        2 => proptest::sample::select(LOOK_ALIKES).prop_map(|(_, _, lower)| lower),
        1 => proptest::sample::select(SEPARATORS),
    ];
    proptest::collection::vec(character, 0..14).prop_map(|chars| chars.into_iter().collect())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any_text(), plate_like()]
}

fn read(plate_norm: &str) -> PlateRead {
    PlateRead {
        read_id: "01J00000000000000000000000".into(),
        post_id: "otaci".into(),
        camera_id: "otaci-exit-departure-1".into(),
        country: "MD".into(),
        lane: 1,
        direction: Direction::Exit,
        point: Point::Departure,
        captured_at_ms: 1_795_000_000_000,
        plate_text: plate_norm.into(),
        plate_norm: plate_norm.into(),
        plate_country: None,
        confidence: 0.9,
        frames: 3,
        bbox: None,
        crop_uri: None,
    }
}

fn is_key(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

proptest! {
    #![proptest_config(fuzz_config::config(2000))]

    #[test]
    fn norm_is_upper_case_latin_and_digits_and_idempotent(text in text()) {
        let norm = plate_norm(&text);
        prop_assert!(is_key(&norm), "{text:?} → {norm:?}");
        prop_assert_eq!(plate_norm(&norm), norm.clone());
        let fuzzy = plate_fuzzy(&text);
        prop_assert!(is_key(&fuzzy), "{text:?} → {fuzzy:?}");
        prop_assert_eq!(plate_fuzzy(&fuzzy), fuzzy.clone());
        prop_assert_eq!(plate_fuzzy(&norm), fuzzy);
    }

    #[test]
    fn separators_case_and_cyrillic_look_alikes_do_not_change_the_key(
        plate in plate_like(),
        separators in proptest::collection::vec((any::<proptest::sample::Index>(), proptest::sample::select(SEPARATORS)), 0..4),
        lower in any::<bool>(),
    ) {
        let norm = plate_norm(&plate);
        let mut chars: Vec<char> = plate.chars().collect();
        for (at, separator) in &separators {
            chars.insert(at.index(chars.len() + 1), *separator);
        }
        let separated: String = chars.iter().collect();
        prop_assert_eq!(plate_norm(&separated), norm.clone(), "{:?}", separated);
        let cased = if lower { plate.to_lowercase() } else { plate.to_uppercase() };
        prop_assert_eq!(plate_norm(&cased), norm.clone(), "{:?}", cased);
        let cyrillic: String = norm
            .chars()
            .map(|c| LOOK_ALIKES.iter().find(|(latin, _, _)| *latin == c).map_or(c, |(_, upper, lower_case)| if lower { *lower_case } else { *upper }))
            .collect();
        prop_assert_eq!(plate_norm(&cyrillic), norm, "{:?}", cyrillic);
    }

    #[test]
    fn grammars_take_any_key(text in text(), prefer in prop_oneof![Just(None), Just(Some("MD".to_string())), Just(Some("US".to_string())), any_text().prop_map(Some)]) {
        let norm = plate_norm(&text);
        let country = plate_country(&norm, prefer.as_deref());
        let formats: Vec<&str> = formats_for(prefer.as_deref()).filter(|f| matches(f, &norm)).map(|f| f.country).collect();
        if let Some(country) = country {
            prop_assert!(formats.contains(&country), "{norm:?}: {country} among {formats:?}");
        }
    }

    #[test]
    fn keyed_hashes_are_deterministic_and_bounded(text in text(), secret in proptest::collection::vec(any::<u8>(), 0..80)) {
        let norm = plate_norm(&text);
        let variants = key_variants(&norm);
        prop_assert_eq!(&variants, &key_variants(&norm));
        let numbers: HashSet<i16> = variants.iter().map(|(variant, _)| *variant).collect();
        prop_assert_eq!(numbers.len(), variants.len(), "variant numbers are distinct");
        prop_assert!(variants.len() <= MASKED_KEY_CHARS_MAX + 2);
        let keys = ExchangeKeys::single(&secret);
        let again = ExchangeKeys::single(&secret);
        for (_, variant) in &variants {
            let hash = keys.hmac(variant, 1);
            prop_assert!(hash.as_ref().is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())));
            prop_assert_eq!(hash, again.hmac(variant, 1));
        }
        let reads = [read(&norm)];
        prop_assert_eq!(read_keys_batch(&reads, &keys), read_keys_batch(&reads, &again));
        let sent = pre_arrival_records(&reads, &keys);
        prop_assert_eq!(sent.num_rows(), variants.len());
        prop_assert_eq!(sent, pre_arrival_records(&reads, &again));
    }
}

/// Found while writing this target: every position of a key was masked, so
/// a key of n characters cost n² bytes and, past 32 767 characters, the
/// variant number overflowed (a panic in debug builds, and in release a
/// variant that collided with the fuzzy one). A read pushed from outside
/// may carry such a text as its `plate_norm`.
#[test]
fn regression_a_very_long_key_is_hashed_without_masked_variants() {
    let norm = "A".repeat(40_000);
    let variants = key_variants(&norm);
    assert_eq!(variants.iter().map(|(v, _)| *v).collect::<Vec<_>>(), vec![0, -1]);
    let keys = ExchangeKeys::single(b"secret");
    assert_eq!(read_keys_batch(&[read(&norm)], &keys).num_rows(), 2);
    let longest_masked = "AB12".repeat(MASKED_KEY_CHARS_MAX / 4);
    assert_eq!(key_variants(&longest_masked).len(), MASKED_KEY_CHARS_MAX + 2);
}
