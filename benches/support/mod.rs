//! Running a child process and reading what it cost.

use std::process::Command;
use std::time::{Duration, Instant};

/// What one child process took.
pub struct Cost {
    /// Wall time.
    pub wall: Duration,
    /// Exit code.
    pub exit: i32,
    /// Peak resident memory in KiB.
    pub max_rss_kib: u64,
    /// CPU time in user and kernel mode.
    pub cpu: Duration,
}

/// Runs `command` to completion and reads its resource usage with wait4 (std's wait gives none).
///
/// The peak memory is the child's own high-water mark (VmHWM), read while it runs: wait4's
/// ru_maxrss would also count this process's memory, which the child's exec inherits.
#[allow(clippy::zombie_processes)] // reaped by wait4 below
pub fn run(mut command: Command) -> Cost {
    let start = Instant::now();
    let child = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("the command starts");
    let status_file = format!("/proc/{}/status", child.id());
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        // VmHWM only grows; once the child has exited the line is gone and the loop ends.
        while let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| high_water_kib(&s)) {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid with valid pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let seconds = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Cost {
        wall: start.elapsed(),
        exit: libc::WEXITSTATUS(status),
        max_rss_kib: watcher.join().expect("the watcher ends"),
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }
}

/// The `VmHWM` line of a /proc status file, in KiB.
fn high_water_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// CPU time this process (the in-process API servers) has used so far.
#[allow(dead_code)] // not every bench uses it
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage fills a local struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Resident memory of this process now, in KiB (VmRSS).
#[allow(dead_code)] // not every bench uses it
pub fn own_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
