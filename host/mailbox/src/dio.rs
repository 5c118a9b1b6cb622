//! Whether an `O_DIRECT` write into a directory really goes around the
//! page cache, which the one-commit APPEND (`save`) relies on, and with
//! what alignment.
//!
//! A file system may accept `O_DIRECT` and buffer the write anyway: ext4
//! does so, silently, for files under data journaling (`data=journal` or
//! `chattr +j`), encryption without inline crypto, verity and inline data.
//! Such a write is only in the page cache when it returns, and with
//! delayed allocation a commit can publish the name before the blocks.
//! Since Linux 6.1 `statx` answers the question per file
//! (`STATX_DIOALIGN`): `stx_dio_mem_align` and `stx_dio_offset_align`,
//! both zero when direct I/O is not supported on that file, ext4's case
//! above. A direct write is used only when the file system says it
//! supports one with alignments our buffer meets ([`alignment`]).
//!
//! Without the answer (a kernel before 6.1, or a file system that does
//! not fill the field) the classic fsync path is taken: ext4 and XFS, the
//! only file systems `save` would write directly on, fill it since 6.1,
//! so a missing field means an older kernel, where ext4's silent fallback
//! above exists too and nothing else tells it apart. Trusting `O_DIRECT`
//! there, as was done before this check, is not known to be safe.
//!
//! The answer is asked of the first file made in a directory, through its
//! descriptor, and kept per directory (device and inode): what decides it
//! besides the file system (data journaling, encryption) is inherited
//! from the directory a file is made in. A directory whose attributes
//! change afterwards (`chattr +j` on a live folder, which needs
//! `CAP_SYS_RESOURCE`) keeps its first answer until the process restarts.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use rustix::fs::{AtFlags, StatxFlags, statx};

/// What `statx` reports of direct I/O on one file (`STATX_DIOALIGN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DioAlign {
    /// `stx_dio_mem_align`: the alignment the buffer in memory needs, in
    /// bytes; zero if direct I/O is not supported on the file.
    pub(crate) mem: u32,
    /// `stx_dio_offset_align`: the alignment file offsets and lengths
    /// need, in bytes; zero if direct I/O is not supported on the file.
    pub(crate) offset: u32,
}

/// The alignment of our direct writes at the least: the page size, a
/// multiple of every logical block size and DMA alignment seen in practice.
pub(crate) const ALIGN: usize = 4096;

/// The largest alignment a direct write will meet (the largest block size
/// Linux file systems use, on 64 KiB pages): every message is padded to a
/// whole number of them in memory, so beyond it the fsync path is cheaper.
const MAX_ALIGN: u32 = 64 * 1024;

/// How many directories are remembered: one per mailbox folder written to;
/// past it the memory is dropped and asked again, so that a server with
/// many mailboxes does not grow the table without bound.
const REMEMBERED: usize = 4096;

/// The alignment (bytes, a power of two, at least [`ALIGN`]) a direct write
/// must use given what statx `reported`, or `None` where a direct write
/// would not be what the one-commit path needs: statx did not answer
/// (this module's text), the file system said no direct I/O (a zero), or
/// the alignments are not powers of two or exceed [`MAX_ALIGN`].
pub(crate) fn alignment(reported: Option<DioAlign>) -> Option<usize> {
    let DioAlign { mem, offset } = reported?;
    let usable = |a: u32| a.is_power_of_two() && a <= MAX_ALIGN;
    if !usable(mem) || !usable(offset) {
        return None;
    }
    // Powers of two: the largest is a multiple of the others.
    let align = mem.max(offset);
    usize::try_from(align).ok().map(|a| a.max(ALIGN))
}

/// Asks statx of the open `file` for its direct I/O alignments: `None` if
/// the kernel or the file system did not answer (`STATX_DIOALIGN` missing
/// from the result mask, or statx itself missing or refused).
pub(crate) fn probe(file: &File) -> Option<DioAlign> {
    let st = statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN).ok()?;
    if st.stx_mask & StatxFlags::DIOALIGN.bits() == 0 {
        return None;
    }
    Some(DioAlign {
        mem: st.stx_dio_mem_align,
        offset: st.stx_dio_offset_align,
    })
}

/// A directory new messages are made in, as the memory names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Dir {
    dev: u64,
    ino: u64,
}

impl Dir {
    /// The directory `path`.
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

fn remembered() -> &'static Mutex<HashMap<Dir, Option<usize>>> {
    static KNOWN: OnceLock<Mutex<HashMap<Dir, Option<usize>>>> = OnceLock::new();
    KNOWN.get_or_init(Mutex::default)
}

/// What is known of direct writes into `dir`: `None` if nothing yet,
/// else [`alignment`]'s answer for the first file made there.
pub(crate) fn known(dir: Dir) -> Option<Option<usize>> {
    remembered()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&dir)
        .copied()
}

/// The alignment for a direct write of `file`, just made in `dir`: what
/// is known of `dir`, or else asked of `file` and remembered for `dir`.
pub(crate) fn for_file(dir: Dir, file: &File) -> Option<usize> {
    if let Some(answer) = known(dir) {
        return answer;
    }
    let answer = alignment(probe(file));
    let mut known = remembered().lock().unwrap_or_else(PoisonError::into_inner);
    if known.len() >= REMEMBERED {
        known.clear();
    }
    known.insert(dir, answer);
    answer
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reported(mem: u32, offset: u32) -> Option<DioAlign> {
        Some(DioAlign { mem, offset })
    }

    #[test]
    fn no_answer_or_no_direct_io_takes_the_fsync_path() {
        // A kernel before 6.1, or a file system that does not answer.
        assert_eq!(alignment(None), None);
        // ext4 under data journaling, encryption, verity: zeros.
        assert_eq!(alignment(reported(0, 0)), None);
        assert_eq!(alignment(reported(0, 512)), None);
        assert_eq!(alignment(reported(512, 0)), None);
    }

    #[test]
    fn common_alignments_use_the_page_size() {
        // NVMe (DMA alignment 4), a 512-byte disk, a 4Kn disk.
        assert_eq!(alignment(reported(4, 512)), Some(4096));
        assert_eq!(alignment(reported(512, 512)), Some(4096));
        assert_eq!(alignment(reported(512, 4096)), Some(4096));
        assert_eq!(alignment(reported(4096, 4096)), Some(4096));
        assert_eq!(alignment(reported(1, 1)), Some(4096));
    }

    #[test]
    fn larger_alignments_are_met_up_to_the_limit() {
        assert_eq!(alignment(reported(512, 8192)), Some(8192));
        assert_eq!(alignment(reported(16_384, 4096)), Some(16_384));
        assert_eq!(alignment(reported(4, 65_536)), Some(65_536));
        assert_eq!(alignment(reported(4, 131_072)), None);
        assert_eq!(alignment(reported(131_072, 512)), None);
    }

    #[test]
    fn alignments_that_are_not_powers_of_two_are_refused() {
        assert_eq!(alignment(reported(3, 512)), None);
        assert_eq!(alignment(reported(512, 1000)), None);
        assert_eq!(alignment(reported(u32::MAX, u32::MAX)), None);
    }

    /// What this machine's file system says, asked of a real file, is
    /// remembered for its directory and answered from memory afterwards.
    #[test]
    fn the_first_file_answers_for_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::of(tmp.path()).unwrap();
        assert_eq!(known(dir), None);
        let file = File::create(tmp.path().join("first")).unwrap();
        let answer = for_file(dir, &file);
        assert_eq!(answer, alignment(probe(&file)));
        assert_eq!(known(dir), Some(answer));
        let other = File::create(tmp.path().join("second")).unwrap();
        assert_eq!(for_file(dir, &other), answer);
        // Another directory is asked anew.
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(known(Dir::of(&sub).unwrap()), None);
    }
}
