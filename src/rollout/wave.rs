//! A device's wave: a stable hash of its serial number.
//!
//! The serial is lower-cased and stripped of `-` and `:` (`00-90-33-AA-BB-CC` and
//! `009033aabbcc` are the same device); its SHA-256 is taken, the first 8 bytes read as a
//! big-endian number, and that number modulo 100 is the device's **percentile** (0..=99).
//! The device is in the first wave `i` whose cumulative percentage `waves[i]` is greater than
//! its percentile. The same device has the same percentile in every rollout, so the first
//! waves always hold the same devices (the canaries). Check one by hand with
//! `printf %s 009033aabbcc | sha256sum`: the first 16 hex digits modulo 100.

use super::Rollout;
use sha2::{Digest, Sha256};

/// The serial as hashed: lower case, without `-` and `:`.
pub fn normalize(sn: &str) -> String {
    sn.trim()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The device's percentile, 0..=99.
pub fn percentile(sn: &str) -> u8 {
    let digest = Sha256::digest(normalize(sn).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// The device's wave (0-based) in this rollout; `None` when it is beyond the last wave.
pub fn wave_of(r: &Rollout, sn: &str) -> Option<usize> {
    let p = percentile(sn);
    r.waves.iter().position(|w| p < *w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_documented_hash() {
        // printf %s 009033aabbcc | sha256sum → 4d6520f720ac0749… (checked with coreutils)
        let hex = "4d6520f720ac0749";
        let expected = (u64::from_str_radix(hex, 16).unwrap() % 100) as u8;
        assert_eq!(percentile("009033aabbcc"), expected);
        assert_eq!(percentile("00-90-33-AA-BB-CC"), expected);
    }

    #[test]
    fn percentiles_spread_evenly() {
        let mut buckets = [0usize; 10];
        for i in 0..10_000u32 {
            buckets[usize::from(percentile(&format!("009033{i:06x}")) / 10)] += 1;
        }
        assert!(
            buckets.iter().all(|b| (800..1200).contains(b)),
            "{buckets:?}"
        );
    }
}
