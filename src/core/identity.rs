//! What makes an event the same event on both sides and across restarts: its 128-bit identity
//! (deduplication, stored per partition), its 64-bit fingerprint (summed into key and window
//! fingerprints) and the deterministic 1-in-32 delivery sample. Pure: BLAKE3 over fixed bytes, so
//! values stay comparable across releases and replicas.

/// Bytes per stored identity.
pub const IDENTITY_BYTES: usize = 16;
/// One event in this many is sampled for delivery delays (chosen by identity: both sides agree).
pub const DELIVERY_SAMPLE: u128 = 32;

/// The 128-bit identity of a distinct event: what `diff` deduplicates on (key, position,
/// operation) plus the content digest, so a conflicting duplicate is kept and cannot hide drift.
pub fn event_identity(key_hash: u128, position: u128, operation: u8, digest: u128) -> u128 {
    const DOMAIN: &[u8] = b"paritygate-event/1";
    // One contiguous input hashed in one call: the same BLAKE3 value as feeding the parts to a
    // `Hasher` one by one, without its per-update overhead (this runs for every record).
    let mut input = [0u8; DOMAIN.len() + IDENTITY_INPUT];
    input[..DOMAIN.len()].copy_from_slice(DOMAIN);
    input[DOMAIN.len()..].copy_from_slice(&identity_parts(key_hash, position, operation, digest));
    let mut first = [0u8; IDENTITY_BYTES];
    first.copy_from_slice(&blake3::hash(&input).as_bytes()[..IDENTITY_BYTES]);
    u128::from_be_bytes(first)
}

/// Bytes an event's identity and fingerprint are hashed from (after the identity's domain).
pub const IDENTITY_INPUT: usize = 49;

/// Key hash, position, operation and digest, big-endian, one after the other.
pub fn identity_parts(
    key_hash: u128,
    position: u128,
    operation: u8,
    digest: u128,
) -> [u8; IDENTITY_INPUT] {
    let mut out = [0u8; IDENTITY_INPUT];
    out[..16].copy_from_slice(&key_hash.to_be_bytes());
    out[16..32].copy_from_slice(&position.to_be_bytes());
    out[32] = operation;
    out[33..].copy_from_slice(&digest.to_be_bytes());
    out
}

/// Whether an event's delivery time is kept as latency evidence.
pub fn is_delivery_sample(identity: u128) -> bool {
    identity % DELIVERY_SAMPLE == 0
}

/// Identities packed for storage, 16 bytes each.
pub fn pack(ids: &[u128]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_be_bytes()).collect()
}

/// The identities in a stored row (a trailing partial identity, which `pack` never writes, is ignored).
pub fn unpack(bytes: &[u8]) -> impl Iterator<Item = u128> + '_ {
    bytes.chunks_exact(IDENTITY_BYTES).map(|c| {
        let mut b = [0u8; IDENTITY_BYTES];
        b.copy_from_slice(c);
        u128::from_be_bytes(b)
    })
}

/// 64 bits of BLAKE3 over an event's identity and digest: summed (not XORed) into key and window
/// fingerprints, so duplicates could never cancel out.
pub fn fingerprint(key_hash: u128, position: u128, operation: u8, digest: u128) -> i64 {
    let input = identity_parts(key_hash, position, operation, digest);
    let mut first = [0u8; 8];
    first.copy_from_slice(&blake3::hash(&input).as_bytes()[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_storage() {
        let ids = [0u128, 1, u128::MAX, event_identity(7, 8, 3, 9)];
        let packed = pack(&ids);
        assert_eq!(packed.len(), ids.len() * IDENTITY_BYTES);
        assert_eq!(unpack(&packed).collect::<Vec<_>>(), ids);
        // A torn trailing identity is not invented.
        assert_eq!(unpack(&packed[..20]).count(), 1);
    }

    #[test]
    fn identity_separates_every_component() {
        let base = event_identity(1, 2, 3, 4);
        assert_ne!(base, event_identity(9, 2, 3, 4));
        assert_ne!(base, event_identity(1, 9, 3, 4));
        assert_ne!(base, event_identity(1, 2, 9, 4));
        assert_ne!(base, event_identity(1, 2, 3, 9));
        assert_eq!(base, event_identity(1, 2, 3, 4));
    }

    #[test]
    fn identities_and_fingerprints_keep_the_values_already_stored() {
        // Stored identities and fingerprint sums must stay comparable across releases: the
        // one-call hashing must give what hashing the parts one by one gave before it.
        let reference = |domain: &[u8], k: u128, p: u128, o: u8, d: u128| {
            let mut h = blake3::Hasher::new();
            h.update(domain);
            h.update(&k.to_be_bytes());
            h.update(&p.to_be_bytes());
            h.update(&[o]);
            h.update(&d.to_be_bytes());
            *h.finalize().as_bytes()
        };
        for (k, p, o, d) in [
            (1, 2, 3, 4),
            (u128::MAX, 0, 0, u128::MAX),
            (7 << 90, 11, 2, 13),
        ] {
            let full = reference(b"paritygate-event/1", k, p, o, d);
            let mut id = [0u8; IDENTITY_BYTES];
            id.copy_from_slice(&full[..IDENTITY_BYTES]);
            assert_eq!(event_identity(k, p, o, d), u128::from_be_bytes(id));
            let plain = reference(b"", k, p, o, d);
            let mut fp = [0u8; 8];
            fp.copy_from_slice(&plain[..8]);
            assert_eq!(fingerprint(k, p, o, d), i64::from_be_bytes(fp));
        }
    }

    #[test]
    fn about_one_event_in_thirty_two_is_a_delivery_sample() {
        let sampled = (0..32_000u128)
            .filter(|i| is_delivery_sample(event_identity(*i, 0, 1, 0)))
            .count();
        assert!((700..1300).contains(&sampled), "{sampled}");
    }
}
