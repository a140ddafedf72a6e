//! RS256 tokens minted from API keys (`POST /api/auth/token`) and their public JWKS.
//!
//! The signing key is made once per deployment, sealed with the master key and kept in the
//! database, so every node signs and verifies with the same key. It is created lazily on first
//! use: a 2048-bit RSA key takes a noticeable moment to generate and most starts never need it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use canopy_core::{Error, KeyId, OrgId, ProjectId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::Sealer;

pub const ISSUER: &str = "canopy";
const SETTING: &str = "jwt_signing_key_v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The key the token was minted from (`key_…`).
    pub sub: String,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prj: Option<String>,
    pub scopes: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims {
    pub fn key_id(&self) -> Option<KeyId> {
        KeyId::parse(&self.sub)
    }
}

pub struct Signer {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    /// Loads the deployment's signing key, creating it if this is the first use anywhere.
    pub async fn load_or_create(
        store: &canopy_store::Store,
        sealer: &Sealer,
    ) -> Result<Signer, Error> {
        let sealed = match canopy_store::settings::get_setting(store, SETTING).await? {
            Some(s) => s,
            None => {
                let der = tokio::task::spawn_blocking(|| {
                    let key = RsaPrivateKey::new(&mut aes_gcm::aead::OsRng, 2048)
                        .map_err(Error::internal)?;
                    key.to_pkcs1_der()
                        .map(|d| d.as_bytes().to_vec())
                        .map_err(Error::internal)
                })
                .await
                .map_err(Error::internal)??;
                let sealed = sealer.seal(&der)?;
                canopy_store::settings::put_setting_once(
                    store,
                    SETTING,
                    &sealed,
                    canopy_core::time::now_ms(),
                )
                .await?
            }
        };
        let der = sealer.open(&sealed)?;
        Signer::from_pkcs1_der(&der)
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Signer, Error> {
        let key = RsaPrivateKey::from_pkcs1_der(der).map_err(Error::internal)?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let kid = {
            let d = Sha256::digest(n.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..12])
        };
        Ok(Signer {
            encoding: EncodingKey::from_rsa_der(der),
            decoding: DecodingKey::from_rsa_components(&n, &e).map_err(Error::internal)?,
            kid,
            n,
            e,
        })
    }

    pub fn mint(
        &self,
        key: KeyId,
        org: OrgId,
        project: Option<ProjectId>,
        scopes: Vec<String>,
        ttl_secs: i64,
    ) -> Result<String, Error> {
        let now = canopy_core::time::now_ms() / 1000;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: key.to_string(),
            org: org.to_string(),
            prj: project.map(|p| p.to_string()),
            scopes,
            iat: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Error::internal)
    }

    /// Checks signature, issuer and expiry (no leeway: an expired token is expired).
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::unauthorized("The token has expired. Exchange your key for a new one at POST /api/auth/token."),
                _ => Error::unauthorized("The token is not valid."),
            })
    }

    /// The public key set for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e}]
        })
    }
}

/// Whether a bearer credential looks like a JWT rather than an API key.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.bytes().filter(|b| *b == b'.').count() == 2
}
