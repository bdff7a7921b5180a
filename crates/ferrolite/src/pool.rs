//! The worker pool that splits one op's work across threads.
//!
//! An invoke is a chain of ops, each a few microseconds to a few
//! milliseconds long, so what matters is the latency of handing out work and
//! of noticing it is finished, not throughput. A general-purpose pool
//! (rayon's `install`) costs about 10 us per op on the 2-core VM we measure
//! on: the calling thread sleeps while the pool runs and is woken through
//! the kernel. Here, like XNNPACK's pthreadpool:
//!
//! - the calling thread is one of the workers (`threads - 1` are spawned),
//!   so no thread sits idle waiting and nothing is oversubscribed;
//! - tasks are claimed with one atomic increment each, so uneven tasks
//!   balance themselves;
//! - idle workers poll for [`SPIN`] before they sleep on a condition
//!   variable, so back-to-back ops start without waking anyone; after a
//!   few microseconds of spinning they yield between polls, so with more
//!   threads than CPUs the busy ones still get to run;
//! - a new worker, and one that missed a whole job while it spun (so it
//!   shares a CPU with the submitter), sleeps until the next job: being
//!   woken lets the kernel move it to an idle CPU ([`STARVED`]).
//!
//! A job lives on the submitting thread's stack. Workers reach it through a
//! pointer that is only read while they are counted in `active`, and the
//! submitter withdraws the pointer and waits for `active == 0` before it
//! returns: that is the one `unsafe` dereference below.
//!
//! Submitting while another job runs (two interpreters sharing a pool on
//! different threads, or a task that submits again) does not wait: the
//! second submitter runs its tasks itself.
#![allow(unsafe_code)]

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker polls for the next job before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// One parallel loop: tasks `0 .. tasks`, each `f(i)` once.
///
/// The tasks are dealt out as one contiguous range per thread, which each
/// thread works through from the front before it helps with the others'
/// (claiming through the same counters). Consecutive ops split their rows
/// the same way, so a thread mostly reads what it wrote one op before,
/// still in its own core's L2; handing out tasks first come, first served
/// sent about half of every op's input across cores (MobileNet v2 int8 at
/// 2 threads, medians of 500 runs: 2.33 -> 2.16 ms).
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync + 'a),
    tasks: usize,
    /// Per thread, how many tasks of its range have been claimed.
    claimed: Vec<PaddedCounter>,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A counter alone on its cache line: threads claiming from different
/// ranges do not contend.
#[repr(align(64))]
#[derive(Default)]
struct PaddedCounter(AtomicUsize);

impl Job<'_> {
    /// Thread `me`'s range of tasks.
    fn range(&self, me: usize) -> std::ops::Range<usize> {
        let parts = self.claimed.len();
        self.tasks * me / parts..self.tasks * (me + 1) / parts
    }

    /// Claim and run tasks until none is left: thread `me`'s own range
    /// first, then the others' in turn.
    fn work(&self, me: usize) {
        let parts = self.claimed.len();
        for k in 0..parts {
            let part = (me + k) % parts;
            let range = self.range(part);
            loop {
                let i = range.start + self.claimed[part].0.fetch_add(1, SeqCst);
                if i >= range.end {
                    break;
                }
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.f)(i))) {
                    let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                    slot.get_or_insert(p);
                }
                self.done.fetch_add(1, SeqCst);
            }
        }
    }
}

/// What the submitter and the workers share.
struct Shared {
    /// The job being run (null between jobs).
    job: AtomicPtr<Job<'static>>,
    /// Bumped once per job, so a worker knows there is something new.
    epoch: AtomicUsize,
    /// Workers currently holding `job`'s pointer.
    active: AtomicUsize,
    /// Workers asleep on `wake` (or about to be).
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// A fixed set of threads created once per interpreter; see the module
/// documentation.
pub struct WorkerPool {
    shared: Arc<Shared>,
    /// Held while a job is published (one job at a time).
    submit: Mutex<()>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerPool({} threads)", self.threads())
    }
}

impl WorkerPool {
    /// A pool running tasks on `threads` threads in all: the caller of
    /// [`WorkerPool::run`] and `threads - 1` spawned workers.
    pub fn new(threads: usize) -> std::io::Result<WorkerPool> {
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut pool = WorkerPool { shared, submit: Mutex::new(()), workers: Vec::new() };
        for i in 1..threads.max(1) {
            let shared = Arc::clone(&pool.shared);
            let handle =
                std::thread::Builder::new().name(format!("ferrolite-{i}")).spawn(move || worker(&shared, i))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    /// Threads that run tasks, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Run `f(i)` for every `i < tasks`, spread over the pool; returns when
    /// all have finished. A panic in a task is re-raised here, after every
    /// other task has finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let guard = if tasks > 1 && !self.workers.is_empty() { self.submit.try_lock().ok() } else { None };
        let Some(_guard) = guard else {
            (0..tasks).for_each(f);
            return;
        };
        let claimed = (0..self.threads()).map(|_| PaddedCounter::default()).collect();
        let job = Job { f, tasks, claimed, done: AtomicUsize::new(0), panic: Mutex::new(None) };
        let shared = &*self.shared;
        // Only the lifetime changes; see the SAFETY note in `worker`.
        shared.job.store(&job as *const Job<'_> as *mut Job<'static>, SeqCst);
        shared.epoch.fetch_add(1, SeqCst);
        if shared.sleepers.load(SeqCst) > 0 {
            let _lock = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        job.work(0);
        wait_until(|| job.done.load(SeqCst) == tasks);
        // Withdraw the job, then wait for workers still holding it.
        shared.job.store(std::ptr::null_mut(), SeqCst);
        wait_until(|| shared.active.load(SeqCst) == 0);
        let panic = job.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _lock = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Jobs a spinning worker may find started since its last one before it
/// counts as starved. A worker that spins on its own CPU sees every job (a
/// whole job passing between two of its polls would take well under a
/// microsecond), so missing one means it was not running: the kernel put
/// it on the same CPU as the thread submitting the jobs, where it runs
/// only when that thread yields or its time slice ends, while another CPU
/// idles. A spinning thread is never woken, so nothing makes the kernel
/// place it again; one that sleeps is put on an idle CPU when the next job
/// wakes it. On the 2-CPU VM we measure on, a new process running a small
/// layer at 2 threads was stuck like this in most runs (0.25-0.35 ms per
/// invoke instead of 0.17 for its first 100 ms or more; `perf sched`
/// showed both threads taking turns on one CPU). With this rule 13 of 16
/// runs were fast, against 5 of 12 before.
const STARVED: usize = 2;

/// Polls that spin before a waiting thread starts yielding its CPU (a few
/// microseconds): with more threads than CPUs, the thread being waited for
/// may need this one's CPU.
const SPIN_POLLS: u32 = 256;

/// Spin (then yield) until `ready()`: the other threads are running tasks
/// of the same op, so the wait is short.
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        spins = spins.saturating_add(1);
        if spins < SPIN_POLLS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Worker `me` (`1 ..`; the submitter is 0) of the pool's threads.
fn worker(shared: &Shared, me: usize) {
    let mut seen = shared.epoch.load(SeqCst);
    // A new thread starts asleep, and one that missed whole jobs while it
    // spun goes back to sleep instead of spinning: see `STARVED`.
    let mut spin = false;
    loop {
        // Wait for the epoch to move: spin first, then sleep.
        let start = Instant::now();
        let mut polls = 0u32;
        let mut slept = false;
        loop {
            if shared.shutdown.load(SeqCst) {
                return;
            }
            let e = shared.epoch.load(SeqCst);
            if e != seen {
                // Jobs missed during a slow wake-up say nothing about
                // where this thread runs: spin after any sleep.
                spin = slept || e.wrapping_sub(seen) < STARVED;
                seen = e;
                break;
            }
            polls = polls.saturating_add(1);
            if spin && polls < SPIN_POLLS {
                std::hint::spin_loop();
                continue;
            }
            if spin && start.elapsed() < SPIN {
                std::thread::yield_now();
                continue;
            }
            let mut lock = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.sleepers.fetch_add(1, SeqCst);
            while shared.epoch.load(SeqCst) == seen && !shared.shutdown.load(SeqCst) {
                lock = shared.wake.wait(lock).unwrap_or_else(|e| e.into_inner());
            }
            shared.sleepers.fetch_sub(1, SeqCst);
            slept = true;
        }
        shared.active.fetch_add(1, SeqCst);
        let job = shared.job.load(SeqCst);
        if !job.is_null() {
            // SAFETY: `job` points at a `Job` on the stack of a thread inside
            // `WorkerPool::run`, which stores null and then waits until
            // `active` is 0 before that `Job` goes away. We loaded the
            // pointer after counting ourselves in `active` (both SeqCst), so
            // either `run` sees us and waits, or we see its null.
            unsafe { &*job }.work(me);
        }
        shared.active.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_task_runs_exactly_once() {
        let pool = WorkerPool::new(3).unwrap();
        for tasks in [0usize, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                pool.run(tasks, &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
            }
            assert!(hits.iter().all(|h| h.load(SeqCst) == 200), "{tasks} tasks");
        }
    }

    #[test]
    fn each_thread_starts_on_its_own_range_then_helps_the_others() {
        // Alone (as when the other threads are late), thread 1 of 3 runs
        // its own third first, then thread 2's, then thread 0's.
        let order = Mutex::new(Vec::new());
        let f = |i: usize| order.lock().unwrap().push(i);
        let claimed = (0..3).map(|_| PaddedCounter::default()).collect();
        let job = Job { f: &f, tasks: 10, claimed, done: AtomicUsize::new(0), panic: Mutex::new(None) };
        job.work(1);
        assert_eq!(*order.lock().unwrap(), [3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
        assert_eq!(job.done.load(SeqCst), 10);
        // A second thread arriving afterwards finds nothing left.
        job.work(0);
        assert_eq!(order.lock().unwrap().len(), 10);
    }

    #[test]
    fn workers_wake_after_sleeping() {
        let pool = WorkerPool::new(2).unwrap();
        let sum = AtomicU64::new(0);
        pool.run(4, &|i| {
            sum.fetch_add(i as u64, SeqCst);
        });
        std::thread::sleep(SPIN * 3);
        pool.run(4, &|i| {
            sum.fetch_add(i as u64, SeqCst);
        });
        assert_eq!(sum.load(SeqCst), 12);
    }

    #[test]
    fn a_task_panic_reaches_the_caller_and_the_pool_survives() {
        let pool = WorkerPool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(8, &|i| {
                if i == 5 {
                    panic!("task 5");
                }
            })
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(8, &|_| {
            n.fetch_add(1, SeqCst);
        });
        assert_eq!(n.load(SeqCst), 8);
    }

    #[test]
    fn nested_and_concurrent_submits_run_serially_instead_of_waiting() {
        let pool = Arc::new(WorkerPool::new(2).unwrap());
        let n = AtomicUsize::new(0);
        pool.run(4, &|_| {
            pool.run(3, &|_| {
                n.fetch_add(1, SeqCst);
            });
        });
        assert_eq!(n.load(SeqCst), 12);
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    let m = AtomicUsize::new(0);
                    for _ in 0..100 {
                        pool.run(5, &|_| {
                            m.fetch_add(1, SeqCst);
                        });
                    }
                    m.load(SeqCst)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 500);
        }
    }
}
