//! The deterministic structured embedder: turns `key: value` lines into a
//! vector without any model, so similar-case search works out of the box
//! and gives the same answer on every machine.
//!
//! Each line `key: value` contributes to the vector:
//! * a **categorical** value (anything that is not a number) adds weight
//!   [`CATEGORICAL_WEIGHT`] to two hashed, signed positions of (key, value):
//!   records that share a value share those positions, so equal type, region
//!   or resource type dominate the cosine similarity;
//! * a **numeric** value is placed on a log scale (`log10(1 + |v|)`, so 100
//!   and 120 are close and 100 and 10 000 are not) and encoded as an angle
//!   in two positions hashed from the key alone, with weight
//!   [`NUMERIC_WEIGHT`]: close magnitudes give close vectors.
//!
//! A key may carry a weight, `key*3: value`, multiplying its contribution
//! (the cost plugin weights recommendation type and region above the rest,
//! so cases of the same type and region come first). Lines without `:` are
//! taken as free-text tokens (each word categorical under the key `text`). The vector is L2-normalised. Changing anything
//! here changes [`StructuredEmbedder::ID`], which makes the index rebuild.

use learnloop_plugin_api::Embedder;
use learnloop_plugin_api::PluginError;
use sha2::{Digest, Sha256};

/// Weight of one categorical `key: value` pair.
pub const CATEGORICAL_WEIGHT: f32 = 1.0;
/// Weight of one numeric `key: value` pair.
pub const NUMERIC_WEIGHT: f32 = 0.6;
/// The log10 magnitude that maps to a quarter turn (values up to 10^6).
const LOG_RANGE: f32 = 6.0;

/// The default embedder: no model, deterministic, `DIMS` dimensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct StructuredEmbedder;

impl StructuredEmbedder {
    /// Identifies the embedding function; stored with the index so that a
    /// change of embedder (or of this function) is detected.
    pub const ID: &'static str = "structured-v2";
    /// Vector length.
    pub const DIMS: usize = 64;

    /// The vector of one text.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; Self::DIMS];
        for line in text.lines().flat_map(|l| l.split(';')) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once(':') {
                Some((k, val)) => {
                    let (key, weight) = match k.trim().rsplit_once('*') {
                        Some((name, w)) => match w.trim().parse::<f32>() {
                            Ok(w) if w.is_finite() && w >= 0.0 => (name.trim(), w),
                            _ => (k.trim(), 1.0),
                        },
                        None => (k.trim(), 1.0),
                    };
                    add_pair(&mut v, key, val.trim(), weight)
                }
                None => {
                    for word in line.split_whitespace() {
                        add_categorical(&mut v, "text", &word.to_lowercase(), 1.0);
                    }
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        } else {
            // An empty text still gets a valid (unit) vector.
            v[0] = 1.0;
        }
        v
    }
}

fn hash(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

fn slot(bytes: &[u8]) -> (usize, f32) {
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let sign = if bytes[4] & 1 == 0 { 1.0 } else { -1.0 };
    ((n as usize) % StructuredEmbedder::DIMS, sign)
}

fn add_categorical(v: &mut [f32], key: &str, value: &str, weight: f32) {
    let h = hash(&["cat", key, value]);
    let w = weight * CATEGORICAL_WEIGHT / std::f32::consts::SQRT_2;
    for chunk in [&h[0..5], &h[5..10]] {
        let (i, s) = slot(chunk);
        v[i] += s * w;
    }
}

fn add_pair(v: &mut [f32], key: &str, value: &str, weight: f32) {
    match value.parse::<f64>() {
        Ok(x) if x.is_finite() => {
            let h = hash(&["num", key]);
            let (i, si) = slot(&h[0..5]);
            let (mut j, sj) = slot(&h[5..10]);
            if j == i {
                j = (i + 1) % StructuredEmbedder::DIMS;
            }
            let mag = ((1.0 + x.abs()).log10() as f32 / LOG_RANGE).clamp(0.0, 1.0);
            let angle = mag * std::f32::consts::FRAC_PI_2;
            v[i] += si * weight * NUMERIC_WEIGHT * angle.cos();
            v[j] += sj * weight * NUMERIC_WEIGHT * angle.sin();
        }
        _ => add_categorical(v, key, &value.to_lowercase(), weight),
    }
}

impl Embedder for StructuredEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_and_unit_length() {
        let e = StructuredEmbedder;
        let a = e.embed_one("type: rightsizing\nregion: us-east-1\nsavings: 120");
        assert_eq!(a, e.embed_one("type: rightsizing\nregion: us-east-1\nsavings: 120"));
        assert_eq!(a.len(), StructuredEmbedder::DIMS);
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        assert!((cos(&e.embed_one(""), &e.embed_one("")) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn shared_categories_and_close_magnitudes_are_closer() {
        let e = StructuredEmbedder;
        let q = e.embed_one("type: rightsizing\nresource: ec2\nregion: us-east-1\nsavings: 100");
        let same = e.embed_one("type: rightsizing\nresource: ec2\nregion: us-east-1\nsavings: 130");
        let far_savings = e.embed_one("type: rightsizing\nresource: ec2\nregion: us-east-1\nsavings: 90000");
        let other_region = e.embed_one("type: rightsizing\nresource: ec2\nregion: eu-west-1\nsavings: 100");
        let other_type = e.embed_one("type: spot\nresource: ec2\nregion: us-east-1\nsavings: 100");
        assert!(cos(&q, &same) > cos(&q, &far_savings));
        assert!(cos(&q, &far_savings) > cos(&q, &other_region));
        assert!(cos(&q, &same) > cos(&q, &other_type));
    }

    #[test]
    fn weighted_keys_dominate() {
        let e = StructuredEmbedder;
        let q = e.embed_one("type*3: spot\nregion*2: eu\nresource: ec2\nrisk: low");
        let same_type_region = e.embed_one("type*3: spot\nregion*2: eu\nresource: rds\nrisk: high");
        let rest_same = e.embed_one("type*3: rightsizing\nregion*2: eu\nresource: ec2\nrisk: low");
        assert!(cos(&q, &same_type_region) > cos(&q, &rest_same));
        // `*` with a weight that is not a number is part of the key.
        assert_eq!(e.embed_one("a*b: x"), e.embed_one("a*b: x"));
        assert_ne!(e.embed_one("a*b: x"), e.embed_one("a: x"));
    }
}
