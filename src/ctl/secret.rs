//! `dmctl encrypt` (and the v1 flag `-encrypt`): with a master address the master encrypts
//! (DM v7+'s Encrypt RPC), so the ciphertext is made with the cluster's key
//! (`dm-master --secret-key-path`); without one, dmctl encrypts locally with DM's built-in key
//! (DM v1–v6, the seed's `dmctl -encrypt`). `decrypt` is always local and reads only DM's
//! built-in-key ciphertexts: no master ever decrypts for a client.

use super::master::{FAIL, OK, Target};
use crate::{password, pb};

/// Encrypts `plain` through the master when `t` names one, else locally; prints the
/// ciphertext (one line) or the error; the exit code.
pub fn encrypt(plain: &str, t: &Target) -> u8 {
    if t.addr.is_none() {
        return print_cipher_result(password::encrypt(plain));
    }
    let req = pb::EncryptRequest {
        plaintext: plain.to_string(),
    };
    match t.call(|mut c| async move { c.encrypt(req).await }) {
        Ok(r) if r.result => {
            println!("{}", r.ciphertext);
            OK
        }
        Ok(r) => {
            eprintln!("Error: {}", r.msg);
            FAIL
        }
        Err(code) => code,
    }
}

/// Decrypts `cipher` locally (DM's built-in key).
pub fn decrypt(cipher: &str) -> u8 {
    print_cipher_result(password::decrypt(cipher))
}

/// Prints an encrypt/decrypt result: the text on stdout, or the DM-coded error on stderr.
fn print_cipher_result(r: Result<String, password::CipherError>) -> u8 {
    match r {
        Ok(text) => {
            println!("{text}");
            OK
        }
        Err(e) => {
            eprintln!("{e}");
            FAIL
        }
    }
}
