//! The little linear algebra IRLS needs: a symmetric positive-definite solve and inverse
//! by Cholesky factorisation, on matrices of a few dozen parameters.

/// A square matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matrix {
    pub n: usize,
    pub values: Vec<f64>,
}

impl Matrix {
    pub fn zeros(n: usize) -> Matrix {
        Matrix {
            n,
            values: vec![0.0; n * n],
        }
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.n + j]
    }

    pub fn add(&mut self, i: usize, j: usize, x: f64) {
        self.values[i * self.n + j] += x;
    }
}

/// The lower-triangular `L` with `L·Lᵀ = a`, or `None` when `a` is not positive definite
/// (a singular design: a feature that is constant or a copy of others).
pub(crate) fn cholesky(a: &Matrix) -> Option<Matrix> {
    let n = a.n;
    let mut l = Matrix::zeros(n);
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a.at(i, j);
            for k in 0..j {
                sum -= l.at(i, k) * l.at(j, k);
            }
            if i == j {
                // Relative to the diagonal, so that scale does not matter.
                if sum <= a.at(i, i).abs() * 1e-12 || !sum.is_finite() {
                    return None;
                }
                l.values[i * n + i] = sum.sqrt();
            } else {
                l.values[i * n + j] = sum / l.at(j, j);
            }
        }
    }
    Some(l)
}

/// Solves `L·Lᵀ·x = b`.
pub(crate) fn solve(l: &Matrix, b: &[f64]) -> Vec<f64> {
    let n = l.n;
    let mut y = vec![0.0; n];
    for i in 0..n {
        let sum = b[i] - (0..i).map(|k| l.at(i, k) * y[k]).sum::<f64>();
        y[i] = sum / l.at(i, i);
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let sum = y[i] - (i + 1..n).map(|k| l.at(k, i) * x[k]).sum::<f64>();
        x[i] = sum / l.at(i, i);
    }
    x
}

/// The diagonal of `(L·Lᵀ)⁻¹`.
pub(crate) fn inverse_diagonal(l: &Matrix) -> Vec<f64> {
    (0..l.n)
        .map(|i| {
            let mut unit = vec![0.0; l.n];
            unit[i] = 1.0;
            solve(l, &unit)[i]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_system_is_solved_and_inverted() {
        // [[4, 2], [2, 3]]: inverse [[3, -2], [-2, 4]] / 8.
        let a = Matrix {
            n: 2,
            values: vec![4.0, 2.0, 2.0, 3.0],
        };
        let l = cholesky(&a).unwrap();
        let x = solve(&l, &[2.0, 1.0]);
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        let d = inverse_diagonal(&l);
        assert!((d[0] - 3.0 / 8.0).abs() < 1e-12 && (d[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_singular_matrix_has_no_factorisation() {
        let a = Matrix {
            n: 2,
            values: vec![1.0, 1.0, 1.0, 1.0],
        };
        assert!(cholesky(&a).is_none());
    }
}
