//! DM-compatible password encryption (`dmctl encrypt` / `decrypt`) and password resolution.
//!
//! DM encrypts with AES-256 in (full-block) CFB mode under a fixed, public key and prints
//! `base64(IV(16) || '@' || ciphertext)`; a fresh random IV is drawn for every call. Config loading
//! uses [`decrypt_or_plaintext`], exactly like DM's `utils.DecryptOrPlaintext`. Beyond DM, a password
//! field may be `${ENV_NAME}` so that task files kept in git never hold a secret ([`resolve`]).
//!
//! Nothing here ever logs or prints a password; callers show [`MASK`] instead.

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Sha256;

/// What `get-config`, plans and logs show in place of any password.
pub const MASK: &str = "******";

/// DM's hard-coded AES-256 key (`pkg/encrypt/encrypt.go`, `secretKey`).
const SECRET_KEY: [u8; 32] = [
    0xa5, 0x29, 0xb7, 0x66, 0x59, 0x97, 0xf0, 0x43, 0xa3, 0x0a, 0xc8, 0xfa, 0xdc, 0xb5, 0x1d, 0x6a,
    0xa0, 0x32, 0xc2, 0x26, 0xab, 0x5b, 0x77, 0x50, 0x53, 0x0b, 0x12, 0xb8, 0xc1, 0xa1, 0x6a, 0x48,
];
const IV_LEN: usize = 16;

type Enc = cfb_mode::Encryptor<aes::Aes256>;
type Dec = cfb_mode::Decryptor<aes::Aes256>;

/// Why a ciphertext could not be decrypted, with DM's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// 11047: fewer than IV + '@' bytes after base64 decoding.
    #[error(
        "[code=11047] ciphertext's length should be greater than {IV_LEN}, but got {0} not valid"
    )]
    TooShort(usize),
    /// 11048: the byte after the IV is not '@'.
    #[error("[code=11048] ciphertext's content not valid")]
    BadContent,
    /// 11050: not base64 at all.
    #[error("[code=11050] decode base64 encoded password failed: {0}")]
    Base64(String),
    /// 11049 in DM's table (cipher failure); also used for a result that is not UTF-8 text.
    #[error("[code=11049] can not decrypt ciphertext: {0}")]
    Decrypt(String),
    /// The OS random source failed while drawing an IV.
    #[error("[code=11046] can not generate a random IV: {0}")]
    Random(String),
}

/// Encrypts `plain` as DM does; every call uses a new random IV, so the output differs each time.
pub fn encrypt(plain: &str) -> Result<String, CipherError> {
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|e| CipherError::Random(e.to_string()))?;
    Ok(encrypt_with_iv(plain, iv))
}

fn encrypt_with_iv(plain: &str, iv: [u8; IV_LEN]) -> String {
    let mut body = plain.as_bytes().to_vec();
    Enc::new(&SECRET_KEY.into(), &iv.into()).encrypt(&mut body);
    let mut raw = Vec::with_capacity(IV_LEN + 1 + body.len());
    raw.extend_from_slice(&iv);
    raw.push(b'@');
    raw.extend_from_slice(&body);
    STANDARD.encode(raw)
}

/// Decrypts a DM ciphertext (`base64(IV || '@' || CFB(plain))`).
pub fn decrypt(cipher: &str) -> Result<String, CipherError> {
    let raw = STANDARD
        .decode(cipher.trim())
        .map_err(|e| CipherError::Base64(e.to_string()))?;
    if raw.len() < IV_LEN + 1 {
        return Err(CipherError::TooShort(raw.len()));
    }
    if raw[IV_LEN] != b'@' {
        return Err(CipherError::BadContent);
    }
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&raw[..IV_LEN]);
    let mut body = raw[IV_LEN + 1..].to_vec();
    Dec::new(&SECRET_KEY.into(), &iv.into()).decrypt(&mut body);
    String::from_utf8(body).map_err(|_| CipherError::Decrypt("the plaintext is not UTF-8".into()))
}

/// DM's `DecryptOrPlaintext`: a value that decrypts is a ciphertext, anything else is plaintext.
pub fn decrypt_or_plaintext(value: &str) -> String {
    decrypt(value).unwrap_or_else(|_| value.to_string())
}

/// If `value` is exactly `${NAME}`, the variable's name.
pub fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    chars
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(name)
}

/// A `${NAME}` password whose variable is not set (or not valid UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub String);

/// Resolves a password field as loaded from a file: `${NAME}` is read from the environment
/// (the variable may itself hold plaintext or a DM ciphertext); everything else is returned as is.
/// The result is still "DM form": pass it to [`decrypt_or_plaintext`] when connecting.
pub fn resolve(value: &str) -> Result<String, MissingEnv> {
    match env_reference(value) {
        Some(name) => std::env::var(name).map_err(|_| MissingEnv(name.to_string())),
        None => Ok(value.to_string()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `hmac-sha256:<hex>` of `parts` (each followed by a NUL) under `key`: how the master shows
/// which password a task holds without showing it (a comment line of get-config). The key
/// never leaves the master, so the value cannot be brute-forced offline; it only tells
/// whether the stored password changed. Comparing a password by value is the master's job
/// (get-config's `dmrsComparePassword`).
pub fn keyed_fingerprint(key: &[u8], parts: &[&str]) -> String {
    use hmac::Mac;
    let mut m = match hmac::Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return "hmac-sha256:".to_string(),
    };
    for p in parts {
        m.update(p.as_bytes());
        m.update(&[0]);
    }
    format!("hmac-sha256:{}", hex(&m.finalize().into_bytes()))
}

/// Whether a password as a file spells it (DM-sealed or plain) is `plain`, by value.
pub fn same_password(spelled: &str, plain: &str) -> bool {
    decrypt_or_plaintext(spelled) == plain
}

/// The marker of the fingerprint comment in get-config's output.
pub const FINGERPRINT_COMMENT: &str = "# dm-rs password-fingerprint: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_fingerprints_depend_on_key_and_value() {
        let a = keyed_fingerprint(&[1; 32], &["t", "secret"]);
        assert!(a.starts_with("hmac-sha256:"), "{a}");
        assert_eq!(a, keyed_fingerprint(&[1; 32], &["t", "secret"]));
        assert_ne!(a, keyed_fingerprint(&[2; 32], &["t", "secret"]));
        assert_ne!(a, keyed_fingerprint(&[1; 32], &["t", "Secret"]));
        assert_ne!(a, keyed_fingerprint(&[1; 32], &["ts", "ecret"]));
    }

    #[test]
    fn sealed_and_plain_compare_by_value() {
        let sealed = encrypt("secret").unwrap();
        assert!(same_password(&sealed, "secret"));
        assert!(same_password("secret", "secret"));
        assert!(!same_password(&sealed, "other"));
        assert!(!same_password("", "secret"));
    }

    #[test]
    fn dm_test_vector_decrypts() {
        assert_eq!(decrypt("Up8156jArvIPymkVC+5LxkAT6rek").unwrap(), "1234");
        // The password used all through DM's integration tests.
        assert_eq!(
            decrypt("/Q7B9DizNLLTTfiZHv9WoEAKamfpIUs=").unwrap(),
            "123456"
        );
    }

    #[test]
    fn encrypt_uses_a_fresh_iv_and_round_trips() {
        let a = encrypt("123456").unwrap();
        let b = encrypt("123456").unwrap();
        assert_ne!(a, b);
        assert_eq!(decrypt(&a).unwrap(), "123456");
        assert_eq!(decrypt(&b).unwrap(), "123456");
    }

    #[test]
    fn fixed_iv_matches_dm_vector() {
        // The DM vector's IV re-encrypts "1234" to the very same text: same key, same mode.
        let raw = STANDARD.decode("Up8156jArvIPymkVC+5LxkAT6rek").unwrap();
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&raw[..IV_LEN]);
        assert_eq!(encrypt_with_iv("1234", iv), "Up8156jArvIPymkVC+5LxkAT6rek");
    }

    #[test]
    fn corrupt_ciphertexts_get_dm_codes() {
        assert!(matches!(
            decrypt("not base64!!"),
            Err(CipherError::Base64(_))
        ));
        assert_eq!(decrypt("YWJj"), Err(CipherError::TooShort(3)));
        let no_at = STANDARD.encode([7u8; 20]);
        assert_eq!(decrypt(&no_at), Err(CipherError::BadContent));
        for e in [CipherError::TooShort(3), CipherError::BadContent] {
            assert!(e.to_string().starts_with("[code=1104"));
        }
    }

    #[test]
    fn plaintext_is_accepted() {
        assert_eq!(decrypt_or_plaintext("secret"), "secret");
        assert_eq!(decrypt_or_plaintext(""), "");
        assert_eq!(decrypt_or_plaintext("Up8156jArvIPymkVC+5LxkAT6rek"), "1234");
    }

    #[test]
    fn env_references() {
        assert_eq!(env_reference("${DB_PASS}"), Some("DB_PASS"));
        assert_eq!(env_reference("${1X}"), None);
        assert_eq!(env_reference("$DB_PASS"), None);
        assert_eq!(env_reference("${A-B}"), None);
        let missing = resolve("${DM_RS_SURELY_UNSET_VARIABLE}").unwrap_err();
        assert_eq!(missing.0, "DM_RS_SURELY_UNSET_VARIABLE");
        assert_eq!(resolve("plain").unwrap(), "plain");
    }
}
