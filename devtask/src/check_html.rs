//! `cargo devtask check-html DIR`: opens a run's `REPORT.html` in headless
//! Chromium and checks what it rendered (what CI runs after the smoke
//! profile): every neuron of the chosen model drawn, a linked view showing
//! exactly its discovery's circuit, no script error, a screenshot that is
//! not blank.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Args;
use modcirc_present::check::MAX_RESULTS_BYTES;
use modcirc_present::html::embedded_data;
use modcirc_store::read::read_inside;
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::Results;

#[derive(Args, Debug)]
pub struct CheckHtmlArgs {
    /// The output directory of `cargo xtask reproduce`.
    pub dir: PathBuf,
    /// The browser; default the first of chromium, chromium-browser, google-chrome on PATH.
    #[arg(long)]
    pub chromium: Option<PathBuf>,
    /// Also check a one-model page (`cargo xtask discover --html FILE`).
    #[arg(long, value_name = "FILE")]
    pub model_page: Option<PathBuf>,
    /// Seconds each browser run may take before it is killed, 1 to 3 600.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub timeout: u64,
}

/// The browser's own time budget for the page's script, in virtual milliseconds.
const VIRTUAL_TIME_MS: u32 = 15_000;
/// The least variance of a screenshot's grey levels (0-255) that is not a blank page.
const MIN_VARIANCE: f64 = 50.0;

fn find_chromium(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(p) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
    }
    bail!("no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install chromium), or name it with --chromium")
}

/// The most a browser run may write to its standard output or error
/// (`--dump-dom` of the full study's REPORT.html is about 5 MB).
const MAX_OUTPUT_BYTES: u64 = 256 << 20;

/// The environment variable that marks a browser run's processes (its
/// value is the run's own random token), so that those which left its
/// process group are found and killed too.
const RUN_MARK: &str = "MODCIRC_CHECK_HTML_RUN";

/// Runs the browser headless on `url` with `extra` arguments, killed after
/// `timeout`; its stdout. Its output goes to files, not pipes: a helper
/// that escaped the browser's process group (`setsid`) and holds them open
/// cannot make this wait; every process carrying the run's mark is killed
/// when the browser ends.
fn chromium(browser: &Path, profile: &Path, url: &str, extra: &[String], timeout: Duration) -> anyhow::Result<String> {
    let out = TempDir::new("modcirc-chromium-out")?;
    let file = |name: &str| -> anyhow::Result<std::fs::File> {
        let p = out.path().join(name);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .with_context(|| format!("creating {}", p.display()))
    };
    let (stdout, stderr) = (file("stdout")?, file("stderr")?);
    let mark = modcirc_store::atomic::random_hex(16);
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_MS}"))
        .args(extra)
        .arg(url)
        .env(RUN_MARK, &mark)
        .stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("running {}", browser.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if started.elapsed() > timeout => {
                // The whole group: a browser's helpers hold its files too.
                // SAFETY: signalling a process group this run created.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Err(anyhow::anyhow!(
                    "{} did not finish within {} s (--timeout): killed",
                    browser.display(),
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(anyhow::Error::new(e).context("waiting for the browser")),
        }
    };
    kill_marked(&mark);
    let status = status?;
    let read = |mut f: std::fs::File, what: &str| -> anyhow::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let len = f.metadata()?.len();
        ensure!(
            len <= MAX_OUTPUT_BYTES,
            "{} wrote {len} bytes to its {what}, more than {MAX_OUTPUT_BYTES}",
            browser.display()
        );
        f.rewind()?;
        let mut buf = Vec::with_capacity(len as usize);
        f.take(MAX_OUTPUT_BYTES).read_to_end(&mut buf)?;
        Ok(buf)
    };
    let (stdout, stderr) = (read(stdout, "standard output")?, read(stderr, "standard error")?);
    ensure!(
        status.success(),
        "{} exited with {}: {}",
        browser.display(),
        status,
        String::from_utf8_lossy(&stderr).lines().last().unwrap_or("")
    );
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Kills every process of this user whose environment carries the run's
/// mark (a browser's helpers, those that left its group included).
fn kill_marked(mark: &str) {
    let needle = format!("{RUN_MARK}={mark}");
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // Another user's process is not readable: not ours to kill anyway.
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            // SAFETY: signalling a process this run started (it carries the
            // run's random mark).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The value of attribute `name` in an element's opening tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// What a rendered page shows: every neuron's id and classes, the error box's
/// text, and whether the script ran to its end.
struct Rendered {
    neurons: Vec<(String, String)>,
    errors: String,
    finished: bool,
}

fn parse_dom(dom: &str) -> Rendered {
    // Neurons are circles; the input's pixels, drawn as the image, squares.
    let neurons = dom
        .split('<')
        .filter(|t| t.starts_with("circle ") || t.starts_with("rect "))
        .filter_map(|c| {
            let tag = &c[..c.find('>')?];
            let class = attribute(tag, "class")?;
            class.split(' ').any(|k| k == "neuron").then(|| (attribute(tag, "id").unwrap_or("").into(), class.into()))
        })
        .collect();
    let errors = dom
        .find("id=\"errors\"")
        .and_then(|i| {
            let rest = &dom[i..];
            let open = rest.find('>')? + 1;
            Some(rest[open..open + rest[open..].find("</div>")?].trim().to_string())
        })
        .unwrap_or_else(|| "no error box in the page".into());
    let finished = dom.contains("data-rendered=\"yes\"");
    Rendered { neurons, errors, finished }
}

/// The variance of a PNG's grey levels.
fn grey_variance(png: &[u8]) -> anyhow::Result<f64> {
    let decoder = png::Decoder::new(png);
    let mut reader = decoder.read_info().context("reading the screenshot")?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).context("decoding the screenshot")?;
    let channels = info.color_type.samples();
    ensure!(info.bit_depth == png::BitDepth::Eight && channels >= 3, "unexpected screenshot format {info:?}");
    let grey: Vec<f64> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let mean = grey.iter().sum::<f64>() / grey.len() as f64;
    Ok(grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / grey.len() as f64)
}

pub fn run(args: CheckHtmlArgs) -> anyhow::Result<()> {
    let browser = find_chromium(&args.chromium)?;
    let dir = std::fs::canonicalize(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    let page = dir.join("REPORT.html");
    // Only the run's own files, as results.json lists them: relative paths
    // inside it, regular files reached through no link, read no further
    // than their recorded size.
    let json = read_inside(&dir, "results.json", MAX_RESULTS_BYTES)?;
    let results: Results =
        serde_json::from_slice(&json).with_context(|| format!("reading {}", dir.join("results.json").display()))?;
    let listed = |path: &str| -> anyhow::Result<Vec<u8>> {
        let record = results.files.iter().find(|f| f.path == path);
        Ok(record.with_context(|| format!("results.json does not list {path}"))?.read(&dir)?)
    };
    let html = String::from_utf8(listed("REPORT.html")?).with_context(|| format!("{} is not UTF-8", page.display()))?;
    let data = embedded_data(&html)?;
    let profile = TempDir::new("modcirc-chromium")?;
    let timeout = Duration::from_secs(args.timeout);
    let url = |fragment: &str| format!("{}#{fragment}", file_url(&page));

    // A linked view: BIMT's line circuit, as the fragment names it.
    let (regime, task) = ("bimt", "line");
    let model = data
        .models
        .iter()
        .find(|m| m.regime == regime && m.seed == Some(0))
        .with_context(|| format!("{} holds no {regime} seed-0 model", page.display()))?;
    let view = url(&format!("regime={regime}&task={task}"));
    let dom = chromium(&browser, profile.path(), &view, &["--dump-dom".into()], timeout)?;
    let shown = parse_dom(&dom);
    ensure!(shown.errors.is_empty(), "the page reported a script error: {}", shown.errors);
    ensure!(shown.finished, "the page's script did not run to its end");
    let expected: usize = model.sizes.iter().sum();
    ensure!(
        shown.neurons.len() == expected,
        "the page drew {} neurons, the {regime} model has {expected}",
        shown.neurons.len()
    );
    let discovery = results
        .discoveries
        .iter()
        .find(|d| d.regime.to_string() == regime && d.seed == 0 && d.task == task)
        .context("results.json has no BIMT seed-0 line discovery")?;
    let disc: DiscoverOutput = serde_json::from_slice(&listed(&discovery.path)?)?;
    let mut want: Vec<String> = disc
        .report
        .selection
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(h, set)| set.iter().map(move |i| format!("n-{}-{i}", h + 1)))
        .collect();
    let mut got: Vec<String> = shown
        .neurons
        .iter()
        .filter(|(_, class)| class.split(' ').any(|k| k == "in-circuit"))
        .map(|n| n.0.clone())
        .collect();
    want.sort();
    got.sort();
    ensure!(got == want, "the page highlights {got:?}, the discovery keeps {want:?}");

    // The tables beside Table 3 (across seeds, K, structure) are shown.
    for t in &data.tables {
        ensure!(dom.contains(&t.title), "{}: the table {:?} is not shown", page.display(), t.title);
    }
    // The input drawn as its 28 x 28 image: one square per pixel.
    let pixels = shown.neurons.iter().filter(|(id, _)| id.starts_with("n-0-")).count();
    ensure!(pixels == model.sizes[0], "the page drew {pixels} input pixels of {}", model.sizes[0]);
    ensure!(dom.contains("<rect ") && dom.contains("id=\"n-0-0\""), "the input is not drawn as a pixel map");
    // A view the link asks for that does not exist is said, not replaced silently.
    let dom = chromium(
        &browser,
        profile.path(),
        &url("regime=bimt&seed=0&task=line&circuit=nonesuch"),
        &["--dump-dom".into()],
        timeout,
    )?;
    ensure!(dom.contains("There is no circuit"), "#circuit=nonesuch fell back to another circuit without saying so");
    if let Some(p) = &args.model_page {
        model_page(&browser, profile.path(), p, timeout)?;
    }

    // A screenshot of the default view.
    let shot = profile.path().join("shot.png");
    let flags = [format!("--screenshot={}", shot.display()), "--window-size=1280,1000".into()];
    chromium(&browser, profile.path(), &url(""), &flags, timeout)?;
    let variance = grey_variance(&std::fs::read(&shot).with_context(|| format!("reading {}", shot.display()))?)?;
    ensure!(
        variance > MIN_VARIANCE,
        "the screenshot is blank: grey-level variance {variance:.1} (floor {MIN_VARIANCE})"
    );
    println!(
        "{}: rendered in {} without a script error; {} neurons drawn; #regime={regime}&task={task} highlights the discovery's {} neurons; screenshot grey-level variance {variance:.0}",
        page.display(),
        browser.display(),
        shown.neurons.len(),
        got.len()
    );
    Ok(())
}

/// A one-model page: it renders without a script error, draws every
/// neuron of its model (the input as pixels) and shows its tables.
fn model_page(browser: &Path, profile: &Path, page: &Path, timeout: Duration) -> anyhow::Result<()> {
    let page = std::fs::canonicalize(page).with_context(|| format!("{}", page.display()))?;
    let html = std::fs::read_to_string(&page).with_context(|| format!("reading {}", page.display()))?;
    let data = embedded_data(&html)?;
    ensure!(data.models.len() == 1, "{}: a model page holds {} models", page.display(), data.models.len());
    let dom = chromium(browser, profile, &file_url(&page), &["--dump-dom".into()], timeout)?;
    let shown = parse_dom(&dom);
    ensure!(shown.errors.is_empty(), "{}: the page reported a script error: {}", page.display(), shown.errors);
    ensure!(shown.finished, "{}: the page's script did not run to its end", page.display());
    let expected: usize = data.models[0].sizes.iter().sum();
    ensure!(shown.neurons.len() == expected, "{}: drew {} neurons of {expected}", page.display(), shown.neurons.len());
    for t in &data.tables {
        ensure!(dom.contains(&t.title), "{}: the table {:?} is not shown", page.display(), t.title);
    }
    let note = view_note(&dom);
    if data.models[0].seed.is_none() {
        // A model whose file says no seed: none is shown, none invented.
        ensure!(!note.contains(" seed "), "{}: the view names a seed its model does not have: {note}", page.display());
        ensure!(
            dom.contains("<label hidden=\"\">seed") || dom.contains("<label hidden=\"hidden\">seed"),
            "{}: the seed menu is shown for a model without a seed",
            page.display()
        );
    }
    // Every circuit the page holds is drawn when chosen, each its own neurons.
    let model = &data.models[0];
    let mut kinds = Vec::new();
    for (task, t) in &model.tasks {
        for (kind, circuit) in &t.circuits {
            let view = format!("{}#regime={}&task={task}&circuit={kind}", file_url(&page), model.regime);
            let dom = chromium(browser, profile, &view, &["--dump-dom".into()], timeout)?;
            let shown = parse_dom(&dom);
            ensure!(shown.errors.is_empty() && shown.finished, "{view}: {}", shown.errors);
            ensure!(!dom.contains("There is no circuit"), "{view}: the page did not show the {kind} circuit");
            let lit = shown.neurons.iter().filter(|(_, c)| c.split(' ').any(|k| k == "in-circuit")).count();
            let want: usize = circuit.nodes.iter().map(Vec::len).sum();
            ensure!(lit == want, "{view}: {lit} neurons drawn in the circuit, it holds {want}");
            kinds.push(kind.clone());
        }
    }
    println!(
        "{}: rendered without a script error; {} neurons drawn (the input as pixels); {} tables shown; seed {}; circuits drawn: {}",
        page.display(),
        shown.neurons.len(),
        data.tables.len(),
        model.seed.map_or("none shown (its file says none)".into(), |s| s.to_string()),
        kinds.join(", ")
    );
    Ok(())
}

/// The text of the note above the network.
fn view_note(dom: &str) -> String {
    dom.find("id=\"view-note\"")
        .and_then(|i| {
            let rest = &dom[i..];
            let open = rest.find('>')? + 1;
            Some(rest[open..open + rest[open..].find("</p>")?].to_string())
        })
        .unwrap_or_default()
}

/// A private directory made for this run (exclusively, mode 0700, under
/// an unpredictable name, as mkdtemp makes one), removed when dropped,
/// whatever the check's outcome.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for _ in 0..8 {
            let d = base.join(format!("{prefix}-{}", modcirc_store::atomic::random_hex(8)));
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => return Ok(TempDir(d)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {}", d.display()))),
            }
        }
        bail!("no free temporary directory name under {}", base.display())
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `path` as a `file://` URL: every byte but unreserved ones and `/`
/// percent-encoded, so that `#`, `?`, `%`, quotes and spaces in a
/// directory's name stay part of the path.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dom_gives_neurons_their_classes_and_the_error_box_its_text() {
        let dom = r#"<body data-rendered="yes"><div id="errors" hidden=""></div><svg>
            <circle cx="1" cy="2" r="3" class="neuron input" id="n-0-0"></circle>
            <circle cx="1" cy="2" r="3" class="neuron in-circuit dead" id="n-1-4"></circle>
            <circle cx="1" cy="2" r="3" class="curve-point"></circle></svg></body>"#;
        let r = parse_dom(dom);
        assert_eq!(r.neurons.len(), 2, "a curve's point is not a neuron");
        assert_eq!(r.neurons[1], ("n-1-4".to_string(), "neuron in-circuit dead".to_string()));
        assert!(r.errors.is_empty() && r.finished);
        let broken = dom.replace(r#"hidden=""></div>"#, r#">error: x is not defined (line 3)</div>"#);
        assert_eq!(parse_dom(&broken).errors, "error: x is not defined (line 3)");
        assert!(!parse_dom("<body></body>").finished);
    }

    fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend([pixel(x, y); 3]);
            }
        }
        enc.write_header().unwrap().write_image_data(&data).unwrap();
        out
    }

    #[test]
    fn a_blank_screenshot_has_no_variance_and_a_drawn_one_has_some() {
        assert_eq!(grey_variance(&png(20, 10, |_, _| 255)).unwrap(), 0.0);
        let stripes = grey_variance(&png(20, 10, |x, _| if x % 4 == 0 { 0 } else { 255 })).unwrap();
        assert!(stripes > MIN_VARIANCE, "{stripes}");
    }

    #[test]
    fn file_urls_keep_odd_names_in_the_path() {
        assert_eq!(
            file_url(Path::new("/tmp/a b#c?d%e'f/REPORT.html")),
            "file:///tmp/a%20b%23c%3Fd%25e%27f/REPORT.html"
        );
    }

    #[test]
    fn a_browser_that_hangs_is_killed_after_the_timeout_and_the_profile_removed() {
        let dir = TempDir::new("modcirc-hang").unwrap();
        let fake = dir.path().join("browser");
        std::fs::write(&fake, "#!/bin/sh\nsleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = Instant::now();
        let e = chromium(&fake, dir.path(), "file:///x", &[], Duration::from_secs(1)).unwrap_err().to_string();
        assert!(e.contains("did not finish within 1 s") && t.elapsed() < Duration::from_secs(20), "{e}");
        let kept = dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists());
    }

    /// The processes whose command line has `word`.
    fn running(word: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).replace('\0', " ").contains(word))
            .count()
    }

    #[test]
    fn a_helper_that_leaves_the_group_holding_the_output_neither_hangs_the_check_nor_outlives_it() {
        let dir = TempDir::new("modcirc-escape").unwrap();
        use std::os::unix::fs::PermissionsExt;
        // One that hangs, one that answers: each leaves a helper in its
        // own session holding standard output and error open.
        for (body, wants) in [("sleep 30", "did not finish"), ("echo '<html>ok</html>'", "ok")] {
            let word = format!("{}", 3000 + body.len());
            let fake = dir.path().join(format!("browser-{}", body.len()));
            std::fs::write(&fake, format!("#!/bin/sh\nsetsid sleep {word} &\n{body}\n")).unwrap();
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            let t = Instant::now();
            let got = chromium(&fake, dir.path(), "file:///x", &[], Duration::from_secs(2));
            let text = match got {
                Ok(s) => s,
                Err(e) => e.to_string(),
            };
            assert!(text.contains(wants) && t.elapsed() < Duration::from_secs(20), "{body}: {text}");
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(running(&format!("sleep {word}")), 0, "{body}: the escaped helper was killed");
        }
    }
}
