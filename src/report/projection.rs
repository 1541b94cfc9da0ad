//! A 2-D map of the embeddings: their first two principal components.
//!
//! Power iteration on the covariance, applied implicitly (Xᵀ(Xv), never a d×d or n×n
//! matrix), from a fixed start vector and with a fixed sign convention, so the map is the same
//! on every run.

use crate::simd::dot;

/// (x, y) per row of `vectors` (row-major, `dim` wide).
pub fn pca_2d(vectors: &[f32], dim: usize) -> Vec<(f32, f32)> {
    let n = vectors.len() / dim;
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; dim];
    for row in vectors.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centered: Vec<f32> = vectors
        .chunks_exact(dim)
        .flat_map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&x, &m)| (f64::from(x) - m) as f32)
        })
        .collect();
    let first = component(&centered, dim, &[]);
    let second = component(&centered, dim, std::slice::from_ref(&first));
    centered
        .chunks_exact(dim)
        .map(|row| (dot(row, &first), dot(row, &second)))
        .collect()
}

/// The leading eigenvector of XᵀX orthogonal to `against`.
fn component(x: &[f32], dim: usize, against: &[Vec<f32>]) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|i| 1.0 + (i % 7) as f32 * 0.1).collect();
    for _ in 0..200 {
        let mut next = vec![0f32; dim];
        for row in x.chunks_exact(dim) {
            let p = dot(row, &v);
            for (a, &b) in next.iter_mut().zip(row) {
                *a += p * b;
            }
        }
        for u in against {
            let p = dot(&next, u);
            for (a, &b) in next.iter_mut().zip(u) {
                *a -= p * b;
            }
        }
        let norm = dot(&next, &next).sqrt();
        if norm == 0.0 {
            break;
        }
        next.iter_mut().for_each(|a| *a /= norm);
        v = next;
    }
    // Sign: the largest coordinate is positive.
    let big = v
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |(i, _)| i);
    if v[big] < 0.0 {
        v.iter_mut().for_each(|a| *a = -*a);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_axis_of_largest_spread() {
        // Points spread along (1, 1, 0)/√2, a little along z.
        let pts: Vec<f32> = (0..20)
            .flat_map(|i| {
                let t = i as f32 - 10.0;
                [t, t, 0.1 * (i % 3) as f32]
            })
            .collect();
        let xy = pca_2d(&pts, 3);
        let spread_x = xy.iter().map(|p| p.0.abs()).fold(0.0, f32::max);
        let spread_y = xy.iter().map(|p| p.1.abs()).fold(0.0, f32::max);
        assert!(spread_x > 10.0 && spread_y < 1.0, "{spread_x} {spread_y}");
    }
}
