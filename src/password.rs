//! DM-compatible password encryption (`dmctl encrypt` / `decrypt`) and password resolution.
//!
//! DM encrypts with AES-256 in (full-block) CFB mode and prints
//! `base64(IV(16) || '@' || ciphertext)`; a fresh random IV is drawn for every call. Config loading
//! uses [`decrypt_or_plaintext`], exactly like DM's `utils.DecryptOrPlaintext`. Beyond DM, a password
//! field may be `${ENV_NAME}` so that task files kept in git never hold a secret ([`resolve`]).
//!
//! **Keys.** DM up to v6 used one fixed, public key ([`BUILTIN_KEY`]); DM v7+ has none and
//! takes the cluster's own key from dm-master's `--secret-key-path` (a file holding 64 hex
//! digits, [`read_key_file`]). dm-rs does both: a process holds at most one *cluster key*
//! ([`set_cluster_key`]: dm-master at its start, a dm-worker from the master's push), and
//! without one everything uses the built-in key as DM v1–v6 did (DM v7+ would refuse: "secret
//! key not initialized"). [`encrypt`] seals under the cluster key when there is one. The
//! ciphertexts dm-rs makes under the built-in key carry a tag in their IV (its last 4 bytes
//! are a hash of the first 12), so a master with a cluster key still reads what a dmctl without
//! it sealed (config import, the reconciler): [`decrypt`] uses the built-in key for a tagged
//! IV and the cluster key for any other (DM v7's ciphertexts, random IVs), and the built-in
//! key when the process has no cluster key. A ciphertext has no MAC, so the wrong key yields
//! garbage rather than an error: the master therefore refuses to start with another key than
//! the one its stored passwords were sealed with (`src/master/secret.rs`).
//!
//! Nothing here ever logs or prints a password or a key; callers show [`MASK`] instead.

use std::sync::RwLock;

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// What `get-config`, plans and logs show in place of any password.
pub const MASK: &str = "******";

/// DM's hard-coded AES-256 key (`pkg/encrypt/encrypt.go`, `secretKey`, DM v1–v6).
pub const BUILTIN_KEY: [u8; 32] = [
    0xa5, 0x29, 0xb7, 0x66, 0x59, 0x97, 0xf0, 0x43, 0xa3, 0x0a, 0xc8, 0xfa, 0xdc, 0xb5, 0x1d, 0x6a,
    0xa0, 0x32, 0xc2, 0x26, 0xab, 0x5b, 0x77, 0x50, 0x53, 0x0b, 0x12, 0xb8, 0xc1, 0xa1, 0x6a, 0x48,
];
const IV_LEN: usize = 16;
/// The IV bytes that are random in a tagged IV; the rest is the tag.
const IV_RANDOM: usize = 12;

/// An AES-256 key (32 bytes).
pub type Key = [u8; 32];

/// The process's cluster key (None: DM's built-in key).
static CLUSTER_KEY: RwLock<Option<Key>> = RwLock::new(None);

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

/// Sets (Some) or clears (None: the built-in key) the process's cluster key.
pub fn set_cluster_key(key: Option<Key>) {
    *CLUSTER_KEY.write().unwrap_or_else(|p| p.into_inner()) = key;
}

/// The process's cluster key, if it has one.
pub fn cluster_key() -> Option<Key> {
    *CLUSTER_KEY.read().unwrap_or_else(|p| p.into_inner())
}

/// A key from its wire form (DM's `RegisterWorkerResponse.secretKey`): empty is none, 32
/// bytes a key; anything else is not a key.
pub fn key_from_bytes(b: &[u8]) -> Result<Option<Key>, String> {
    match b.len() {
        0 => Ok(None),
        32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(b);
            Ok(Some(k))
        }
        n => Err(format!("a secret key has 32 bytes, got {n}")),
    }
}

/// Reads dm-master's `--secret-key-path` file: 64 hex digits (surrounding white space
/// allowed), as DM v7+ does; errors are DM's 20067 with the reason (never the content).
pub fn read_key_file(path: &std::path::Path) -> Result<Key, String> {
    let bad = |why: String| {
        format!(
            "[code=20067] invalid secret key path or content: {why}; check that {} exists, is readable and holds a hex AES-256 key of 64 characters",
            path.display()
        )
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let hex = text.trim();
    if hex.len() != 64 {
        return Err(bad(
            "the secret key must be a hex AES-256 key of length 64".into()
        ));
    }
    let mut key = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok();
        key[i] = digits
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .ok_or_else(|| bad("the secret key is not hexadecimal".into()))?;
    }
    Ok(key)
}

/// The tag of a built-in-key IV over its random part.
fn builtin_tag(random: &[u8]) -> [u8; IV_LEN - IV_RANDOM] {
    let mut h = Sha256::new();
    h.update(b"dm-rs sealed with DM's built-in key\0");
    h.update(random);
    let d = h.finalize();
    let mut t = [0u8; IV_LEN - IV_RANDOM];
    t.copy_from_slice(&d[..IV_LEN - IV_RANDOM]);
    t
}

/// Whether an IV is one dm-rs drew for the built-in key.
fn is_builtin_iv(iv: &[u8; IV_LEN]) -> bool {
    iv[IV_RANDOM..] == builtin_tag(&iv[..IV_RANDOM])
}

/// Encrypts `plain` as DM does, under the cluster key if the process has one, else under the
/// built-in key (tagged IV); every call uses a new random IV, so the output differs each time.
pub fn encrypt(plain: &str) -> Result<String, CipherError> {
    encrypt_with(cluster_key().as_ref(), plain)
}

/// [`encrypt`] under `key` (None: the built-in key, tagged IV).
pub fn encrypt_with(key: Option<&Key>, plain: &str) -> Result<String, CipherError> {
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|e| CipherError::Random(e.to_string()))?;
    let key = match key {
        Some(k) => k,
        None => {
            let tag = builtin_tag(&iv[..IV_RANDOM]);
            iv[IV_RANDOM..].copy_from_slice(&tag);
            &BUILTIN_KEY
        }
    };
    Ok(seal(key, plain, iv))
}

fn seal(key: &Key, plain: &str, iv: [u8; IV_LEN]) -> String {
    let mut body = plain.as_bytes().to_vec();
    Enc::new(key.into(), &iv.into()).encrypt(&mut body);
    let mut raw = Vec::with_capacity(IV_LEN + 1 + body.len());
    raw.extend_from_slice(&iv);
    raw.push(b'@');
    raw.extend_from_slice(&body);
    STANDARD.encode(raw)
}

#[cfg(test)]
fn encrypt_with_iv(plain: &str, iv: [u8; IV_LEN]) -> String {
    seal(&BUILTIN_KEY, plain, iv)
}

/// Decrypts a DM ciphertext (`base64(IV || '@' || CFB(plain))`): under the built-in key when
/// dm-rs tagged its IV or the process has no cluster key, else under the cluster key.
pub fn decrypt(cipher: &str) -> Result<String, CipherError> {
    decrypt_with(cluster_key().as_ref(), cipher)
}

/// [`decrypt`] with `key` as the cluster key (None: the built-in key only).
pub fn decrypt_with(key: Option<&Key>, cipher: &str) -> Result<String, CipherError> {
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
    let key = match key {
        Some(k) if !is_builtin_iv(&iv) => k,
        _ => &BUILTIN_KEY,
    };
    let mut body = raw[IV_LEN + 1..].to_vec();
    Dec::new(key.into(), &iv.into()).decrypt(&mut body);
    String::from_utf8(body).map_err(|_| CipherError::Decrypt("the plaintext is not UTF-8".into()))
}

/// Whether `value` has a DM ciphertext's shape (base64 of an IV, `@` and a body), whatever
/// key made it: dmctl cannot decrypt a ciphertext of a master's secret key, but must keep it.
pub fn is_ciphertext(value: &str) -> bool {
    STANDARD
        .decode(value.trim())
        .is_ok_and(|raw| raw.len() > IV_LEN && raw[IV_LEN] == b'@')
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

    /// DM's test key file (`dm/tests/dmctl_basic/conf/key.txt`).
    const DM_TEST_KEY: Key = [0x11; 32];

    #[test]
    fn a_cluster_key_reads_dm_v7_ciphertexts_and_dm_rs_built_in_seals() {
        // DM v7 (AES-256-CFB under the key file, random IV), computed with OpenSSL.
        let v7 = "AAECAwQFBgcICQoLDA0OD0AQW9FzvGo=";
        assert_eq!(decrypt_with(Some(&DM_TEST_KEY), v7).unwrap(), "123456");
        assert_ne!(decrypt_with(None, v7).ok().as_deref(), Some("123456"));
        // Sealed under the cluster key: only the key reads it.
        let sealed = encrypt_with(Some(&DM_TEST_KEY), "s3cret").unwrap();
        assert_eq!(decrypt_with(Some(&DM_TEST_KEY), &sealed).unwrap(), "s3cret");
        assert_ne!(decrypt_with(None, &sealed).ok().as_deref(), Some("s3cret"));
        // dm-rs's built-in seals (a dmctl without the key) stay readable with a key.
        for _ in 0..20 {
            let builtin = encrypt_with(None, "s3cret").unwrap();
            assert_eq!(decrypt_with(None, &builtin).unwrap(), "s3cret");
            assert_eq!(
                decrypt_with(Some(&DM_TEST_KEY), &builtin).unwrap(),
                "s3cret"
            );
        }
        // DM v1–v6's built-in ciphertexts (random IVs) are read without a key.
        assert_eq!(
            decrypt_with(None, "Up8156jArvIPymkVC+5LxkAT6rek").unwrap(),
            "1234"
        );
        assert!(is_ciphertext(v7) && is_ciphertext(&sealed) && !is_ciphertext("123456"));
        // Same length as DM's: base64(16 + 1 + len).
        assert_eq!(encrypt_with(None, "abc").unwrap().len(), 28);
        assert_eq!(encrypt_with(Some(&DM_TEST_KEY), "abc").unwrap().len(), 28);
    }

    #[test]
    fn key_files_are_64_hex_digits() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key.txt");
        std::fs::write(&f, format!("{}\n", "11".repeat(32))).unwrap();
        assert_eq!(read_key_file(&f).unwrap(), DM_TEST_KEY);
        for bad in [
            "11".repeat(31),
            "zz".repeat(32),
            "1".repeat(65),
            String::new(),
        ] {
            std::fs::write(&f, &bad).unwrap();
            let e = read_key_file(&f).unwrap_err();
            assert!(
                e.starts_with("[code=20067] invalid secret key path or content"),
                "{e}"
            );
            assert!(
                !e.contains(&bad) || bad.is_empty(),
                "the content is never shown: {e}"
            );
        }
        let e = read_key_file(&dir.path().join("none")).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        assert_eq!(key_from_bytes(&[]).unwrap(), None);
        assert_eq!(key_from_bytes(&[0x11; 32]).unwrap(), Some(DM_TEST_KEY));
        assert!(key_from_bytes(&[1; 16]).is_err());
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
