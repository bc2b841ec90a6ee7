//! `pin_threads`: each io_uring runtime's thread kept on one CPU. Without it the scheduler may
//! wake a ring thread on the CPU of the thread that woke it (a client on the same host, the
//! callback worker that answered) and make it wait there while another CPU idles; a pinned
//! ring is woken where it runs. nginx's `worker_cpu_affinity auto` does the same for its
//! workers. The CPUs are those the node was started with (`taskset`, a cgroup's cpuset), so
//! an operator who reserves CPUs for the node keeps the others free.

use std::io;

/// The CPUs this process may run on, in order (`sched_getaffinity` of the calling thread).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and sched_getaffinity writes at most
    // its size into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CPU_ISSET reads the set filled above, for indices below its capacity.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Keeps the calling thread on `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within its capacity
    // (the caller's CPU came from `allowed_cpus`).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU for runtime `i` of the node: round robin over `cpus`.
pub fn cpu_for(cpus: &[usize], i: usize) -> Option<usize> {
    (!cpus.is_empty()).then(|| cpus[i % cpus.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_take_the_allowed_cpus_in_turn() {
        assert_eq!(cpu_for(&[2, 5], 0), Some(2));
        assert_eq!(cpu_for(&[2, 5], 1), Some(5));
        assert_eq!(cpu_for(&[2, 5], 2), Some(2));
        assert_eq!(cpu_for(&[], 0), None);
    }

    #[test]
    fn a_pinned_thread_runs_only_on_its_cpu() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(allowed_cpus().unwrap(), [last]);
            // SAFETY: sched_getcpu takes no arguments.
            assert_eq!(unsafe { libc::sched_getcpu() }, last as i32);
        })
        .join()
        .unwrap();
    }
}
