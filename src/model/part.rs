//! [`Part`]: one of several disjoint parts of a fleet, chosen by a hash of each card's key, so a
//! very large fleet can be read, planned and applied a part at a time with bounded memory. Owns
//! only the choice of part: reading a part of the declarations is `decl::load_part`, taking a
//! part of state is `Snapshot::part`.
//!
//! Every relation the declarations have between cards is by key (a duplicate, a top-up and its
//! card), and so is every record state keeps of a card (its orders, top-ups, removal), so each
//! part holds all of a key's declarations and records and can be planned on its own. Moves and
//! people relate keys and users across parts: they are not split.

/// Part `index` of `count` (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Part {
    index: u32,
    count: u32,
}

impl Part {
    /// All of the declarations: the one part of one.
    pub const WHOLE: Part = Part { index: 0, count: 1 };

    /// None of them: every entry is still read and checked, and counted, but no card is kept.
    /// (No key hashes to an index equal to the count.)
    pub const NONE: Part = Part {
        index: u32::MAX,
        count: u32::MAX,
    };

    /// The `count` parts (at least one), in order.
    pub fn all(count: u32) -> impl Iterator<Item = Part> {
        let count = count.max(1);
        (0..count).map(move |index| Part { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    pub fn is_whole(self) -> bool {
        self.count <= 1
    }

    /// Whether the card keyed `key` belongs to this part.
    pub fn holds(self, key: &str) -> bool {
        self.is_whole() || Self::of(key, self.count) == self.index
    }

    /// The part of `count` that holds the card keyed `key`.
    pub fn holding(key: &str, count: u32) -> Part {
        let count = count.max(1);
        Part {
            index: Self::of(key, count),
            count,
        }
    }

    /// The part of `count` that `key` falls in. FNV-1a: stable across runs, builds and machines
    /// (a std hasher is seeded per process), and cheap for short keys.
    fn of(key: &str, count: u32) -> u32 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % u64::from(count)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_exactly_one_part() {
        for count in [1, 2, 7, 20] {
            for i in 0..500 {
                let key = format!("card-{i:05}");
                let holding: Vec<Part> = Part::all(count).filter(|p| p.holds(&key)).collect();
                assert_eq!(
                    holding,
                    [Part::holding(&key, count)],
                    "{key} in {count} parts"
                );
            }
        }
    }

    #[test]
    fn no_key_is_in_no_part() {
        for i in 0..10_000 {
            assert!(!Part::NONE.holds(&format!("k{i}")));
        }
    }

    #[test]
    fn parts_are_balanced_and_fixed() {
        let parts: Vec<Part> = Part::all(4).collect();
        let mut sizes = [0usize; 4];
        for i in 0..40_000 {
            let key = format!("fleet-{i:06}");
            sizes[parts.iter().position(|p| p.holds(&key)).unwrap()] += 1;
        }
        for s in sizes {
            assert!((9_000..11_000).contains(&s), "{sizes:?}");
        }
        // FNV-1a's published value for "a": the split does not depend on the process.
        assert_eq!(
            Part::of("a", u32::MAX),
            (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32
        );
    }
}
