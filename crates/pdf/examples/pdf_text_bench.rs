//! Extracts every PDF given on the command line N times in-process and prints pages/s.
//! `pdf_text_bench [-n N] [--dump | --words] FILE...`; `--dump` prints each file's text once,
//! `--words` each word with its box in points.

use std::time::Instant;

use docpipe_pdf::{PdfLimits, extract_document};

fn main() -> std::process::ExitCode {
    let mut reps = 5usize;
    let mut dump = false;
    let mut boxes = false;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-n" => reps = args.next().and_then(|n| n.parse().ok()).unwrap_or(reps),
            "--dump" => dump = true,
            "--words" => boxes = true,
            _ => files.push(a),
        }
    }
    let mut inputs = Vec::new();
    for f in &files {
        match std::fs::read(f) {
            Ok(b) => inputs.push((f.clone(), b)),
            Err(e) => {
                eprintln!("{f}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let limits = PdfLimits::default();
    if boxes {
        for (name, bytes) in &inputs {
            let Ok(d) = extract_document(bytes, &limits) else {
                continue;
            };
            for p in &d.pages {
                println!("== {name} page {}", p.number);
                for l in &p.lines {
                    for w in &l.words {
                        let b = w.bbox;
                        println!(
                            "{:8.2} {:8.2} {:8.2} {:8.2} {}",
                            b.x0 * p.width,
                            b.y0 * p.height,
                            b.x1 * p.width,
                            b.y1 * p.height,
                            w.text
                        );
                    }
                }
            }
        }
        return std::process::ExitCode::SUCCESS;
    }
    if dump {
        for (name, bytes) in &inputs {
            match extract_document(bytes, &limits) {
                Ok(d) => println!("== {name}\n{}", d.text()),
                Err(e) => println!("== {name}: {e}"),
            }
        }
        return std::process::ExitCode::SUCCESS;
    }
    let start = Instant::now();
    let (mut pages, mut words, mut failed) = (0usize, 0usize, 0usize);
    for _ in 0..reps {
        for (_, bytes) in &inputs {
            match extract_document(bytes, &limits) {
                Ok(d) => {
                    pages += d.pages.len();
                    words += d.word_count();
                }
                Err(_) => failed += 1,
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "files={} reps={reps} pages={pages} words={words} failed={failed} seconds={secs:.3} pages_per_s={:.1}",
        inputs.len(),
        pages as f64 / secs.max(1e-9)
    );
    std::process::ExitCode::SUCCESS
}
