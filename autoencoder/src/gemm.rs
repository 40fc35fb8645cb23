//! Matrix products on row-major `f32` slices through the `gemm` crate, with transposes as
//! strides (never copies): what the hand-written CPU paths (the student's renderer, the
//! fused training step) are built on.

use std::ops::Range;

/// A row-major matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// `rows × cols`, contiguous rows.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, by strides.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            data: self.data,
        }
    }

    /// Rows `range` of the view.
    pub fn rows(self, range: Range<usize>) -> Self {
        Self {
            data: &self.data[range.start * self.rs..],
            rows: range.len(),
            ..self
        }
    }

    /// The highest index this view reads, plus one (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `dst[m, n] (+)= a[m, k] · b[k, n]`; `dst` has contiguous rows of stride `dst_rs`.
/// Adds to `dst` when `accumulate`, else overwrites it.
#[allow(unsafe_code)]
pub(crate) fn gemm(dst: &mut [f32], dst_rs: usize, a: View, b: View, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.extent() <= a.data.len() && b.extent() <= b.data.len());
    assert!(n <= dst_rs && (m - 1) * dst_rs + n <= dst.len());
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the assertions keep every element the product reads inside `a.data` and
    // `b.data` and every element it writes inside `dst`, which is borrowed mutably and so
    // overlaps neither input. Strides are non-negative and fit in `isize` (slice lengths do).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
