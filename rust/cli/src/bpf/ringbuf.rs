// SPDX-License-Identifier: GPL-2.0

//! The consumer side of a BPF ring buffer, for the drop samples.

use std::{io, os::fd::AsRawFd};

use xdpguard_abi::uapi::{BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ};

use super::Map;

/// Bytes of the consumer and producer pages.
const PAGE: usize = 4096;

/// Consumer side of a BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`), by mmap.
///
/// Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position
/// (written by us), page 1 the producer position, then the data area,
/// mapped twice so that records never wrap. Each record has an 8-byte
/// header: length with BUSY (bit 31) and DISCARD (bit 30) flags, then the
/// record, padded to 8 bytes.
pub struct RingBuf {
    _map: Map,
    cons: *mut u64,
    prod: *const u64,
    data: *const u8,
    mask: u64,
    len: usize,
    base: *mut libc::c_void,
    prod_base: *mut libc::c_void,
}

impl RingBuf {
    /// Maps the ring buffer `map` of `size` data bytes.
    pub fn new(map: Map, size: usize) -> io::Result<RingBuf> {
        let fd = map.fd.as_raw_fd();
        // SAFETY: mapping a ring buffer fd as the kernel documents: one
        // writable consumer page at offset 0 and, read-only, the producer
        // page plus twice the data area at offset one page. The results are
        // checked before use and unmapped in Drop.
        let (base, prod_base) = unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let prod = libc::mmap(
                std::ptr::null_mut(),
                PAGE + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                PAGE as i64,
            );
            if prod == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                libc::munmap(base, PAGE);
                return Err(e);
            }
            (base, prod)
        };
        Ok(RingBuf {
            _map: map,
            cons: base as *mut u64,
            prod: prod_base as *const u64,
            // SAFETY: the data area starts one page into the second mapping.
            data: unsafe { (prod_base as *const u8).add(PAGE) },
            mask: size as u64 - 1,
            len: PAGE + 2 * size,
            base,
            prod_base,
        })
    }

    /// Calls `f` with every record available now; returns how many.
    pub fn poll(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        self.poll_while(|r| {
            f(r);
            true
        })
    }

    /// Calls `f` with the records available now until it returns false;
    /// the record it refused stays in the buffer for the next reader.
    /// Returns how many records were consumed.
    pub fn poll_while(&mut self, mut f: impl FnMut(&[u8]) -> bool) -> usize {
        use std::sync::atomic::{AtomicU64, Ordering};
        // SAFETY: both positions are 8-byte aligned words in our mappings,
        // shared with the kernel, so they are accessed atomically.
        let (cons, prod) = unsafe {
            (
                &*(self.cons as *const AtomicU64),
                &*(self.prod as *const AtomicU64),
            )
        };
        let mut pos = cons.load(Ordering::Acquire);
        let end = prod.load(Ordering::Acquire);
        let mut n = 0;
        while pos < end {
            // SAFETY: `pos & mask` is inside the data area, which is mapped
            // twice, so the header and a record of up to the area's size
            // that starts there are readable without wrapping.
            let hdr = unsafe {
                &*(self.data.add((pos & self.mask) as usize) as *const std::sync::atomic::AtomicU32)
            };
            let word = hdr.load(Ordering::Acquire);
            if word & BPF_RINGBUF_BUSY_BIT != 0 {
                break; // still being written
            }
            let len = (word & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) as usize;
            if word & BPF_RINGBUF_DISCARD_BIT == 0 {
                // SAFETY: see above; `len` bytes follow the 8-byte header.
                let rec = unsafe {
                    std::slice::from_raw_parts(
                        self.data
                            .add((pos & self.mask) as usize + BPF_RINGBUF_HDR_SZ),
                        len,
                    )
                };
                if !f(rec) {
                    break;
                }
                n += 1;
            }
            pos += (len + BPF_RINGBUF_HDR_SZ).div_ceil(8) as u64 * 8;
            cons.store(pos, Ordering::Release);
        }
        n
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the two mappings made in `new`.
        unsafe {
            libc::munmap(self.base, PAGE);
            libc::munmap(self.prod_base, self.len);
        }
    }
}
