//! Unpredictable numbers for the probes' echo identifiers and sequence starts: an off-path host
//! that cannot see our requests must guess both to forge an answer (issue 23). From the kernel's
//! `getrandom(2)`; no crate needed for two bytes.

use std::io;

/// Two random bytes from the kernel's pool.
pub fn random_u16() -> io::Result<u16> {
    let mut b = [0u8; 2];
    loop {
        // SAFETY: writes at most b.len() bytes into b.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
        if n == b.len() as isize {
            return Ok(u16::from_ne_bytes(b));
        }
        let e = io::Error::last_os_error();
        if n >= 0 || e.kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::new(e.kind(), format!("getrandom: {e}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numbers_are_not_all_the_same() {
        // 64 draws of 16 bits all equal by chance: 2^-1008.
        let draws: Vec<u16> = (0..64).map(|_| random_u16().unwrap()).collect();
        assert!(draws.iter().any(|d| *d != draws[0]), "{draws:?}");
    }
}
