//! Personal identifiers: the codice fiscale check, keyed pseudonyms, and
//! masking for reports.
//!
//! Owns turning an identifier into its pseudonym. It must never log, store
//! or return a raw identifier except masked.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The pseudonym's prefix: every ingested person key starts with it.
pub const PSEUDONYM_PREFIX: &str = "P";
/// Hex digits of the HMAC kept in a pseudonym (80 bits).
const PSEUDONYM_HEX: usize = 20;
/// Keys shorter than this are refused: a short key makes pseudonyms
/// guessable by trying every codice fiscale.
pub const MIN_KEY_BYTES: usize = 16;

/// Keyed pseudonyms: HMAC-SHA256 of the normalised identifier.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// The keyed MAC with the domain label already fed in, cloned for each
    /// identifier rather than fed the label a million times.
    labelled: Hmac<Sha256>,
}

/// Fed to the MAC before every identifier, so that these pseudonyms never
/// equal another keyed hash of the same codes.
const PSEUDONYM_LABEL: &[u8] = b"osservatorio-person-v1\0";

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key withheld>)")
    }
}

impl Pseudonymizer {
    /// `None` when the key is too short.
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.len() < MIN_KEY_BYTES {
            return None;
        }
        let mut labelled =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        labelled.update(PSEUDONYM_LABEL);
        Some(Self { labelled })
    }

    /// The pseudonym of an identifier: the same identifier, whatever its case
    /// or spacing, gives the same pseudonym in every file and dataset.
    pub fn pseudonym(&self, identifier: &str) -> String {
        self.pseudonym_of(identifier).as_str().to_string()
    }

    /// [`Pseudonymizer::pseudonym`] without an allocation, for the million
    /// rows of a large export.
    pub fn pseudonym_of(&self, identifier: &str) -> Pseudonym {
        let mut mac = self.labelled.clone();
        mac.update(normalise(identifier).as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut digits = [0u8; PSEUDONYM_HEX.div_ceil(2) * 2];
        hex::encode_to_slice(&digest[..PSEUDONYM_HEX.div_ceil(2)], &mut digits)
            .expect("the buffer holds two digits per byte");
        let mut text = [0u8; PSEUDONYM_LEN];
        let (prefix, rest) = text.split_at_mut(PSEUDONYM_PREFIX.len());
        prefix.copy_from_slice(PSEUDONYM_PREFIX.as_bytes());
        rest.copy_from_slice(&digits[..PSEUDONYM_HEX]);
        Pseudonym(text)
    }
}

/// How many characters a pseudonym has.
pub(super) const PSEUDONYM_LEN: usize = PSEUDONYM_PREFIX.len() + PSEUDONYM_HEX;

/// A pseudonym's characters, held in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pseudonym([u8; PSEUDONYM_LEN]);

impl Pseudonym {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a prefix and hex digits are ASCII")
    }
}

/// Upper case without spaces: how tax codes are compared. Borrowed when the
/// identifier is already so, as nearly every exported one is.
pub fn normalise(identifier: &str) -> std::borrow::Cow<'_, str> {
    if identifier
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return std::borrow::Cow::Borrowed(identifier);
    }
    identifier
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect::<String>()
        .into()
}

/// Shows the first two and last character of a value, never the rest.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..2].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 3));
    out.push(chars[chars.len() - 1]);
    out
}

/// Why a codice fiscale is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaxCodeError {
    #[error("a codice fiscale has 16 characters (or 11 digits), not {0}")]
    Length(usize),
    #[error("the codice fiscale does not have the layout of letters and digits")]
    Layout,
    #[error("the codice fiscale's check character is wrong")]
    CheckCharacter,
    #[error("the 11-digit codice fiscale's check digit is wrong")]
    CheckDigit,
}

/// Checks a codice fiscale: the 16-character personal code (omocodia
/// letters allowed) with its check letter, or the 11-digit numeric code
/// with its Luhn check digit.
pub fn check_tax_code(code: &str) -> Result<(), TaxCodeError> {
    let code = normalise(code);
    let bytes = code.as_bytes();
    match bytes.len() {
        16 => {
            // Digits, or the letters that stand for them in a code changed
            // to tell apart two people who would share it (omocodia).
            let letter = |i: usize| bytes[i].is_ascii_uppercase();
            let digitish = |i: usize| matches!(bytes[i], b'0'..=b'9' | b'L'..=b'N' | b'P'..=b'V');
            let layout = (0..6).all(letter)
                && [6, 7, 9, 10, 12, 13, 14].into_iter().all(digitish)
                && matches!(bytes[8], b'A'..=b'E' | b'H' | b'L' | b'M' | b'P' | b'R'..=b'T')
                && letter(11)
                && letter(15);
            if !layout {
                return Err(TaxCodeError::Layout);
            }
            // Odd positions (1-based) of the first 15 characters.
            const ODD: [u32; 26] = [
                1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22,
                25, 24, 23,
            ];
            let value = |b: u8| -> usize {
                if b.is_ascii_digit() {
                    (b - b'0') as usize
                } else {
                    (b - b'A') as usize
                }
            };
            let sum: u32 = bytes[..15]
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    if i % 2 == 0 {
                        ODD[value(b)]
                    } else {
                        value(b) as u32
                    }
                })
                .sum();
            if bytes[15] == b'A' + (sum % 26) as u8 {
                Ok(())
            } else {
                Err(TaxCodeError::CheckCharacter)
            }
        }
        11 if bytes.iter().all(u8::is_ascii_digit) => {
            let sum: u32 = bytes[..10]
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    let d = (b - b'0') as u32;
                    if i % 2 == 1 {
                        let doubled = d * 2;
                        if doubled > 9 {
                            doubled - 9
                        } else {
                            doubled
                        }
                    } else {
                        d
                    }
                })
                .sum();
            if (10 - sum % 10) % 10 == (bytes[10] - b'0') as u32 {
                Ok(())
            } else {
                Err(TaxCodeError::CheckDigit)
            }
        }
        11 => Err(TaxCodeError::Layout),
        n => Err(TaxCodeError::Length(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tax_codes_check() {
        for good in [
            "RCCMNL83S18D969H",
            "CNTCHR83T41D969D",
            "MRTMTT25D09F205Z",
            "rccmnl 83s18 d969h",
        ] {
            assert_eq!(check_tax_code(good), Ok(()), "{good}");
        }
        assert_eq!(
            check_tax_code("RCCMNL83S18D969A"),
            Err(TaxCodeError::CheckCharacter)
        );
        assert_eq!(
            check_tax_code("RCCMNL83S18D96"),
            Err(TaxCodeError::Length(14))
        );
        assert_eq!(check_tax_code("1234567890X"), Err(TaxCodeError::Layout));
        // A company-style numeric code with a valid Luhn digit.
        assert_eq!(check_tax_code("00743110157"), Ok(()));
        assert_eq!(check_tax_code("00743110158"), Err(TaxCodeError::CheckDigit));
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_masked() {
        let a = Pseudonymizer::new(b"0123456789abcdef-key").unwrap();
        let b = Pseudonymizer::new(b"another key, 16+ bytes").unwrap();
        assert_eq!(
            a.pseudonym("RCCMNL83S18D969H"),
            a.pseudonym(" rccmnl83s18d969h ")
        );
        assert_ne!(
            a.pseudonym("RCCMNL83S18D969H"),
            b.pseudonym("RCCMNL83S18D969H")
        );
        assert_eq!(a.pseudonym("RCCMNL83S18D969H").len(), 21);
        assert!(Pseudonymizer::new(b"short").is_none());
        assert_eq!(mask("RCCMNL83S18D969H"), "RC*************H");
        assert!(!format!("{a:?}").contains("0123"));
    }
}
