//! `peer serve`'s one thread for the store's work. Every connection hands its store calls
//! (listing learners, each step of an exchange) to this thread and waits for the answer, so a
//! peer's document is loaded and merged on one thread at a time. The store already does its
//! writes one at a time; what this adds is memory: the allocator keeps what a thread freed for
//! that thread, so loading documents on every connection's own thread left the process holding
//! one peak per thread (6 peers each sending a valid 100,000-item document took `peer serve`
//! to 231 MB; on one thread they cost one peak).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::Arc;

use headway::Store;

type Job = Box<dyn FnOnce(&Store) + Send>;

/// The thread that owns the store's work; cheap to share between connections.
pub struct StoreThread {
    jobs: mpsc::Sender<Job>,
}

impl StoreThread {
    /// Starts the thread for `store`; it ends when the last handle is dropped.
    pub fn start(store: Arc<Store>) -> std::io::Result<Arc<StoreThread>> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("headway-peer-store".into())
            .spawn(move || {
                for job in queue {
                    // A panic ends only its own job: the connection waiting for it sees the
                    // answer never come, and the others go on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&store)));
                }
            })?;
        Ok(Arc::new(StoreThread { jobs }))
    }

    /// Runs `work` on the store's thread and returns what it returned.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |store| {
            let _ = answer.send(work(store));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the store's thread has stopped"))?;
        answered
            .recv()
            .map_err(|_| anyhow::anyhow!("the store's work for this exchange failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_from_many_threads_runs_on_the_one_store_thread() {
        let thread = StoreThread::start(Arc::new(Store::open_in_memory().unwrap())).unwrap();
        let names: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let thread = thread.clone();
                    scope.spawn(move || {
                        thread
                            .run(|_| std::thread::current().name().unwrap_or("").to_string())
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(names.iter().all(|n| n == "headway-peer-store"), "{names:?}");
    }

    #[test]
    fn a_panicking_job_fails_its_caller_and_the_thread_goes_on() {
        let thread = StoreThread::start(Arc::new(Store::open_in_memory().unwrap())).unwrap();
        assert!(thread.run(|_| -> () { panic!("a bug") }).is_err());
        assert_eq!(thread.run(|_| 7).unwrap(), 7);
    }
}
