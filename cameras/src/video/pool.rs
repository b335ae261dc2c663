//! The decoder pool: a few OS threads (not the async runtime's) at a lower scheduling priority,
//! so decoding never starves the camera sessions, with a CPU budget for the periodic picture
//! samples. On-demand work (snapshots, evidence) goes first and is not held to the budget —
//! it is rare and someone is waiting for it — but its queue is bounded too. Pictures for
//! viewing (the console's camera wall) come after it and before the samples, in a bounded
//! queue of their own, so a wall being paged through never delays an alarm's evidence.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Why work was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The queue is full.
    #[error("the decoder pool is busy")]
    Busy,
    /// The periodic samples have used up their CPU budget for now.
    #[error("the picture-check CPU budget is used up")]
    OverBudget,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<Job>,
    views: VecDeque<Job>,
    samples: VecDeque<Job>,
    stopping: bool,
}

/// CPU time the samples may still spend: refilled at `cores` seconds per second, holding at
/// most ten seconds' worth.
struct Budget {
    cores: f64,
    tokens: f64,
    refilled: Instant,
}

impl Budget {
    fn refill(&mut self, now: Instant) {
        let cap = self.cores * 10.0;
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * self.cores).min(cap);
        self.refilled = now;
    }
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    budget: Mutex<Budget>,
    capacity: usize,
}

/// Settings of the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Decoder threads.
    pub threads: usize,
    /// CPU the periodic samples may use, in cores (0.5 = half a core on average).
    pub cpu_budget: f64,
    /// Jobs waiting per queue at most.
    pub queue: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            cpu_budget: 0.5,
            queue: 64,
        }
    }
}

/// Which queue a job waits in; the threads take urgent work first, then views, then samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Someone waits for it now: a snapshot, an alarm's evidence.
    Urgent,
    /// A picture to look at: a thumbnail of the camera wall.
    View,
    /// A periodic picture check (held to the CPU budget).
    Sample,
}

/// A bounded pool of decoder threads.
#[derive(Clone)]
pub struct DecoderPool {
    shared: Arc<Shared>,
}

/// How much nicer than the rest of the gateway decoder threads run.
const NICE: i32 = 10;

impl DecoderPool {
    /// Starts the threads.
    pub fn new(config: PoolConfig) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            budget: Mutex::new(Budget {
                cores: config.cpu_budget.max(0.0),
                tokens: config.cpu_budget.max(0.0),
                refilled: Instant::now(),
            }),
            capacity: config.queue.max(1),
        });
        for n in 0..config.threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("decoder-{n}"))
                .spawn(move || worker(shared))
                .expect("decoder thread");
        }
        Self { shared }
    }

    /// Queues a periodic sample, unless the queue is full or the budget used up.
    pub fn sample(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
        {
            let mut b = self.shared.budget.lock();
            b.refill(Instant::now());
            if b.tokens <= 0.0 {
                return Err(Refused::OverBudget);
            }
        }
        self.push(Box::new(job), Priority::Sample)
    }

    /// Runs `f` on a decoder thread ahead of everything else and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        self.run_as(Priority::Urgent, f).await
    }

    /// Runs `f` at `priority` (not [`Priority::Sample`]: samples do not wait for a result)
    /// and waits for its result.
    pub async fn run_as<T: Send + 'static>(
        &self,
        priority: Priority,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.push(
            Box::new(move || {
                let _ = tx.send(f());
            }),
            priority,
        )?;
        rx.await.map_err(|_| Refused::Busy)
    }

    fn push(&self, job: Job, priority: Priority) -> Result<(), Refused> {
        let mut q = self.shared.queues.lock();
        let queue = match priority {
            Priority::Urgent => &mut q.urgent,
            Priority::View => &mut q.views,
            Priority::Sample => &mut q.samples,
        };
        if queue.len() >= self.shared.capacity {
            return Err(Refused::Busy);
        }
        queue.push_back(job);
        drop(q);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Lets the threads end once the queues are empty.
    pub fn stop(&self) {
        self.shared.queues.lock().stopping = true;
        self.shared.ready.notify_all();
    }
}

fn worker(shared: Arc<Shared>) {
    // SAFETY: setpriority only changes this thread's nice value (Linux threads have their own)
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICE);
    }
    loop {
        let (job, sample) = {
            let mut q = shared.queues.lock();
            loop {
                if let Some(j) = q.urgent.pop_front() {
                    break (j, false);
                }
                if let Some(j) = q.views.pop_front() {
                    break (j, false);
                }
                if let Some(j) = q.samples.pop_front() {
                    break (j, true);
                }
                if q.stopping {
                    return;
                }
                shared.ready.wait(&mut q);
            }
        };
        let started = Instant::now();
        // a panic in FFmpeg glue must not take the thread (and the pool) down
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        if sample {
            let spent = started.elapsed().min(Duration::from_secs(10)).as_secs_f64();
            shared.budget.lock().tokens -= spent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_past_the_budget_are_refused_and_a_full_queue_is_busy() {
        let pool = DecoderPool::new(PoolConfig {
            threads: 1,
            cpu_budget: 0.05,
            queue: 2,
        });
        let (tx, rx) = std::sync::mpsc::channel();
        // 0.2 s of work against 0.05 cores: the budget goes negative
        pool.sample(move || {
            std::thread::sleep(Duration::from_millis(200));
            tx.send(()).unwrap();
        })
        .unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match pool.sample(|| {}) {
                Err(Refused::OverBudget) => break,
                _ if Instant::now() > deadline => panic!("budget never ran out"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        // urgent work ignores the budget
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(pool.run(|| 7)), Ok(7));

        // a blocked thread: the sample queue fills at its capacity
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let busy = DecoderPool::new(PoolConfig {
            threads: 1,
            cpu_budget: 100.0,
            queue: 2,
        });
        busy.sample(move || {
            let _ = hold_rx.recv_timeout(Duration::from_secs(10));
        })
        .unwrap();
        let mut refused = None;
        for _ in 0..4 {
            if let Err(e) = busy.sample(|| {}) {
                refused = Some(e);
            }
        }
        assert_eq!(refused, Some(Refused::Busy));
        hold_tx.send(()).unwrap();
        busy.stop();
        pool.stop();
    }

    #[test]
    fn urgent_work_goes_before_views_and_views_before_samples_and_views_are_bounded() {
        let pool = DecoderPool::new(PoolConfig {
            threads: 1,
            cpu_budget: 100.0,
            queue: 3,
        });
        // hold the one thread while the queues fill (once it runs: a view queued before would
        // rightly go first)
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        pool.sample(move || {
            let _ = held_tx.send(());
            let _ = hold_rx.recv_timeout(Duration::from_secs(30));
        })
        .unwrap();
        held_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the thread takes the first job");
        let order = Arc::new(Mutex::new(Vec::new()));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let log = |what: &'static str| {
            let order = order.clone();
            move || order.lock().push(what)
        };
        pool.sample(log("sample")).unwrap();
        let spawn = |priority, job: Box<dyn FnOnce() + Send>| {
            let pool = pool.clone();
            rt.spawn(async move { pool.run_as(priority, job).await })
        };
        let views: Vec<_> = (0..3)
            .map(|_| spawn(Priority::View, Box::new(log("view"))))
            .collect();
        let urgent = spawn(Priority::Urgent, Box::new(log("urgent")));
        // every job queued before the thread is let go
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.shared.queues.lock().views.len() < 3
            || pool.shared.queues.lock().urgent.is_empty()
        {
            assert!(Instant::now() < deadline, "never queued");
            std::thread::sleep(Duration::from_millis(5));
        }
        // a fourth view finds its queue full; urgent work has a queue of its own
        assert_eq!(
            rt.block_on(pool.run_as(Priority::View, || ())),
            Err(Refused::Busy)
        );
        hold_tx.send(()).unwrap();
        for v in views {
            rt.block_on(v).unwrap().unwrap();
        }
        rt.block_on(urgent).unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while order.lock().len() < 5 {
            assert!(Instant::now() < deadline, "the sample never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*order.lock(), ["urgent", "view", "view", "view", "sample"]);
        pool.stop();
    }
}
