//! Memory given back to the kernel.

/// Gives freed memory back to the kernel: after a large config is gone, glibc would keep it.
pub fn release() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
