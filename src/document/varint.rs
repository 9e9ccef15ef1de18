//! Unsigned LEB128 varints: seven bits a byte, low bits first, the high bit set on every byte
//! but the last. The one codec behind a register's two timestamps and an Automerge chunk's
//! length.

/// The most bytes a `u64` takes: nine bytes carry 63 bits, the tenth the last one.
const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The bytes end before a byte without the high bit.
    Truncated,
    /// More than ten bytes, or a tenth byte with bits beyond 64: the value does not fit a `u64`.
    TooLong,
}

/// Appends `value` to `out` in the fewest bytes.
pub(crate) fn write(mut value: u64, out: &mut Vec<u8>) {
    loop {
        // Masked to seven bits: the cast keeps every bit.
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads one varint from the front of `bytes`: its value and the bytes after it. A value
/// padded with extra zero groups (`0x80 0x00` for 0) reads as its value, as it always has for
/// stored registers.
pub(crate) fn read(bytes: &[u8]) -> Result<(u64, &[u8]), VarintError> {
    let mut value = 0u64;
    for (at, &byte) in bytes.iter().enumerate().take(MAX_LEN) {
        let bits = u64::from(byte & 0x7f);
        if at == MAX_LEN - 1 && bits > 1 {
            return Err(VarintError::TooLong);
        }
        value |= bits << (7 * at);
        if byte & 0x80 == 0 {
            return Ok((value, &bytes[at + 1..]));
        }
    }
    if bytes.len() < MAX_LEN {
        Err(VarintError::Truncated)
    } else {
        Err(VarintError::TooLong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(value, &mut out);
        out
    }

    #[test]
    fn every_width_round_trips_and_leaves_the_rest() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1_714_558_530_123,
            u64::MAX - 1,
        ] {
            let mut bytes = encoded(value);
            bytes.extend_from_slice(b"rest");
            assert_eq!(read(&bytes), Ok((value, &b"rest"[..])), "{value}");
        }
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(300), [0xac, 0x02]);
    }

    #[test]
    fn the_longest_value_takes_ten_bytes_and_round_trips() {
        let bytes = encoded(u64::MAX);
        assert_eq!(bytes.len(), MAX_LEN);
        assert_eq!(bytes.last(), Some(&1));
        assert_eq!(read(&bytes), Ok((u64::MAX, &[][..])));
    }

    #[test]
    fn a_truncated_varint_is_refused() {
        assert_eq!(read(&[]), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        let longest = encoded(u64::MAX);
        assert_eq!(read(&longest[..9]), Err(VarintError::Truncated));
    }

    #[test]
    fn a_varint_longer_than_a_u64_is_refused() {
        // Eleven bytes: the tenth still says another follows.
        assert_eq!(read(&[0xff; 11]), Err(VarintError::TooLong));
        assert_eq!(read(&[0x80; 10]), Err(VarintError::TooLong));
        // Ten bytes whose tenth carries a bit past the 64th.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read(&over), Err(VarintError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn any_value_round_trips_in_at_most_ten_bytes(value: u64, rest: Vec<u8>) {
            let mut bytes = encoded(value);
            proptest::prop_assert!(bytes.len() <= MAX_LEN);
            bytes.extend_from_slice(&rest);
            proptest::prop_assert_eq!(read(&bytes), Ok((value, &rest[..])));
        }

        #[test]
        fn any_bytes_read_as_a_value_or_an_error_within_ten_bytes(bytes: Vec<u8>) {
            if let Ok((_, rest)) = read(&bytes) {
                proptest::prop_assert!(bytes.len() - rest.len() <= MAX_LEN);
            }
        }
    }

    #[test]
    fn a_padded_varint_reads_as_its_value() {
        assert_eq!(read(&[0x80, 0x00]), Ok((0, &[][..])));
        assert_eq!(read(&[0x81, 0x80, 0x00]), Ok((1, &[][..])));
    }
}
