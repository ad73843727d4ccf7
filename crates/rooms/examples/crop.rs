// Local diagnostic (not committed): masks of one plan, cropped and enlarged.
use docpipe_rooms::detect::{DetectParams, debug_masks};
use docpipe_rooms::distort::variant;
use docpipe_rooms::eval::render_variant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let path = &a[1];
    let v = variant(&a[2]).unwrap();
    let n: Vec<u32> = a[3].split(',').map(|s| s.parse().unwrap()).collect();
    let zoom: u32 = a.get(5).map(|s| s.parse().unwrap()).unwrap_or(3);
    let text = std::fs::read_to_string(path).unwrap();
    let name = std::path::Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let r = render_variant(&name, &text, &v).unwrap();
    let (w, h) = r.image.dimensions();
    let (ink, walls, bridged, marks) = debug_masks(&r.image, &DetectParams::default());
    let (x0, y0, x1, y1) = (n[0].min(w - 1), n[1].min(h - 1), n[2].min(w), n[3].min(h));
    let mut out = image::RgbImage::new((x1 - x0) * zoom, (y1 - y0) * zoom);
    for y in y0..y1 {
        for x in x0..x1 {
            let i = (y * w + x) as usize;
            let c = if walls[i] {
                [0, 0, 0]
            } else if bridged[i] {
                [0, 200, 0]
            } else if marks[i] {
                [0, 0, 255]
            } else if ink[i] {
                [120, 120, 120]
            } else if r.room_map[i] > 0 {
                [255, 240, 220]
            } else {
                [255, 255, 255]
            };
            for dy in 0..zoom {
                for dx in 0..zoom {
                    out.put_pixel((x - x0) * zoom + dx, (y - y0) * zoom + dy, image::Rgb(c));
                }
            }
        }
    }
    out.save(&a[4]).unwrap();
}
