//! The daemon's own secrets. The backend token reaches the agent in a file (read at each
//! submission, never copied into the environment) or in `SNIFFER_BACKEND_TOKEN`. Anything
//! that can read the agent's environment (`/proc/PID/environ`, which a container that
//! shares the host's process namespace, or an image's link into its `/proc`, could make
//! us read) must not find the token there, so it is taken out at start-up and the bytes the
//! kernel shows as the environment are overwritten.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;

/// The environment variable that may hold the backend token.
pub const TOKEN_VAR: &str = "SNIFFER_BACKEND_TOKEN";

unsafe extern "C" {
    /// The C library's environment (`environ(7)`).
    static mut environ: *mut *mut libc::c_char;
}

/// Takes `name` out of the environment: returns its value, removes it, and overwrites its
/// value in the memory the process started with (what `/proc/self/environ` reads) with
/// `*`. Call before any other thread starts.
pub fn take_env(name: &str) -> Option<String> {
    let value = std::env::var_os(name)?;
    let prefix = [name.as_bytes(), b"="].concat();
    // SAFETY: called while the process has one thread, so nothing reads or changes the
    // environment meanwhile; every pointer walked is one of `environ`'s, NUL-terminated,
    // and the bytes written are within the string found (its length, from CStr).
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = CStr::from_ptr(*entry);
            let len = text.to_bytes().len();
            if text.to_bytes().starts_with(&prefix) {
                std::ptr::write_bytes((*entry).add(prefix.len()), b'*', len - prefix.len());
            }
            entry = entry.add(1);
        }
        std::env::remove_var(name);
    }
    Some(String::from_utf8_lossy(OsStr::new(&value).as_bytes()).into_owned())
}
