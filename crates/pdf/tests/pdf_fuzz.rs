//! Property test of the PDF reader that runs inside the worker process: valid PDFs with
//! bits flipped, bytes overwritten, cut short, spliced together, tokens and deep nesting
//! inserted, must give a document or an error, never a panic. The reader runs on a thread
//! with the worker's stack size, so unbounded recursion would abort the test run. 64 cases
//! a run keep it to seconds in CI; raise `cases` locally for a longer search.

use std::path::PathBuf;

use docpipe_pdf::worker::WorkerLimits;
use docpipe_pdf::{PdfLimits, extract_document};
use proptest::prelude::*;
use proptest::sample::Index;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Small valid files that reach different parts of the reader: a plain text page, RC4
/// and AES encryption, object streams, and a real invoice (compressed content, embedded
/// fonts, an attachment).
fn seeds() -> Vec<Vec<u8>> {
    vec![
        fixture("pdf/encrypted/plain.pdf"),
        fixture("pdf/encrypted/rc4-128.pdf"),
        fixture("pdf/encrypted/aes-128-objstm.pdf"),
        fixture("pdf/encrypted/aes-256.pdf"),
        fixture("invoices/EN16931_Einfach.pdf"),
    ]
}

/// Fragments that steer a mutation into the parser's structural paths.
const TOKENS: &[&[u8]] = &[
    b" obj ",
    b"endobj\n",
    b"stream\n",
    b"\nendstream",
    b"<<",
    b">>",
    b"[",
    b"]",
    b"(",
    b" 0 R ",
    b"/Kids [3 0 R 2 0 R]",
    b"/Length 0",
    b"xref\n0 1\n",
    b"trailer << /Root 1 0 R >>",
    b"startxref\n0\n",
    b"/Type /ObjStm /N 999999 /First 0",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    /// Copy `len` bytes from one place of the seed `from` over another place.
    Splice {
        from: Index,
        at: Index,
        source: Index,
        len: usize,
    },
    Insert(Index, usize),
    /// Insert `[` or `<<` this many times: deep nesting.
    Nest(Index, bool, usize),
    Delete(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..512)
            .prop_map(|(from, at, source, len)| Mutation::Splice { from, at, source, len }),
        2 => (any::<Index>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        1 => (any::<Index>(), any::<bool>(), 1usize..20_000)
            .prop_map(|(i, dict, n)| Mutation::Nest(i, dict, n)),
        1 => (any::<Index>(), 1usize..256).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(mut pdf: Vec<u8>, seeds: &[Vec<u8>], m: &Mutation) -> Vec<u8> {
    if pdf.is_empty() {
        return pdf;
    }
    let n = pdf.len();
    match m {
        Mutation::FlipBit(i, b) => pdf[i.index(n)] ^= 1 << b,
        Mutation::SetByte(i, b) => pdf[i.index(n)] = *b,
        Mutation::Truncate(i) => pdf.truncate(i.index(n)),
        Mutation::Splice {
            from,
            at,
            source,
            len,
        } => {
            let src = &seeds[source.index(seeds.len())];
            let start = from.index(src.len());
            let chunk = &src[start..(start + len).min(src.len())];
            let at = at.index(n);
            let end = (at + chunk.len()).min(n);
            pdf.splice(at..end, chunk.iter().copied());
        }
        Mutation::Insert(i, t) => {
            let at = i.index(n);
            pdf.splice(at..at, TOKENS[*t].iter().copied());
        }
        Mutation::Nest(i, dict, count) => {
            let at = i.index(n);
            let unit: &[u8] = if *dict { b"<< /A " } else { b"[" };
            pdf.splice(at..at, unit.repeat(*count));
        }
        Mutation::Delete(i, len) => {
            let at = i.index(n);
            pdf.drain(at..(at + len).min(n));
        }
    }
    pdf
}

/// Reads `pdf` as the worker does: on a thread with the worker's stack and limits.
/// `Err` carries the panic message.
fn read_like_the_worker(pdf: Vec<u8>) -> Result<(), String> {
    let limits = WorkerLimits::default();
    let pdf_limits = PdfLimits {
        // Enough for the seeds; keeps a mutated operand loop short.
        max_operations: 2_000_000,
        ..limits.pdf.clone()
    };
    let handle = std::thread::Builder::new()
        .stack_size(limits.stack_bytes)
        .spawn(move || {
            let _ = extract_document(&pdf, &pdf_limits);
        })
        .map_err(|e| e.to_string())?;
    handle.join().map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_pdfs_never_panic(
        seed in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut pdf = seeds[seed.index(seeds.len())].clone();
        for m in &mutations {
            pdf = apply(pdf, &seeds, m);
        }
        let outcome = read_like_the_worker(pdf);
        prop_assert!(outcome.is_ok(), "the reader panicked: {:?}", outcome);
    }
}

/// The unmutated seeds all read (so the mutations start from working files).
#[test]
fn the_seeds_read() {
    for (i, pdf) in seeds().into_iter().enumerate() {
        let doc = extract_document(&pdf, &PdfLimits::default())
            .unwrap_or_else(|e| panic!("seed {i}: {e}"));
        assert!(doc.word_count() > 0, "seed {i}");
    }
}
