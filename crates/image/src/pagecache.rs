//! Page-cache hints for the large sequential writes of a load: start writing data to disk as
//! soon as it is written, so the disk works while the CPU goes on and the sync that makes it
//! durable finds little left to do; and drop written blob data from the cache once it is on
//! disk, since nothing reads it again soon, so its pages are reused for what comes next
//! instead of pushing out useful cache (or, in a VM, faulting in fresh memory); likewise for
//! blobs read once by a save, which are also read ahead of the copy so the disk stays busy.
//! Best effort: a failure only means the kernel does the work later.

use std::os::fd::AsRawFd;

fn range(off: u64, len: u64) -> Option<(i64, i64)> {
    Some((i64::try_from(off).ok()?, i64::try_from(len).ok()?))
}

/// Queues `len` bytes of `file` from `off` (0: to the end) for writing to disk; returns at once.
pub(crate) fn start_writeback(file: &impl AsRawFd, off: u64, len: u64) {
    let Some((off, len)) = range(off, len) else {
        return;
    };
    // SAFETY: sync_file_range on a valid descriptor; it only schedules I/O.
    unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Waits until the range is on disk (it was queued earlier, so usually it is), then drops it
/// from the page cache.
pub(crate) fn release(file: &impl AsRawFd, off: u64, len: u64) {
    let Some((off, len)) = range(off, len) else {
        return;
    };
    let fd = file.as_raw_fd();
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: sync_file_range and posix_fadvise on a valid descriptor; they touch no memory
    // of ours. DONTNEED skips pages still dirty, so nothing unwritten is lost.
    unsafe {
        if libc::sync_file_range(fd, off, len, flags) == 0 {
            libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// Drops the range (0: to the end) of `file` from the page cache as far as it is on disk,
/// without waiting. For data read once (a blob being saved) or already flushed.
pub(crate) fn drop_clean(file: &impl AsRawFd, off: u64, len: u64) {
    let Some((off, len)) = range(off, len) else {
        return;
    };
    // SAFETY: posix_fadvise on a valid descriptor; dirty pages are skipped, not lost.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_DONTNEED) };
}

/// Starts reading the range into the page cache, without waiting.
pub(crate) fn read_ahead(file: &impl AsRawFd, off: u64, len: u64) {
    let Some((off, len)) = range(off, len) else {
        return;
    };
    // SAFETY: posix_fadvise on a valid descriptor; it only schedules reads.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_WILLNEED) };
}
