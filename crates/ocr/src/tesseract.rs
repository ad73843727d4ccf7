//! Tesseract 5 run as a command-line tool (`tesseract stdin stdout ... tsv`): the image on
//! stdin, word boxes and confidences on stdout. No library bindings, so nothing to build
//! against: installing `tesseract-ocr` (+ language data) is enough.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docpipe_core::{Document, ErrorCode, MediaType, Ocr, Page, StageError, TextSource};
use tokio::sync::{OnceCell, Semaphore};

use super::process::{Invocation, RunError, run};
use super::tsv::{RecognisedImage, parse_tsv};
use docpipe_core::image_info::image_info;

/// What to tell a user whose machine has no OCR engine.
pub const INSTALL_HINT: &str =
    "install Tesseract 5: apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu";

/// Bounds on an image before it reaches the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width x height accepted, in pixels (an A4 page at 600 dpi is ~35 MP).
    pub max_pixels: u64,
    /// Longest side accepted, in pixels.
    pub max_side: u32,
    /// Smallest side that can hold readable text.
    pub min_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_side: 16_384,
            min_side: 16,
        }
    }
}

/// Raster OCR with the `tesseract` program, one process per image.
#[derive(Debug, Clone)]
pub struct TesseractOcr {
    program: PathBuf,
    languages: Vec<String>,
    /// Tesseract's page segmentation mode (`--psm`).
    psm: u8,
    timeout: Duration,
    max_output_bytes: usize,
    memory_bytes: u64,
    limits: ImageLimits,
    permits: Arc<Semaphore>,
    /// The `-l` argument, worked out once from what is installed.
    resolved_languages: Arc<OnceCell<String>>,
}

impl TesseractOcr {
    /// `program` is the executable (`"tesseract"` searches `PATH`). Defaults: German and
    /// English, 120 s per image, 64 MiB of output, 2 GiB of address space, one process per
    /// CPU.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            program: program.into(),
            languages: vec!["deu".into(), "eng".into()],
            psm: 3,
            timeout: Duration::from_secs(120),
            max_output_bytes: 64 * 1024 * 1024,
            memory_bytes: 2 * 1024 * 1024 * 1024,
            limits: ImageLimits::default(),
            permits: Arc::new(Semaphore::new(cpus)),
            resolved_languages: Arc::new(OnceCell::new()),
        }
    }

    /// Languages in order of preference (Tesseract codes); the installed ones are used.
    pub fn with_languages<S: Into<String>>(mut self, langs: impl IntoIterator<Item = S>) -> Self {
        self.languages = langs.into_iter().map(Into::into).collect();
        self.resolved_languages = Arc::new(OnceCell::new());
        self
    }

    /// Tesseract's page segmentation mode (0..=13; see `tesseract --help-psm`).
    pub fn with_psm(mut self, psm: u8) -> Self {
        self.psm = psm.min(13);
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_image_limits(mut self, limits: ImageLimits) -> Self {
        self.limits = limits;
        self
    }

    /// At most `n` (at least 1) engine processes at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn invocation(&self, args: Vec<OsString>) -> Invocation<'_> {
        Invocation {
            program: &self.program,
            args,
            // Tesseract's OpenMP threads make one page slower on a busy machine (measured:
            // 5 s vs 1.3 s on 2 CPUs); parallelism comes from several jobs instead.
            env: vec![("OMP_THREAD_LIMIT", "1")],
            timeout: self.timeout,
            max_output_bytes: self.max_output_bytes,
            memory_bytes: self.memory_bytes,
            cpu_seconds: self.timeout.as_secs().max(1),
        }
    }

    fn missing(&self) -> StageError {
        StageError::new(
            ErrorCode::UnsupportedDocument,
            format!(
                "a scanned page needs raster OCR and no OCR engine is installed \
                 ({} was not found); {INSTALL_HINT}",
                self.program.display()
            ),
        )
    }

    /// Whether the engine runs here (it answers `--version`).
    pub async fn available(&self) -> bool {
        let inv = self.invocation(vec!["--version".into()]);
        run(&inv, Vec::new()).await.is_ok()
    }

    /// The `-l` value: the wanted languages that are installed, joined with `+`.
    async fn languages(&self) -> Result<String, StageError> {
        self.resolved_languages
            .get_or_try_init(|| async {
                let inv = self.invocation(vec!["--list-langs".into()]);
                let out = match run(&inv, Vec::new()).await {
                    Ok(out) => out,
                    Err(RunError::NotFound) => return Err(self.missing()),
                    Err(e) => {
                        return Err(StageError::unavailable(e.describe(
                            "tesseract --list-langs",
                            self.timeout,
                            self.max_output_bytes,
                        )));
                    }
                };
                let listed = String::from_utf8_lossy(&out);
                let installed: Vec<&str> = listed
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let chosen: Vec<&str> = self
                    .languages
                    .iter()
                    .map(String::as_str)
                    .filter(|l| installed.contains(l))
                    .collect();
                if chosen.is_empty() {
                    return Err(StageError::new(
                        ErrorCode::UnsupportedDocument,
                        format!(
                            "Tesseract has none of the languages {} installed; {INSTALL_HINT}",
                            self.languages.join(", ")
                        ),
                    ));
                }
                Ok(chosen.join("+"))
            })
            .await
            .cloned()
    }

    /// Recognises one PNG or JPEG. `dpi` is the resolution when the caller knows it (a
    /// rendered PDF page); otherwise the image's header is asked.
    pub async fn recognize_image(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
        dpi: Option<u32>,
    ) -> Result<RecognisedImage, StageError> {
        let unreadable = |m: String| StageError::new(ErrorCode::DocumentUnreadable, m);
        let info = image_info(&bytes, media_type).ok_or_else(|| {
            unreadable(format!(
                "the {} image's header is damaged",
                media_type.as_str()
            ))
        })?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        let l = &self.limits;
        if pixels > l.max_pixels || info.width.max(info.height) > l.max_side {
            return Err(StageError::new(
                ErrorCode::FileTooLarge,
                format!(
                    "the image is {} x {} pixels; at most {} pixels and {} per side are read \
                     (a page scanned at 300 dpi is about 2500 x 3500)",
                    info.width, info.height, l.max_pixels, l.max_side
                ),
            ));
        }
        if info.width.min(info.height) < l.min_side {
            return Err(unreadable(format!(
                "the image is {} x {} pixels, too small to hold text",
                info.width, info.height
            )));
        }
        let langs = self.languages().await?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StageError::unavailable("the OCR process pool is closed"))?;
        let mut args: Vec<OsString> = vec![
            "stdin".into(),
            "stdout".into(),
            "-l".into(),
            langs.into(),
            "--psm".into(),
            self.psm.to_string().into(),
        ];
        if let Some(dpi) = dpi.or(info.dpi) {
            args.push("--dpi".into());
            args.push(dpi.to_string().into());
        }
        args.push("tsv".into());
        let inv = self.invocation(args);
        let out = match run(&inv, bytes).await {
            Ok(out) => out,
            Err(RunError::NotFound) => return Err(self.missing()),
            Err(e @ RunError::Spawn(_)) => {
                return Err(StageError::unavailable(e.describe(
                    "tesseract",
                    self.timeout,
                    self.max_output_bytes,
                )));
            }
            Err(e) => {
                return Err(unreadable(format!(
                    "OCR of the image failed: {}",
                    e.describe("tesseract", self.timeout, self.max_output_bytes)
                )));
            }
        };
        let tsv = String::from_utf8_lossy(&out);
        parse_tsv(&tsv).map_err(|e| unreadable(format!("OCR of the image failed: {e}")))
    }

    /// The document model of a single image: one page sized in points from the image's
    /// resolution (72 dpi, one pixel per point, when the file records none).
    pub async fn recognize_page(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<Document, StageError> {
        let dpi = image_info(&bytes, media_type).and_then(|i| i.dpi);
        let r = self.recognize_image(bytes, media_type, None).await?;
        let scale = 72.0 / dpi.unwrap_or(72) as f32;
        Ok(Document {
            source: TextSource::Ocr,
            pages: vec![Page {
                number: 1,
                width: r.width_px as f32 * scale,
                height: r.height_px as f32 * scale,
                lines: r.lines,
            }],
        })
    }
}

#[async_trait]
impl Ocr for TesseractOcr {
    /// Images only; PDFs go through [`super::LayeredOcr`].
    async fn recognize(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<Document, StageError> {
        match media_type {
            MediaType::Png | MediaType::Jpeg => self.recognize_page(bytes, media_type).await,
            MediaType::Pdf => Err(StageError::new(
                ErrorCode::UnsupportedDocument,
                "TesseractOcr reads images; PDFs go through LayeredOcr",
            )),
        }
    }
}
