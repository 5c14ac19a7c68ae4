//! `run-batch`'s input, read a line at a time so that memory stays bounded
//! whatever its size.
//!
//! A regular file (`--input FILE`, or stdin redirected from one) is checked
//! whole in a first pass, so a bad line is refused before anything is sent;
//! a pipe cannot be read twice, so each of its lines is checked just before
//! its own call.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub type Parameters = Map<String, Value>;

/// Lines read ahead of the calls: enough to keep the workers fed.
const READ_AHEAD: usize = 16;

/// The items, as a reader thread parses them.
pub struct Input {
    /// Items in input order; an `Err` (a bad line, a read error) is last.
    pub items: mpsc::Receiver<Result<Parameters, String>>,
    /// How many items there are: known at once for a checked file, at the
    /// end of the input for a pipe.
    total: Option<usize>,
    read: Arc<AtomicUsize>,
    ended: Arc<AtomicBool>,
}

impl Input {
    /// Opens `path`, or stdin; a regular file is checked whole first.
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let (reader, total): (Box<dyn BufRead + Send>, _) = match path {
            Some(path) => {
                let name = path.display().to_string();
                let file = File::open(path).map_err(|e| format!("cannot read {name}: {e}"))?;
                checked(file, &name)?
            }
            None => match stdin_file() {
                Some(file) => checked(file, "stdin")?,
                None => (Box::new(BufReader::new(std::io::stdin())), None),
            },
        };
        let (tx, items) = mpsc::channel(READ_AHEAD);
        let read = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicBool::new(false));
        let (count, end) = (read.clone(), ended.clone());
        // A plain thread: a blocked read of stdin must not hold up the
        // runtime's shutdown.
        std::thread::spawn(move || {
            let result = each_item(reader, |parameters| {
                count.fetch_add(1, Ordering::AcqRel);
                tx.blocking_send(Ok(parameters)).is_ok()
            });
            match result {
                Ok(whole) => end.store(whole, Ordering::Release),
                Err(message) => {
                    let _ = tx.blocking_send(Err(message));
                }
            }
        });
        Ok(Self {
            items,
            total,
            read,
            ended,
        })
    }

    /// The number of items, once known.
    pub fn total(&self) -> Option<usize> {
        self.total.or_else(|| {
            self.ended
                .load(Ordering::Acquire)
                .then(|| self.read.load(Ordering::Acquire))
        })
    }
}

/// A regular file, checked whole and rewound; anything else (a FIFO,
/// `/dev/stdin` on a pipe) is read as a stream.
fn checked(mut file: File, name: &str) -> Result<(Box<dyn BufRead + Send>, Option<usize>), String> {
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok((Box::new(BufReader::new(file)), None));
    }
    let start = file
        .stream_position()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let mut count = 0;
    each_item(BufReader::new(&mut file), |_| {
        count += 1;
        true
    })?;
    file.seek(SeekFrom::Start(start))
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    Ok((Box::new(BufReader::new(file)), Some(count)))
}

/// Stdin as a file, when it is one (`< items.jsonl`): it can be checked
/// before sending, as `--input` is.
#[cfg(unix)]
fn stdin_file() -> Option<File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let file = File::from(fd);
    file.metadata().is_ok_and(|m| m.is_file()).then_some(file)
}

#[cfg(not(unix))]
fn stdin_file() -> Option<File> {
    None
}

/// Calls `item` with each parameters object, in order, until it returns
/// false; true if the whole input was read. Blank lines are skipped; the
/// first bad line is an error naming it (1-based).
fn each_item(
    mut reader: impl BufRead,
    mut item: impl FnMut(Parameters) -> bool,
) -> Result<bool, String> {
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(format!("input line {number}: cannot read: {e}")),
        }
        if line.trim().is_empty() {
            continue;
        }
        let parameters = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(format!(
                    "input line {number}: expected a JSON object of parameters, got {}",
                    json_type(&other)
                ));
            }
            Err(e) => return Err(format!("input line {number}: not JSON: {e}")),
        };
        if !item(parameters) {
            return Ok(false);
        }
    }
    Ok(false)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
