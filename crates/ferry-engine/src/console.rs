//! The `console` action: prints each rule output, like EMQX's console action.
//!
//! `run` is called on the publishing client's task, so it never writes itself: it hands the
//! line to a writer thread through a bounded queue ([`QUEUE_LINES`]) and returns. When the
//! queue is full (stdout is a pipe nobody reads, a slow terminal) the line is dropped,
//! counted ([`Console::dropped`]) and the run fails, so the rule counts it in
//! `actions.failed`. Every `console` action printing to stdout shares one writer thread.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use ferry_rules::{Map, Value};

use crate::actions::{Action, ActionEnv};

/// Lines waiting for the writer thread.
pub(crate) const QUEUE_LINES: usize = 10_000;

/// Prints each output, like EMQX's console action.
pub struct Console {
    /// `None`: the writer thread could not be started; every line is dropped.
    tx: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
}

/// The writer of stdout, shared by every `Console::stdout()`.
static STDOUT: OnceLock<(Option<SyncSender<String>>, Arc<AtomicU64>)> = OnceLock::new();

impl Console {
    /// Prints to stdout.
    pub fn stdout() -> Console {
        let (tx, dropped) = STDOUT.get_or_init(|| {
            (
                spawn_writer(Box::new(std::io::stdout()), QUEUE_LINES),
                Arc::default(),
            )
        });
        Console {
            tx: tx.clone(),
            dropped: dropped.clone(),
        }
    }

    /// Prints to `sink` (a writer thread of its own, ending when the action is dropped).
    pub fn to(sink: Box<dyn Write + Send>) -> Console {
        Console::bounded(sink, QUEUE_LINES)
    }

    /// [`Console::to`] with a queue of `lines` lines.
    pub fn bounded(sink: Box<dyn Write + Send>, lines: usize) -> Console {
        Console {
            tx: spawn_writer(sink, lines),
            dropped: Arc::default(),
        }
    }

    /// Lines dropped because the queue to the writer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn spawn_writer(sink: Box<dyn Write + Send>, lines: usize) -> Option<SyncSender<String>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(lines.max(1));
    match std::thread::Builder::new()
        .name("console-action".into())
        .spawn(move || write_lines(sink, &rx))
    {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!("console action: cannot start its writer thread ({e}): output dropped");
            None
        }
    }
}

/// Writes lines as they come, flushing when the queue runs empty; ends when every sender
/// is gone.
fn write_lines(mut sink: Box<dyn Write + Send>, rx: &Receiver<String>) {
    while let Ok(line) = rx.recv() {
        let _ = sink.write_all(line.as_bytes());
        while let Ok(line) = rx.try_recv() {
            let _ = sink.write_all(line.as_bytes());
        }
        let _ = sink.flush();
    }
}

impl Action for Console {
    fn name(&self) -> &str {
        "console"
    }

    fn run(&self, out: &Map, env: &mut ActionEnv<'_>) -> Result<(), String> {
        let line = format!(
            "[rule action] {}\n\tAction Data: {}\n",
            env.rule,
            Value::Map(out.clone()).to_json()
        );
        let sent = match &self.tx {
            Some(tx) => tx.try_send(line),
            None => Err(TrySendError::Disconnected(line)),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped_total = n,
                        "console action: output not written fast enough, lines dropped"
                    );
                }
                Err(match e {
                    TrySendError::Full(_) => "console: output queue full, line dropped".into(),
                    TrySendError::Disconnected(_) => "console: no writer, line dropped".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_rules::MapInput;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// A sink that blocks every write until the gate opens, like a stdout nobody reads.
    #[derive(Clone)]
    struct Gated {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !*open {
                open = cv.wait(open).unwrap_or_else(|e| e.into_inner());
            }
            self.out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_never_blocks_the_caller_and_drops_are_counted() {
        let sink = Gated {
            open: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
            out: Arc::default(),
        };
        let console = Console::bounded(Box::new(sink.clone()), 4);
        let input = MapInput::default();
        let mut acks = Vec::new();
        let mut ok = 0;
        let started = Instant::now();
        for i in 0..100 {
            let mut env = ActionEnv {
                rule: "r",
                msg: None,
                input: &input,
                acks: &mut acks,
            };
            let out = Map::from_iter([("n".to_owned(), Value::Int(i))]);
            if console.run(&out, &mut env).is_ok() {
                ok += 1;
            }
        }
        // The writer is stuck on its first line; the caller went on regardless.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!((4..=5).contains(&ok), "{ok} lines queued");
        assert_eq!(console.dropped(), 100 - ok);
        // Once the output moves again, every queued line is written, in order.
        {
            let (lock, cv) = &*sink.open;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&sink.out.lock().unwrap()).into_owned();
            if text.matches("[rule action] r").count() == ok as usize {
                assert!(text.starts_with("[rule action] r\n\tAction Data: {\"n\":0}\n"));
                break;
            }
            assert!(Instant::now() < deadline, "lines not written: {text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
