//! Read-ahead as a pure function, like hf-mount's `FetchPlan`: from (the read, the handle's
//! read-ahead state, which blocks are cached or in flight) to (what to fetch now). No I/O, so
//! it is tested with plain numbers; `handle` carries the plan out.
//!
//! - **Sequential** reads (starting within 1 MiB before to 16 MiB after the previous read's
//!   end, mountpoint-s3's tolerances for kernel readahead reordering, or at 0 for a first read)
//!   want the read plus a window. The window starts at 1 MiB, so a first 128 KiB read at 0
//!   fetches two blocks, and doubles each time it triggers a fetch, up to 32 MiB (capped at half
//!   the memory tier, so read-ahead never evicts itself before it is read).
//! - **Random** reads want just their blocks (block rounding is the "little" extra) and reset
//!   the window.
//! - Missing blocks are fetched in block-aligned parts of at most 8 MiB (the size mountpoint-s3
//!   measured as the smallest that reaches full throughput). Parts holding the read's own
//!   blocks always go; read-ahead parts only while fewer than 4 are in flight for the file, and
//!   only once at least half the window is missing, so the reader rarely issues tiny requests.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    pub block_size: u64,
    pub part_size: u64,
    pub initial_window: u64,
    pub max_window: u64,
    pub max_in_flight: usize,
    pub seek_back: u64,
    pub seek_forward: u64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            block_size: 1 << 20,
            part_size: 8 << 20,
            initial_window: 1 << 20,
            max_window: 32 << 20,
            max_in_flight: 4,
            seek_back: 1 << 20,
            seek_forward: 16 << 20,
        }
    }
}

/// A handle's read-ahead state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readahead {
    /// End of the previous read; `None` before the first.
    pub last_end: Option<u64>,
    /// The window to use for the next sequential read (0 before the first).
    pub window: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub sequential: bool,
    /// The bytes the reader is expected to want soon (block aligned, within the file).
    pub want: Range<u64>,
    /// Byte ranges to request now, the read's own blocks first; block aligned, each at most
    /// one part.
    pub fetch: Vec<Range<u64>>,
}

/// Plans the fetches for `read` in a file of `size` bytes, with `in_flight` requests running
/// and `present(block)` telling whether a block is cached or on its way.
pub fn plan_blocks(
    cfg: &PlanConfig,
    state: Readahead,
    read: Range<u64>,
    size: u64,
    in_flight: usize,
    present: impl Fn(u64) -> bool,
) -> (Readahead, Plan) {
    let bs = cfg.block_size;
    let sequential = match state.last_end {
        None => read.start == 0,
        Some(end) => {
            read.start.saturating_add(cfg.seek_back) >= end
                && read.start <= end.saturating_add(cfg.seek_forward)
        }
    };
    let window = if sequential {
        state.window.clamp(cfg.initial_window, cfg.max_window)
    } else {
        cfg.initial_window
    };
    let want_end = if sequential {
        read.end.saturating_add(window)
    } else {
        read.end
    };
    let first = read.start / bs;
    let end_block = if read.start >= size {
        first
    } else {
        want_end.min(size).div_ceil(bs)
    };
    let demand_end = read.end.min(size).div_ceil(bs).clamp(first, end_block);
    let want = (first * bs)..(end_block * bs).min(size).max(first * bs);

    let missing: Vec<u64> = (first..end_block).filter(|&b| !present(b)).collect();
    let demand_missing = missing.iter().any(|&b| b < demand_end);
    let ahead_missing = missing.iter().filter(|&&b| b >= demand_end).count() as u64 * bs;
    let prefetch = demand_missing || (sequential && ahead_missing * 2 >= window);

    let part_blocks = (cfg.part_size / bs).max(1);
    let mut fetch = Vec::new();
    let mut free = cfg.max_in_flight.saturating_sub(in_flight);
    let mut grew = false;
    for run in runs(&missing) {
        let mut start = run.start;
        while start < run.end {
            let end = (start + part_blocks).min(run.end);
            let is_demand = start < demand_end;
            if is_demand || (prefetch && free > 0) {
                fetch.push(start * bs..(end * bs).min(size));
                free = free.saturating_sub(1);
                grew |= end > demand_end;
            }
            start = end;
        }
    }
    let next_window = if sequential && grew {
        (window * 2).min(cfg.max_window)
    } else {
        window
    };
    (
        Readahead {
            last_end: Some(read.end),
            window: next_window,
        },
        Plan {
            sequential,
            want,
            fetch,
        },
    )
}

/// Runs of consecutive block indices in a sorted list.
fn runs(blocks: &[u64]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for &b in blocks {
        match out.last_mut() {
            Some(r) if r.end == b => r.end = b + 1,
            _ => out.push(b..b + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;

    /// A model of the file: which blocks are present, and the requests issued so far.
    struct Model {
        cfg: PlanConfig,
        state: Readahead,
        present: BTreeSet<u64>,
        size: u64,
        log: Vec<Range<u64>>,
    }

    impl Model {
        fn new(size: u64) -> Self {
            Model {
                cfg: PlanConfig::default(),
                state: Readahead::default(),
                present: BTreeSet::new(),
                size,
                log: Vec::new(),
            }
        }

        /// Plans a read with nothing in flight, and marks what it fetches as present.
        fn read(&mut self, start: u64, len: u64) -> Plan {
            let present = self.present.clone();
            let (state, plan) = plan_blocks(
                &self.cfg,
                self.state,
                start..start + len,
                self.size,
                0,
                |b| present.contains(&b),
            );
            self.state = state;
            for r in &plan.fetch {
                self.present.extend(r.start / MIB..r.end.div_ceil(MIB));
                self.log.push(r.clone());
            }
            plan
        }
    }

    #[test]
    fn a_first_read_at_zero_fetches_two_blocks_and_doubles_the_window() {
        let mut m = Model::new(100 * MIB);
        let p = m.read(0, 128 * KIB);
        assert!(p.sequential);
        assert_eq!(p.fetch, vec![0..2 * MIB]);
        assert_eq!(m.state.window, 2 * MIB);
    }

    #[test]
    fn sequential_reads_grow_the_requests_up_to_the_cap() {
        let mut m = Model::new(1024 * MIB);
        let mut offset = 0;
        while offset < 200 * MIB {
            m.read(offset, 128 * KIB);
            offset += 128 * KIB;
        }
        let lens: Vec<u64> = m.log.iter().map(|r| r.end - r.start).collect();
        assert_eq!(&lens[..4], &[2 * MIB, MIB, 2 * MIB, 4 * MIB]);
        assert!(
            lens.iter().all(|&l| l <= 8 * MIB),
            "parts are at most 8 MiB"
        );
        assert_eq!(m.state.window, 32 * MIB);
        // Everything the reader reached was requested exactly once, in order, with no gaps.
        for pair in m.log.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        // Never more than the window ahead of the reader.
        assert!(m.log.last().unwrap().end <= offset + 32 * MIB + MIB);
    }

    #[test]
    fn a_random_read_fetches_just_its_blocks_and_resets_the_window() {
        let mut m = Model::new(1024 * MIB);
        for i in 0..20 {
            m.read(i * 128 * KIB, 128 * KIB);
        }
        assert!(m.state.window > MIB);
        let p = m.read(500 * MIB + 10, 4 * KIB);
        assert!(!p.sequential);
        assert_eq!(p.fetch, vec![500 * MIB..501 * MIB]);
        assert_eq!(m.state.window, MIB);
        // A read straddling two blocks fetches both, in one request.
        let p = m.read(700 * MIB - 10, 20);
        assert_eq!(p.fetch, vec![699 * MIB..701 * MIB]);
    }

    #[test]
    fn reading_on_after_a_random_read_becomes_sequential() {
        let mut m = Model::new(1024 * MIB);
        m.read(300 * MIB, 128 * KIB);
        let p = m.read(300 * MIB + 128 * KIB, 128 * KIB);
        assert!(p.sequential);
        assert_eq!(p.fetch, vec![301 * MIB..302 * MIB]);
    }

    #[test]
    fn present_blocks_are_not_fetched_again() {
        let mut m = Model::new(100 * MIB);
        m.present.extend([0, 1, 3]);
        let p = m.read(0, 4 * MIB);
        assert_eq!(p.fetch[0], 2 * MIB..3 * MIB);
        assert!(p
            .fetch
            .iter()
            .all(|r| r.start >= 4 * MIB || r == &(2 * MIB..3 * MIB)));
        // All present: nothing to do.
        let mut m = Model::new(4 * MIB);
        m.present.extend(0..4);
        assert!(m.read(0, 4 * MIB).fetch.is_empty());
    }

    #[test]
    fn read_ahead_waits_until_half_the_window_is_missing() {
        let mut m = Model::new(1024 * MIB);
        m.state = Readahead {
            last_end: Some(10 * MIB),
            window: 16 * MIB,
        };
        // 10 MiB of the 16 MiB window already present: no tiny top-up.
        m.present.extend(10..20);
        let p = m.read(10 * MIB, 128 * KIB);
        assert!(p.fetch.is_empty());
        assert_eq!(p.want, 10 * MIB..27 * MIB);
        // Only 4 MiB present: fetch the rest.
        m.present = (10..14).collect();
        let p = m.read(10 * MIB + 128 * KIB, 128 * KIB);
        assert_eq!(p.fetch.first().unwrap().start, 14 * MIB);
    }

    #[test]
    fn in_flight_limit_holds_back_read_ahead_but_never_the_read() {
        let cfg = PlanConfig::default();
        let state = Readahead {
            last_end: Some(0),
            window: 32 * MIB,
        };
        let (_, p) = plan_blocks(&cfg, state, 0..128 * KIB, 1024 * MIB, 4, |_| false);
        assert_eq!(p.fetch, vec![0..8 * MIB], "the read's own part goes");
        let (_, p) = plan_blocks(&cfg, state, 0..128 * KIB, 1024 * MIB, 1, |_| false);
        assert_eq!(
            p.fetch,
            vec![0..8 * MIB, 8 * MIB..16 * MIB, 16 * MIB..24 * MIB]
        );
        let (_, p) = plan_blocks(&cfg, state, 0..128 * KIB, 1024 * MIB, 0, |_| false);
        assert_eq!(p.fetch.len(), 4);
        assert_eq!(p.fetch.last().unwrap().end, 32 * MIB);
    }

    #[test]
    fn plans_stop_at_the_end_of_the_file() {
        let mut m = Model::new(2 * MIB + 100);
        let p = m.read(0, 128 * KIB);
        assert_eq!(p.fetch, vec![0..2 * MIB]);
        let p = m.read(128 * KIB, 128 * KIB);
        assert_eq!(p.fetch, vec![2 * MIB..2 * MIB + 100]);
        assert_eq!(p.want.end, 2 * MIB + 100);
        // A read at or past the end wants and fetches nothing.
        let p = m.read(2 * MIB + 100, 128 * KIB);
        assert!(p.fetch.is_empty());
        assert!(p.want.is_empty());
    }
}
