//! Gives back the pages of the monitor's own binary that setup faulted in. Setup runs a lot of
//! code once (config parsing, socket setup, ...) and each fault maps up to 64 KiB of already
//! cached file pages around it ("fault-around"); all of that would count in the monitor's
//! memory for the container's whole life. The loop uses a small part of the binary.
//!
//! Only clean file pages are dropped (MADV_DONTNEED): /proc/self/pagemap says which pages are
//! still the file's own. A page that was written (relocated GOT, .data) is private anonymous
//! memory and is kept; a dropped one is faulted back, identical, from the page cache when used.

use std::os::fd::AsRawFd;

use crate::sys;

const PAGE: usize = 4096;
/// pagemap: bit 63 present, bit 61 file page (or shared anonymous).
const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;

/// Drops the clean, file-backed pages of this executable from the page tables. Best effort.
///
/// Inlined into the caller (the relay loop): code that runs after its own page was dropped
/// faults it back with its 64 KiB neighbourhood, so this code must sit where the loop is.
#[inline(always)]
pub(crate) fn release_binary_pages() {
    let Ok(pagemap) = sys::open(c"/proc/self/pagemap", libc::O_RDONLY, 0) else { return };
    for (start, end) in load_segments() {
        let mut addr = start;
        while addr < end {
            // One pread per 64 pages.
            let mut entries = [0u64; 64];
            let n = ((end - addr) / PAGE).min(entries.len());
            // SAFETY: valid buffer of n u64s; pread at the page's pagemap offset.
            let got = unsafe { libc::pread(pagemap.as_raw_fd(), entries.as_mut_ptr().cast(), n * 8, (addr / PAGE * 8) as libc::off_t) };
            if got <= 0 {
                break;
            }
            for (i, e) in entries[..got as usize / 8].iter().enumerate() {
                if e & PM_PRESENT != 0 && e & PM_FILE != 0 {
                    // SAFETY: a clean private file page of our own image: dropping it only
                    // unmaps it; the next access maps the same page-cache page again.
                    unsafe { libc::madvise((addr + i * PAGE) as *mut libc::c_void, PAGE, libc::MADV_DONTNEED) };
                }
            }
            addr += got as usize / 8 * PAGE;
        }
    }
}

/// The page-aligned address ranges of this executable's PT_LOAD segments, from the auxiliary
/// vector's program headers.
#[inline(never)]
fn load_segments() -> Vec<(usize, usize)> {
    // SAFETY: getauxval reads the process's auxiliary vector.
    let (phdr, phnum) = unsafe { (libc::getauxval(libc::AT_PHDR) as usize, libc::getauxval(libc::AT_PHNUM) as usize) };
    if phdr == 0 || phnum == 0 {
        return Vec::new();
    }
    // SAFETY: AT_PHDR points at AT_PHNUM program headers mapped for the life of the process.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    // The load bias: 0 for a fixed-address executable, the ASLR offset for a PIE.
    let Some(bias) = headers.iter().find(|h| h.p_type == libc::PT_PHDR).map(|h| phdr.wrapping_sub(h.p_vaddr as usize)) else {
        return Vec::new();
    };
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD)
        .map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize) & !(PAGE - 1);
            let end = (bias.wrapping_add(h.p_vaddr as usize + h.p_memsz as usize) + PAGE - 1) & !(PAGE - 1);
            (start, end)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_this_code_and_release_keeps_it_working() {
        let here = segments_cover_this_code_and_release_keeps_it_working as *const () as usize;
        let segs = load_segments();
        assert!(segs.iter().any(|&(s, e)| s <= here && here < e), "{segs:x?} vs {here:x}");
        // Relocated data and statics survive: they are not clean file pages.
        static mut COUNTER: u64 = 41;
        // SAFETY: single use in this test.
        unsafe { COUNTER += 1 };
        release_binary_pages();
        // SAFETY: as above.
        assert_eq!(unsafe { COUNTER }, 42);
        assert_eq!(format!("{}", 7 * 6), "42");
    }
}
