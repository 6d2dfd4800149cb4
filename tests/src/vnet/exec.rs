//! A deterministic single-threaded executor: tasks run in the order they were woken, one at a time, on
//! the test's thread, only while the test runs them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Identifies a spawned task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub usize);

#[derive(Default)]
struct Shared {
    /// Tasks woken and not yet polled, in wake order.
    ready: VecDeque<usize>,
    /// Tasks spawned and not yet adopted by the run loop.
    spawned: Vec<(usize, BoxFuture)>,
    next_id: usize,
}

/// Spawns onto an [`Executor`] from anywhere (the runtime handle, other tasks); cloning shares it.
#[derive(Clone, Default)]
pub struct Spawner {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Spawner {
    /// Queues `fut` as a new task; it first runs in the executor's next pass.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> TaskId {
        let mut s = lock(&self.shared);
        let id = s.next_id;
        s.next_id += 1;
        s.spawned.push((id, Box::pin(fut)));
        s.ready.push_back(id);
        TaskId(id)
    }
}

struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    shared: Arc<Mutex<Shared>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.shared).ready.push_back(self.id);
        }
    }
}

struct Task {
    fut: BoxFuture,
    waker: Arc<TaskWaker>,
}

/// The executor: owns the tasks, polls them when the test says.
#[derive(Default)]
pub struct Executor {
    spawner: Spawner,
    tasks: Vec<Option<Task>>,
    /// Polls done in all (a measure of the work a scenario took).
    pub polls: u64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("live", &self.live()).field("polls", &self.polls).finish()
    }
}

impl Executor {
    /// The handle to spawn with.
    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    fn adopt(&mut self) {
        let spawned = std::mem::take(&mut lock(&self.spawner.shared).spawned);
        for (id, fut) in spawned {
            if self.tasks.len() <= id {
                self.tasks.resize_with(id + 1, || None);
            }
            // Queued already by `spawn`: the flag says so.
            let waker = Arc::new(TaskWaker { id, queued: AtomicBool::new(true), shared: self.spawner.shared.clone() });
            self.tasks[id] = Some(Task { fut, waker });
        }
    }

    /// Polls one woken task; false if none was woken.
    pub fn run_one(&mut self) -> bool {
        self.adopt();
        let Some(id) = lock(&self.spawner.shared).ready.pop_front() else { return false };
        let Some(mut task) = self.tasks.get_mut(id).and_then(Option::take) else { return true };
        task.waker.queued.store(false, Ordering::Release);
        let waker = Waker::from(task.waker.clone());
        self.polls += 1;
        match task.fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(()) => {}
            Poll::Pending => self.tasks[id] = Some(task),
        }
        true
    }

    /// Runs woken tasks until none is left woken, at most `max_polls` polls (a task that wakes itself
    /// forever would otherwise never stall); returns the polls done.
    pub fn run_until_stalled(&mut self, max_polls: u64) -> u64 {
        let mut n = 0;
        while n < max_polls && self.run_one() {
            n += 1;
        }
        n
    }

    /// Tasks alive (spawned and not finished).
    pub fn live(&self) -> usize {
        self.tasks.iter().flatten().count() + lock(&self.spawner.shared).spawned.len()
    }

    /// Whether the task `id` is alive.
    pub fn is_alive(&self, id: TaskId) -> bool {
        self.tasks.get(id.0).is_some_and(Option::is_some)
            || lock(&self.spawner.shared).spawned.iter().any(|t| t.0 == id.0)
    }

    /// Drops the task `id` unfinished, as a runtime that shuts down does.
    pub fn kill(&mut self, id: TaskId) {
        self.adopt();
        if let Some(slot) = self.tasks.get_mut(id.0) {
            drop(slot.take());
        }
    }
}
