//! Cross-file read-ahead as a pure function: a folder read file after file (a DICOM series
//! that `dcm2niix`, a shell loop or a glob reads in name order) should not cost a round trip
//! per file. From (the folder's state, the file just opened, the sizes of the folder's files in
//! name order) to (which files to start downloading now). No I/O; `prefetch` carries it out.
//!
//! - A file opened **in order** is one after the previous one opened in the folder, at most
//!   `max_skip` files on (a tool may pass over a file it does not want), when that previous
//!   one was read whole. Opening the same file again (a header read, then the data) changes
//!   nothing. A reader of headers (nibabel, pybids, bids-validator reading the first 352 bytes
//!   of each NIfTI file) so never has whole files fetched ahead of it.
//! - After `min_streak` opens in order (default 1: the second file of a run), the files after
//!   the one opened are fetched ahead: as many as fit in `max_files` and `max_bytes` counted
//!   from the reader's position, so what was fetched and not yet read stays bounded and the
//!   window slides as the reader moves on. A file is planned once per run.
//! - Any other open (a jump back, or far ahead) ends the run: nothing more is fetched until
//!   the reader goes in order again. A single `cat` fetches nothing ahead.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesConfig {
    /// Files fetched ahead of the reader at most.
    pub max_files: usize,
    /// Bytes fetched ahead of the reader at most. A file larger than this is not fetched
    /// ahead: its own read-ahead hides the latency, which is small next to its transfer.
    pub max_bytes: u64,
    /// Opens in order before fetching ahead starts.
    pub min_streak: usize,
    /// Files a reader in order may pass over.
    pub max_skip: usize,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        SeriesConfig {
            max_files: 64,
            max_bytes: 32 << 20,
            min_streak: 1,
            max_skip: 2,
        }
    }
}

/// One folder's read-ahead state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesState {
    /// The index (in name order) of the file opened last.
    pub last: Option<usize>,
    /// Opens in order in a row.
    pub streak: usize,
    /// Files before this index were planned in this run.
    pub planned_to: usize,
}

/// What to do after an open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesPlan {
    /// The open broke the run: stop fetching what the old run planned.
    pub broke: bool,
    /// Indices of the files to start fetching, in order.
    pub fetch: Range<usize>,
}

/// Plans after the file at index `opened` of the folder's `files` (in name order; `size(i)`
/// gives the size of the file at index `i`) was opened; `last_read_whole` says whether the
/// file opened before it was read (or fetched) whole.
pub fn plan_files(
    cfg: &SeriesConfig,
    state: SeriesState,
    opened: usize,
    files: usize,
    last_read_whole: bool,
    size: impl Fn(usize) -> u64,
) -> (SeriesState, SeriesPlan) {
    let nothing = |broke| SeriesPlan {
        broke,
        fetch: opened + 1..opened + 1,
    };
    if state.last == Some(opened) {
        return (state, nothing(false));
    }
    let in_order = last_read_whole
        && state
            .last
            .is_some_and(|last| opened > last && opened <= last + 1 + cfg.max_skip);
    let mut next = SeriesState {
        last: Some(opened),
        streak: if in_order { state.streak + 1 } else { 0 },
        planned_to: if in_order {
            state.planned_to.max(opened + 1)
        } else {
            opened + 1
        },
    };
    let broke = !in_order && state.planned_to > state.last.map_or(0, |l| l + 1);
    if next.streak < cfg.min_streak.max(1) {
        return (next, nothing(broke));
    }
    // The window: from the reader's next file, bounded in files and bytes.
    let mut end = opened + 1;
    let mut bytes = 0u64;
    while end < files && end - opened <= cfg.max_files {
        let size = size(end);
        if bytes + size > cfg.max_bytes {
            break;
        }
        bytes += size;
        end += 1;
    }
    let start = next.planned_to.min(end);
    next.planned_to = next.planned_to.max(end);
    (
        next,
        SeriesPlan {
            broke,
            fetch: start..end,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;

    /// Opens `order` one after the other; the files each open asks for.
    fn run(cfg: &SeriesConfig, sizes: &[u64], order: &[usize]) -> (SeriesState, Vec<SeriesPlan>) {
        let mut state = SeriesState::default();
        let mut plans = Vec::new();
        for &i in order {
            let (s, p) = plan_files(cfg, state, i, sizes.len(), true, |i| sizes[i]);
            state = s;
            plans.push(p);
        }
        (state, plans)
    }

    fn cfg(max_files: usize, max_bytes: u64) -> SeriesConfig {
        SeriesConfig {
            max_files,
            max_bytes,
            ..SeriesConfig::default()
        }
    }

    #[test]
    fn a_reader_of_headers_has_nothing_fetched_ahead() {
        // Each file opened after one not read whole: no run ever starts.
        let sizes = [8 << 20; 10];
        let mut state = SeriesState::default();
        for i in 0..10 {
            let (s, p) = plan_files(&cfg(64, 32 << 20), state, i, 10, false, |i| sizes[i]);
            assert!(p.fetch.is_empty(), "file {i}: {p:?}");
            state = s;
        }
        // The same folder read whole file after file: the second open fetches ahead.
        let (state, _) = plan_files(
            &cfg(64, 32 << 20),
            SeriesState::default(),
            0,
            10,
            true,
            |i| sizes[i],
        );
        let (_, p) = plan_files(&cfg(64, 32 << 20), state, 1, 10, true, |i| sizes[i]);
        assert_eq!(p.fetch, 2..6);
    }

    #[test]
    fn a_single_open_fetches_nothing_ahead() {
        let sizes = vec![512 * KIB; 200];
        let (_, plans) = run(&SeriesConfig::default(), &sizes, &[0]);
        assert!(plans[0].fetch.is_empty());
        let (_, plans) = run(&SeriesConfig::default(), &sizes, &[7]);
        assert!(plans[0].fetch.is_empty());
    }

    #[test]
    fn reading_in_order_fetches_a_window_that_slides_with_the_reader() {
        let sizes = vec![512 * KIB; 200];
        let c = cfg(8, 32 << 20);
        let (state, plans) = run(&c, &sizes, &[0, 1, 2, 3]);
        assert!(plans[0].fetch.is_empty());
        assert_eq!(
            plans[1].fetch,
            2..10,
            "the second file in order opens the window"
        );
        assert_eq!(plans[2].fetch, 10..11, "then one more per file read");
        assert_eq!(plans[3].fetch, 11..12);
        assert_eq!(state.planned_to, 12);
        // Every file is planned exactly once over the whole series, and none past its end.
        let order: Vec<usize> = (0..200).collect();
        let (_, plans) = run(&c, &sizes, &order);
        let planned: Vec<usize> = plans.iter().flat_map(|p| p.fetch.clone()).collect();
        assert_eq!(planned, (2..200).collect::<Vec<_>>());
    }

    #[test]
    fn the_window_is_bounded_in_bytes_and_big_files_are_left_to_their_own_read_ahead() {
        let c = cfg(64, 2 << 20);
        let sizes = vec![512 * KIB; 100];
        let (_, plans) = run(&c, &sizes, &[0, 1]);
        assert_eq!(plans[1].fetch, 2..6, "4 files of 512 KiB in 2 MiB");
        let big = vec![10 << 20; 10];
        let (_, plans) = run(&c, &big, &[0, 1, 2]);
        assert!(plans.iter().all(|p| p.fetch.is_empty()));
    }

    #[test]
    fn reopening_a_file_or_skipping_a_few_keeps_the_run() {
        let sizes = vec![KIB; 100];
        let c = cfg(4, 1 << 30);
        let (state, plans) = run(&c, &sizes, &[0, 0, 1, 1, 3]);
        assert_eq!(state.streak, 2);
        assert_eq!(plans[2].fetch, 2..6);
        assert!(plans[3].fetch.is_empty() && !plans[3].broke);
        assert_eq!(plans[4].fetch, 6..8);
    }

    #[test]
    fn a_jump_ends_the_run_until_the_reader_goes_in_order_again() {
        let sizes = vec![KIB; 100];
        let c = cfg(4, 1 << 30);
        let (state, plans) = run(&c, &sizes, &[0, 1, 50]);
        assert!(
            plans[2].broke,
            "the files planned ahead of 1 are no longer wanted"
        );
        assert!(plans[2].fetch.is_empty());
        assert_eq!(state.streak, 0);
        let (_, plans) = run(&c, &sizes, &[0, 1, 50, 51]);
        assert_eq!(plans[3].fetch, 52..56);
        // Going back to a file before is no run either.
        let (_, plans) = run(&c, &sizes, &[5, 4, 3]);
        assert!(plans.iter().all(|p| p.fetch.is_empty()));
        // A jump with nothing planned has nothing to stop.
        let (_, plans) = run(&c, &sizes, &[5, 40]);
        assert!(!plans[1].broke);
    }

    #[test]
    fn the_last_files_plan_nothing_past_the_end() {
        let sizes = vec![KIB; 3];
        let (_, plans) = run(&SeriesConfig::default(), &sizes, &[0, 1, 2]);
        assert_eq!(plans[1].fetch, 2..3);
        assert!(plans[2].fetch.is_empty());
    }
}
