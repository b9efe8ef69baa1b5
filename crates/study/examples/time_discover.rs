//! One discovery through the library, timed: what
//! `python/bench/bench_discover.py` compares the Python call with.
//!
//! ```sh
//! cargo run --release -p modcirc-study --example time_discover -- MODEL TASK [DATA_DIR] [RUNS]
//! ```
//!
//! Prints the wall time of each `discover_checkpoint` call (pairing the
//! task's images and the discovery, with the study's settings), one per
//! line. With RUNS `-` it runs one call per line read from standard input,
//! so that a caller can alternate its own calls with these, one by one.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use modcirc_bimt::checkpoint;
use modcirc_dataset::{ChecksumPolicy, Mnist, Task};
use modcirc_store::listing::sha256_file;
use modcirc_study::discovery::{discover_checkpoint, DiscoverySettings};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(model), Some(task)) = (args.first(), args.get(1)) else {
        return Err("usage: time_discover MODEL TASK [DATA_DIR] [RUNS]".into());
    };
    let dir = PathBuf::from(args.get(2).map_or("fixtures/mnist", String::as_str));
    let on_request = args.get(3).is_some_and(|r| r == "-");
    let runs: usize = if on_request { usize::MAX } else { args.get(3).map_or(Ok(1), |r| r.parse())? };
    let path = PathBuf::from(model);
    let ck = checkpoint::load(&path, None)?;
    let mnist = Mnist::load(&dir, ChecksumPolicy::Auto)?;
    let sha = sha256_file(&path)?;
    let task = Task::parse(task)?;
    let settings = DiscoverySettings::default();
    let mut requests = std::io::stdin().lines();
    for _ in 0..runs {
        if on_request && requests.next().transpose()?.is_none() {
            break;
        }
        let t = Instant::now();
        let out = discover_checkpoint(&mnist, &ck, &path, &sha, &task, &settings, &mut |_| {})?;
        let seconds = t.elapsed().as_secs_f64();
        std::hint::black_box(out);
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{seconds}")?;
        stdout.flush()?;
    }
    Ok(())
}
