//! API key text: its format, hash and display prefix. Pure functions; the
//! random bytes come from the caller (the OS), so this stays I/O-free.

use sha2::{Digest, Sha256};

/// A key from 20 random bytes: `llk_` and 40 hex digits (160 bits).
pub fn format_key(random: [u8; 20]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("llk_{hex}")
}

/// SHA-256 of a key: the only form in which keys are stored.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The first 12 characters, to recognise a key in lists.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_hash_prefix() {
        let k = format_key([0xab; 20]);
        assert_eq!(k.len(), 44);
        assert!(k.starts_with("llk_abab"));
        assert_eq!(key_prefix(&k), "llk_abababab");
        assert_eq!(hash_key(&k), hash_key(&k.clone()));
        assert_ne!(hash_key(&k), hash_key("llk_other"));
    }
}
