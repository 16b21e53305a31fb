//! Encryption at rest for bank and payout data.
//!
//! Rules: XChaCha20-Poly1305 with a random 192-bit nonce per value; the key
//! is derived from the instance's secret key (`PARTNERLOOP_SECRET_KEY`, or
//! the one generated and stored on first start), so keep that secret outside
//! the database to keep the data sealed from whoever reads a backup. Each
//! sealed value is bound to what it belongs to (workspace and record id) as
//! associated data: a value copied to another record does not open.
//! Sealed text: `v1:` + base64(nonce ‖ ciphertext). Plain values are never
//! logged; `Sealer`'s Debug shows nothing of the key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a sealed value does not open: the secret key changed, or the value was tampered with")]
    DoesNotOpen,
}

pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Derives the sealing key from the instance's secret key.
    pub fn from_secret(secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"partnerloop/sealing/v1\0");
        h.update(secret.as_bytes());
        let key = h.finalize();
        Self { cipher: XChaCha20Poly1305::new_from_slice(&key).expect("a SHA-256 digest is a 32-byte key") }
    }

    /// A sealer with a random key, for tests and throwaway instances.
    pub fn random() -> Self {
        Self::from_secret(&crate::auth::random_secret())
    }

    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let nonce_bytes: [u8; 24] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let sealed =
            self.cipher.encrypt(&nonce, Payload { msg: plain, aad: context.as_bytes() }).expect("encryption of a slice cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = sealed.strip_prefix(PREFIX).and_then(|b| STANDARD.decode(b).ok()).ok_or(SealError::DoesNotOpen)?;
        if raw.len() < 24 {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, body) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SealError::DoesNotOpen)?;
        self.cipher.decrypt(&XNonce::from(nonce), Payload { msg: body, aad: context.as_bytes() }).map_err(|_| SealError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let s = Sealer::from_secret("k".repeat(40).as_str());
        let sealed = s.seal("wks_1/prt_1", b"DE89370400440532013000");
        assert!(!sealed.contains("DE89"));
        assert_eq!(s.open("wks_1/prt_1", &sealed).unwrap(), b"DE89370400440532013000");
        assert_eq!(s.open("wks_1/prt_2", &sealed), Err(SealError::DoesNotOpen));
        assert_eq!(Sealer::from_secret("other").open("wks_1/prt_1", &sealed), Err(SealError::DoesNotOpen));
        assert_ne!(sealed, s.seal("wks_1/prt_1", b"DE89370400440532013000"), "a fresh nonce each time");
    }
}
