//! Resizing an 8-bit image whose rows arrive from the top, a few at a time, as a decoder
//! finishes them: the source never has to be whole in memory.
use crate::compat::*;
use crate::convolution::{self, Normalizer16, RowConvolution};
use crate::images::{TypedImage, TypedImageRef};
use crate::pixels::{self, InnerPixel};
use crate::{CpuExtensions, CropBox, ImageView, PixelType, ResizeAlg, ResizeOptions, SrcCropping};

/// Output rows the vertical pass gathers before the horizontal pass takes them (it works on
/// four rows at a time).
const BATCH: usize = 8;

/// Resizes an 8-bit image without alpha (`U8` or `U8x3`) whose rows come in order from the
/// top, giving the same pixels as [`Resizer::resize`](crate::Resizer::resize) with the same
/// options, with the vertical pass first as it does. It keeps only the source rows that
/// output rows still to be made need (the filter's window), so memory does not grow with
/// the source's height.
#[derive(Debug)]
pub struct RowResizer {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    U8(Rows<pixels::U8>),
    U8x3(Rows<pixels::U8x3>),
}

impl RowResizer {
    /// A resizer from `src_width × src_height` to `dst_width × dst_height`, or `None` when
    /// that resize does not go row by row with the same result: other pixel types, an
    /// algorithm other than a convolution, a size that needs only one pass or none, an
    /// explicit crop box.
    pub fn new(
        pixel_type: PixelType,
        (src_width, src_height): (u32, u32),
        (dst_width, dst_height): (u32, u32),
        options: &ResizeOptions,
    ) -> Option<Self> {
        let (filter_type, adaptive_kernel_size) = match options.algorithm {
            ResizeAlg::Convolution(filter_type) => (filter_type, true),
            ResizeAlg::Interpolation(filter_type) => (filter_type, false),
            _ => return None,
        };
        if src_width == 0 || src_height == 0 || dst_width == 0 || dst_height == 0 {
            return None;
        }
        let crop_box = match options.cropping {
            SrcCropping::None => CropBox {
                left: 0.,
                top: 0.,
                width: src_width as _,
                height: src_height as _,
            },
            SrcCropping::FitIntoDestination(centering) => CropBox::fit_src_into_dst_size(
                src_width,
                src_height,
                dst_width,
                dst_height,
                Some(centering),
            ),
            _ => return None,
        };
        if crop_box.width <= 0. || crop_box.height <= 0. {
            return None;
        }
        let need_horizontal =
            dst_width as f64 != crop_box.width || crop_box.left != crop_box.left.round();
        let need_vertical =
            dst_height as f64 != crop_box.height || crop_box.top != crop_box.top.round();
        if !need_horizontal || !need_vertical {
            return None;
        }
        let (filter_fn, filter_support) = convolution::get_filter_func(filter_type);
        let mut horiz = convolution::precompute_coefficients(
            src_width,
            crop_box.left,
            crop_box.left + crop_box.width,
            dst_width,
            filter_fn,
            filter_support,
            adaptive_kernel_size,
        );
        let vert = convolution::precompute_coefficients(
            src_height,
            crop_box.top,
            crop_box.top + crop_box.height,
            dst_height,
            filter_fn,
            filter_support,
            adaptive_kernel_size,
        );
        if horiz.bounds.len() != dst_width as usize || vert.bounds.len() != dst_height as usize {
            return None;
        }
        // As `Resizer` does: the vertical pass makes only the columns the horizontal one reads.
        let x_first = horiz.bounds[0].start;
        let last = horiz.bounds[horiz.bounds.len() - 1];
        let temp_width = last.start + last.size - x_first;
        horiz.bounds.iter_mut().for_each(|b| b.start -= x_first);
        let window = vert.bounds.iter().map(|b| b.size).max().unwrap_or(1).max(1);
        let geometry = Geometry {
            src_width,
            src_height,
            dst_width,
            x_first,
            temp_width,
            window,
        };
        let (vert, horiz) = (Normalizer16::new(vert), Normalizer16::new(horiz));
        let inner = match pixel_type {
            PixelType::U8 => Inner::U8(Rows::new(geometry, vert, horiz)),
            PixelType::U8x3 => Inner::U8x3(Rows::new(geometry, vert, horiz)),
            _ => return None,
        };
        Some(Self { inner })
    }

    /// Takes the next source rows (whole rows, top to bottom) and writes every output row
    /// they complete into `dst`, the destination image's pixels (`dst_width × dst_height`
    /// pixels, rows one after another). Rows past the source's height are ignored.
    ///
    /// # Panics
    /// When `rows` is not a whole number of rows or `dst` is too small.
    pub fn push(&mut self, rows: &[u8], dst: &mut [u8]) {
        self.push_to(rows, Dst::Image(dst));
    }

    /// Takes the next source rows (whole rows, top to bottom) and hands every output row
    /// they complete to `out`, a few rows at a time, top to bottom (each call's slice holds
    /// whole rows of `dst_width` pixels). Rows past the source's height are ignored.
    ///
    /// # Panics
    /// When `rows` is not a whole number of rows.
    pub fn push_rows(&mut self, rows: &[u8], out: &mut dyn FnMut(&[u8])) {
        self.push_to(rows, Dst::Rows(out));
    }

    fn push_to(&mut self, rows: &[u8], mut dst: Dst<'_>) {
        match &mut self.inner {
            Inner::U8(inner) => inner.push(rows, &mut dst),
            Inner::U8x3(inner) => inner.push(rows, &mut dst),
        }
    }
}

/// Where output rows go: into the whole destination image, or to a function that takes
/// them as they are made.
enum Dst<'a> {
    Image(&'a mut [u8]),
    Rows(&'a mut dyn FnMut(&[u8])),
}

#[derive(Debug, Clone, Copy)]
struct Geometry {
    src_width: u32,
    src_height: u32,
    dst_width: u32,
    x_first: u32,
    temp_width: u32,
    /// The most source rows one output row reads.
    window: u32,
}

struct Rows<P> {
    geometry: Geometry,
    vert: Normalizer16,
    horiz: Normalizer16,
    /// Source rows, row `y` in slot `y % window`.
    ring: Vec<P>,
    /// Source rows taken so far.
    received: u32,
    /// The next output row to make.
    next_out: usize,
    /// Output rows of the vertical pass waiting for the horizontal one.
    temp: Vec<P>,
    temp_rows: usize,
    /// Output rows of the horizontal pass when they are handed on (`Dst::Rows`); made on
    /// first use.
    out: Vec<u8>,
    cpu_extensions: CpuExtensions,
}

impl<P> core::fmt::Debug for Rows<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rows")
            .field("geometry", &self.geometry)
            .field("received", &self.received)
            .field("next_out", &self.next_out)
            .finish_non_exhaustive()
    }
}

impl<P: InnerPixel<Component = u8> + RowConvolution> Rows<P> {
    fn new(geometry: Geometry, vert: Normalizer16, horiz: Normalizer16) -> Self {
        let ring = vec![P::default(); geometry.src_width as usize * geometry.window as usize];
        let temp = vec![P::default(); geometry.temp_width as usize * BATCH];
        Self {
            geometry,
            vert,
            horiz,
            ring,
            received: 0,
            next_out: 0,
            temp,
            temp_rows: 0,
            out: Vec::new(),
            cpu_extensions: CpuExtensions::default(),
        }
    }

    fn push(&mut self, rows: &[u8], dst: &mut Dst<'_>) {
        let Geometry {
            src_width,
            src_height,
            window,
            ..
        } = self.geometry;
        let row_bytes = src_width as usize * P::size();
        assert_eq!(rows.len() % row_bytes, 0, "rows are whole");
        for row in rows.chunks_exact(row_bytes) {
            if self.received == src_height || self.next_out == self.vert.chunks_len() {
                return;
            }
            let y = self.received;
            self.received += 1;
            // Rows above the next output row's window (cropped off) are never read.
            if y < self.vert.chunks()[self.next_out].start {
                continue;
            }
            let slot = (y % window) as usize * src_width as usize;
            let pixels = TypedImageRef::<P>::from_buffer(src_width, 1, row)
                .expect("a row of the source's width");
            self.ring[slot..slot + src_width as usize].copy_from_slice(pixels.pixels());
            self.make_rows(dst);
        }
    }

    /// Makes every output row whose source rows have all come.
    fn make_rows(&mut self, dst: &mut Dst<'_>) {
        while let Some(chunk) = self.vert.chunks().get(self.next_out) {
            if chunk.start + chunk.values().len() as u32 > self.received {
                break;
            }
            self.vert_row();
            self.next_out += 1;
            self.temp_rows += 1;
            if self.temp_rows == BATCH || self.next_out == self.vert.chunks_len() {
                self.flush(dst);
            }
        }
    }

    /// The vertical pass of the next output row, into the temporary rows. Out of line, as
    /// the passes are: inlined together into `push`, the kernels' registers spill.
    #[inline(never)]
    fn vert_row(&mut self) {
        let Geometry {
            src_width,
            src_height,
            x_first,
            temp_width,
            window,
            ..
        } = self.geometry;
        let ring = RingView {
            rows: &self.ring,
            width: src_width,
            height: src_height,
            slots: window,
        };
        let temp_row =
            &mut self.temp[self.temp_rows * temp_width as usize..][..temp_width as usize];
        let mut temp_view = TypedImage::<P>::from_pixels_slice(temp_width, 1, temp_row)
            .expect("a row of the temporary's width");
        let normalizer = self.vert.part(self.next_out..self.next_out + 1);
        P::vert_rows(
            &ring,
            &mut temp_view,
            x_first,
            &normalizer,
            self.cpu_extensions,
        );
    }

    /// The horizontal pass of the rows the vertical pass has made, into `dst`.
    #[inline(never)]
    fn flush(&mut self, dst: &mut Dst<'_>) {
        let Geometry {
            dst_width,
            temp_width,
            ..
        } = self.geometry;
        let count = self.temp_rows;
        let first = self.next_out - count;
        let temp = TypedImageRef::<P>::new(
            temp_width,
            count as u32,
            &self.temp[..temp_width as usize * count],
        )
        .expect("rows of the temporary's width");
        match dst {
            Dst::Image(image) => {
                let row_bytes = dst_width as usize * P::size();
                let mut dst_view = TypedImage::<P>::from_buffer(
                    dst_width,
                    count as u32,
                    &mut image[first * row_bytes..(first + count) * row_bytes],
                )
                .expect("the destination holds its rows");
                P::horiz_rows(&temp, &mut dst_view, 0, &self.horiz, self.cpu_extensions);
            }
            Dst::Rows(out) => {
                let bytes = dst_width as usize * P::size() * count;
                if self.out.len() < bytes {
                    self.out = vec![0; dst_width as usize * P::size() * BATCH];
                }
                let mut dst_view =
                    TypedImage::<P>::from_buffer(dst_width, count as u32, &mut self.out[..bytes])
                        .expect("the output rows hold their pixels");
                P::horiz_rows(&temp, &mut dst_view, 0, &self.horiz, self.cpu_extensions);
                out(&self.out[..bytes]);
            }
        }
        self.temp_rows = 0;
    }
}

/// Source rows held in a ring: row `y` in slot `y % slots`. The convolution reads only rows
/// the ring holds.
struct RingView<'a, P> {
    rows: &'a [P],
    width: u32,
    height: u32,
    slots: u32,
}

// SAFETY: every row it yields is `width` pixels long.
unsafe impl<P: InnerPixel> ImageView for RingView<'_, P> {
    type Pixel = P;

    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn iter_rows(&self, start_row: u32) -> impl Iterator<Item = &[P]> {
        let width = self.width as usize;
        (start_row..self.height).map(move |y| {
            let slot = (y % self.slots) as usize * width;
            &self.rows[slot..slot + width]
        })
    }
}
