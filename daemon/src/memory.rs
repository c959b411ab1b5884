//! Memory given back to the kernel.

/// glibc's mmap threshold, fixed at its initial 128 KiB. Left dynamic, glibc raises it to the
/// size of each large block freed (up to 32 MiB): after the first 50,000-route config, the next
/// ones' buffers come from the heap instead of their own mappings and stay resident, and RSS
/// while a VPN is up grew from run to run (28.9 → 40.3 → 42.2 MiB, issue 16). Fixed, a large
/// block is always a mapping of its own, given back to the kernel when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator up (before anything large is allocated).
pub fn init() {
    // SAFETY: mallopt only sets the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Gives freed memory back to the kernel: after a large config is gone, glibc would keep it.
pub fn release() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
