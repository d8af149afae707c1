//! A program that opens and reads a file only through io_uring (`IORING_OP_OPENAT`, then
//! `IORING_OP_READ`), built here with gcc and Debian's liburing: no open syscall names the
//! file. `uring-open PATH [DIR]` opens PATH relative to DIR (default: the working
//! directory); it exits 0 having read it, 3 when the open failed.

use std::path::Path;
use std::process::Command;

const SOURCE: &str = r#"
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (argc > 2 && chdir(argv[2]) != 0) return 2;
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0) return 2;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_openat(sqe, AT_FDCWD, argv[1], O_RDONLY, 0);
    io_uring_submit(&ring);
    struct io_uring_cqe *cqe;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) return 2;
    int fd = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (fd < 0) return 3;
    char buf[64];
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, fd, buf, sizeof buf, 0);
    io_uring_submit(&ring);
    if (io_uring_wait_cqe(&ring, &cqe) != 0) return 2;
    printf("read %d bytes\n", cqe->res);
    io_uring_cqe_seen(&ring, cqe);
    return 0;
}
"#;

/// Builds the program at `out`.
pub fn build(out: &Path) {
    let src = out.with_extension("c");
    std::fs::write(&src, SOURCE).expect("writing the source");
    let status = Command::new("gcc")
        .arg("-O2")
        .arg("-o")
        .arg(out)
        .arg(&src)
        .arg("-luring")
        .status()
        .expect("gcc (liburing-dev: cargo xtask setup installs it)");
    assert!(status.success(), "building the io_uring program");
}
