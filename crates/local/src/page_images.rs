//! Document pages as images for `docpipe serve`'s review page: image documents as they
//! are, PDF pages rendered by the same renderer OCR uses (poppler's `pdftoppm`, bounded in
//! time and memory; a scan's embedded JPEG where poppler is missing).

use std::sync::Arc;

use async_trait::async_trait;
use docpipe_core::ports::Result;
use docpipe_core::{
    ErrorCode, Job, MediaType, ObjectStore, PageImage, PageImages, StoredImagePages,
};
use docpipe_ocr::PdfRenderer;

/// The longer side of a rendered page, in pixels: sharp enough to read on a screen.
const PAGE_PIXELS: u32 = 1600;

/// Pages of PDFs rendered, of images as stored.
pub struct RenderedPages {
    objects: Arc<dyn ObjectStore>,
    renderer: PdfRenderer,
}

impl RenderedPages {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            objects,
            renderer: PdfRenderer::new("pdftoppm"),
        }
    }
}

#[async_trait]
impl PageImages for RenderedPages {
    async fn page_image(&self, job: &Job, page: u32) -> Result<Option<PageImage>> {
        if job.media_type != Some(MediaType::Pdf) {
            return StoredImagePages(Arc::clone(&self.objects))
                .page_image(job, page)
                .await;
        }
        let Some(key) = &job.keys.document else {
            return Ok(None);
        };
        if page == 0 || job.cost.pages != 0 && page > job.cost.pages {
            return Ok(None);
        }
        let Some(pdf) = self.objects.get(key).await? else {
            return Ok(None);
        };
        match self.renderer.render_page_fit(&pdf, page, PAGE_PIXELS).await {
            Ok(image) => Ok(Some(PageImage {
                media_type: image.media_type,
                bytes: image.bytes,
            })),
            // A page the renderer cannot draw is a page without an image, not an error.
            Err(e) if e.code == ErrorCode::DocumentUnreadable => Ok(None),
            Err(e) => Err(e),
        }
    }
}
