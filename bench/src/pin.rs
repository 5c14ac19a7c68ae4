//! Pinning a thread, and the threads it starts, to one CPU.
//!
//! On one CPU the client, the server and the kernel take turns: a call's
//! latency is the CPU it takes, with no idle core to wake, and the medians
//! of a few runs of the per-layer ratios agree within about 1 %, where on
//! two cores they moved by up to 10 %.

/// Pins the calling thread to the first CPU it may run on, and returns that
/// CPU's index. Threads it starts afterwards inherit the pin (and
/// `available_parallelism` then reads 1).
#[cfg(target_os = "linux")]
pub fn to_one_cpu() -> Result<usize, String> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let allowed = sched_getaffinity(None).map_err(|e| format!("sched_getaffinity: {e}"))?;
    let cpu = (0..CpuSet::MAX_CPU)
        .find(|&cpu| allowed.is_set(cpu))
        .ok_or("sched_getaffinity: no CPU is allowed")?;
    let mut one = CpuSet::new();
    one.set(cpu);
    sched_setaffinity(None, &one).map_err(|e| format!("sched_setaffinity to CPU {cpu}: {e}"))?;
    Ok(cpu)
}

/// Pinning needs Linux's `sched_setaffinity`.
#[cfg(not(target_os = "linux"))]
pub fn to_one_cpu() -> Result<usize, String> {
    Err("pinning to one CPU needs Linux (sched_setaffinity)".to_owned())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_and_its_children_run_on_one_cpu() {
        let (cpu, parallelism) = std::thread::spawn(|| {
            let cpu = to_one_cpu().unwrap();
            let child = std::thread::spawn(|| {
                let allowed = rustix::thread::sched_getaffinity(None).unwrap();
                (
                    allowed.count(),
                    std::thread::available_parallelism().unwrap().get(),
                )
            });
            (cpu, child.join().unwrap())
        })
        .join()
        .unwrap();
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        assert!(
            allowed.is_set(cpu),
            "pinned to CPU {cpu}, which this process may not use"
        );
        assert_eq!(
            parallelism,
            (1, 1),
            "a thread started by a pinned one runs on one CPU"
        );
    }
}
