//! Names as the tree shows them, made from whatever a server holds.
//!
//! XNAT labels are normally `[A-Za-z0-9_-]`, but legacy labels, resource labels and file names can
//! hold anything, and a listing is not to be trusted. A name shown by the filesystem therefore
//! never contains `/` or NUL, is never `.`, `..` or empty, never starts with `.` (the dot names are
//! reserved for `.resources` and `.assessors`), and is always valid UTF-8 of at most 255 bytes.
//!
//! The escaping is percent-encoding of just the bytes that break those rules:
//! `%` → `%25`, `/` → `%2F`, NUL → `%00`, a leading `.` → `%2E`, each byte of invalid UTF-8 → `%XX`,
//! and the empty name → `%`. It is reversible ([`decode`]), so a name typed by a user (for `mkdir`,
//! `cp`) maps back to the server name that would show as that name. A name longer than 255 bytes
//! once escaped is cut and given a hash suffix (`…~1a2b3c4d`); such a name is found through the
//! cached listing, not by decoding. Two entries that show as the same name keep the first; later
//! ones get `~2`, `~3`, … (see [`Deduper`]).

use std::collections::HashSet;

/// Longest name the kernel passes in a lookup (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// The shown form of a server name given as bytes (a percent-decoded URI segment may be any bytes).
pub fn encode_bytes(raw: &[u8]) -> String {
    if raw.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut first = true;
    while !rest.is_empty() {
        let (valid, invalid) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                let bad_len = e.error_len().unwrap_or(bad.len());
                (
                    std::str::from_utf8(ok).expect("prefix checked valid"),
                    &bad[..bad_len],
                )
            }
        };
        for ch in valid.chars() {
            match ch {
                '%' => out.push_str("%25"),
                '/' => out.push_str("%2F"),
                '\0' => out.push_str("%00"),
                '.' if first => out.push_str("%2E"),
                c => out.push(c),
            }
            first = false;
        }
        for byte in invalid {
            out.push_str(&format!("%{byte:02X}"));
            first = false;
        }
        rest = &rest[valid.len() + invalid.len()..];
    }
    shorten(out)
}

/// The shown form of a server name.
pub fn encode(raw: &str) -> String {
    encode_bytes(raw.as_bytes())
}

/// The server name a shown (or user-typed) name stands for; `None` if it is not a valid name.
pub fn decode(shown: &[u8]) -> Option<Vec<u8>> {
    if shown == b"%" {
        return Some(Vec::new());
    }
    if shown.is_empty() || shown == b"." || shown == b".." || shown.contains(&b'/') {
        return None;
    }
    let mut out = Vec::with_capacity(shown.len());
    let mut i = 0;
    while i < shown.len() {
        if shown[i] == b'%' && i + 2 < shown.len() {
            let hex = std::str::from_utf8(&shown[i + 1..i + 3]).ok()?;
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(shown[i]);
        i += 1;
    }
    Some(out)
}

/// The server name for a user-typed name, as UTF-8 (XNAT labels and file names are text).
pub fn decode_str(shown: &[u8]) -> Option<String> {
    String::from_utf8(decode(shown)?).ok()
}

fn shorten(name: String) -> String {
    if name.len() <= NAME_MAX {
        return name;
    }
    let suffix = format!("~{:08x}", fnv1a(name.as_bytes()));
    let mut cut = NAME_MAX - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    // Never leave half of a `%XX` escape at the cut.
    if let Some(pct) = name[..cut].rfind('%') {
        if pct + 3 > cut {
            cut = pct;
        }
    }
    format!("{}{}", &name[..cut], suffix)
}

/// A small stable hash for shortened names: the same long name always shows the same way.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Gives each entry of one directory a distinct shown name.
#[derive(Default)]
pub struct Deduper {
    seen: HashSet<String>,
}

impl Deduper {
    /// Reserve names that entries may not take (the dot folders).
    pub fn reserve(&mut self, name: &str) {
        self.seen.insert(name.to_string());
    }

    /// The shown name for the next entry whose escaped name is `name`.
    pub fn unique(&mut self, name: String) -> String {
        if self.seen.insert(name.clone()) {
            return name;
        }
        (2..)
            .map(|n| {
                let suffix = format!("~{n}");
                let mut cut = name.len().min(NAME_MAX - suffix.len());
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}{}", &name[..cut], suffix)
            })
            .find(|candidate| self.seen.insert(candidate.clone()))
            .expect("an unused suffix exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_labels_are_unchanged() {
        for label in ["sub-01", "MR_1", "T1w.nii.gz", "scan 3", "ünïcode"] {
            assert_eq!(encode(label), label);
            assert_eq!(decode_str(label.as_bytes()).unwrap(), label);
        }
    }

    #[test]
    fn hostile_names_are_escaped_and_reversible() {
        let cases: &[(&[u8], &str)] = &[
            (b"..", "%2E."),
            (b".", "%2E"),
            (b".hidden", "%2Ehidden"),
            (b"a/b", "a%2Fb"),
            (b"", "%"),
            (b"100%", "100%25"),
            (b"nul\0byte", "nul%00byte"),
            (b"bad\xffutf8", "bad%FFutf8"),
        ];
        for (raw, shown) in cases {
            assert_eq!(encode_bytes(raw), *shown);
            assert_eq!(decode(shown.as_bytes()).unwrap(), *raw);
        }
    }

    #[test]
    fn shown_names_never_break_path_rules() {
        let nasty: Vec<Vec<u8>> = vec![
            b"..".to_vec(),
            b"/".to_vec(),
            b"/etc/passwd".to_vec(),
            b"../../x".to_vec(),
            vec![0xff; 400],
            "é".repeat(200).into_bytes(),
            b"%2F".to_vec(),
        ];
        for raw in nasty {
            let shown = encode_bytes(&raw);
            assert!(!shown.is_empty());
            assert!(!shown.contains('/') && !shown.contains('\0'));
            assert!(!shown.starts_with('.'));
            assert!(shown.len() <= NAME_MAX, "{} bytes", shown.len());
        }
    }

    #[test]
    fn long_names_are_cut_stably() {
        let long = "x".repeat(300);
        let a = encode(&long);
        assert_eq!(a.len(), NAME_MAX);
        assert_eq!(a, encode(&long));
        assert_ne!(a, encode(&"x".repeat(301)));
    }

    #[test]
    fn user_names_that_are_not_names_are_refused() {
        assert!(decode(b".").is_none());
        assert!(decode(b"..").is_none());
        assert!(decode(b"").is_none());
        assert!(decode(b"a/b").is_none());
    }

    #[test]
    fn duplicates_get_suffixes() {
        let mut d = Deduper::default();
        d.reserve(".resources");
        assert_eq!(d.unique("a".into()), "a");
        assert_eq!(d.unique("a".into()), "a~2");
        assert_eq!(d.unique("a".into()), "a~3");
        assert_eq!(d.unique("a~2".into()), "a~2~2");
    }
}
