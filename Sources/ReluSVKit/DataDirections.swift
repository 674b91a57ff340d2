/// The leading right singular directions of the data `X` (`N x n`): the rows
/// of `V_r^T` (`r x n`) of the data projection `L_k = W V_k V_k^T`, `k <= r`
/// (MATH.md §3; `CandidateBasis.dataProjection`).
///
/// The candidate needs orthonormal directions that keep as much of `X` as
/// the top `r` right singular vectors do (its error on `X` is that of
/// `W (I - V_k V_k^T) x`), not `X`'s singular values, and only the `r`
/// directions of the largest `k` a curve asks, not all `min(N, n)`:
///
/// - `N > n`: the top `r` eigenvectors of `X^T X` (`?syrk`, `?sytrd`,
///   `?stemr`, `?ormtr`: `N n^2 + 4/3 n^3` multiply-adds, against an SVD's
///   bidiagonalisation and back-transformations of all `n` vectors; on a
///   `2944 x 2304` patch matrix of VGG-11 with `r = 255` about a third of the
///   time). They are orthonormal to rounding whatever the spectrum; rounding
///   in `X^T X`, about `eps ||X||^2`, leaves at most that much more of `X`'s
///   energy outside their span than exact vectors would (a relative
///   `sqrt(eps)` of the candidate's error scale);
/// - `N <= n`: `V_r^T = Lambda_r^(-1/2) U_r^T X` from the top eigenpairs of
///   `X X^T` where they resolve rank `r` (`leftGramDirections`: their
///   orthonormality is then lost by at most about `sqrt(eps)`);
/// - elsewhere (an unresolved rank, a Gram matrix that overflows, LAPACK
///   returning another count): the first `r` rows of the SVD's `V^T`
///   (`rightSVD(of:)`).
///
/// Every bound stays the exact error of the factors it returns.
func dataDirections<Scalar: BLASScalar>(of x: MatrixView<Scalar>, count: Int) throws -> Matrix<Scalar> {
    let (N, n) = (x.rows, x.columns)
    precondition(count >= 0 && count <= min(N, n), "more directions than min(N, n)")
    guard count > 0 else { return Matrix(rows: 0, columns: n) }
    if N > n {
        // X row-major is the column-major n x N matrix X^T, whose Gram matrix of the smaller side is X^T X.
        let g = gramMatrix(columnMajor: x.base, rows: n, columns: N, leadingDimension: x.rowStride)
        if largestDiagonal(g, order: n) != nil, let v = try GramTridiagonal(g, order: n).largestVectors(count) {
            return Matrix(rows: count, columns: n, storage: v)  // column-major n x count = row-major V_r^T
        }
    } else if let vt = try leftGramDirections(of: x, count: count) {
        return vt
    }
    let vt = try rightSVD(of: x).vt
    return Matrix(rows: count, columns: n, storage: Array(vt.storage[0..<(count * n)]))
}

/// The leading `count` right singular directions of `X` (`N x n`, `N <= n`)
/// from its left Gram matrix: the top eigenpairs `(lambda_i, u_i)` of
/// `X X^T` (`N^2 n` multiply-adds, `?sytrd`, `?stemr`, `?ormtr`) give
/// `v_i = X^T u_i / sqrt(lambda_i)`, here each scaled to unit length
/// (`N count n` more). Their orthonormality is lost by about
/// `eps lambda_0 / lambda_(count-1)`, at most `sqrt(eps)` where the
/// eigenvalues resolve rank `count` (`RoundBasis.resolves`); nil where they
/// do not (or `count` exceeds `N`, or `largestDiagonal` refuses the Gram
/// matrix). The data projection's directions (`dataDirections`) and the
/// basis of a weighted round with fewer points than outputs
/// (`WeightedRegression.leftGramBasis`) both come from here.
func leftGramDirections<Scalar: BLASScalar>(of x: MatrixView<Scalar>, count: Int) throws -> Matrix<Scalar>? {
    let (N, n) = (x.rows, x.columns)
    precondition(N <= n, "the left Gram matrix of a tall matrix")
    guard count > 0, count <= N else { return nil }
    // X row-major is the column-major n x N matrix X^T: its Gram matrix of the smaller side is X X^T.
    let g = gramMatrix(columnMajor: x.base, rows: n, columns: N, leadingDimension: x.rowStride)
    guard largestDiagonal(g, order: N) != nil else { return nil }
    let reduced = try GramTridiagonal(g, order: N)
    guard RoundBasis.resolves(try reduced.eigenvalues(), rank: count, epsilon: Double(Scalar.ulpOfOne)),
        let u = try reduced.largestVectors(count)
    else { return nil }
    return rowsFromLeftVectors(u, of: x, count: count)
}

/// `V_r^T = Lambda_r^(-1/2) U_r^T X` (`r x n`) from the unit eigenvectors
/// `U_r` (column-major `N x r`) of `X X^T`, each row scaled to unit length
/// (its norm is `sqrt(lambda_i)` up to rounding).
private func rowsFromLeftVectors<Scalar: BLASScalar>(_ u: [Scalar], of x: MatrixView<Scalar>, count: Int) -> Matrix<
    Scalar
> {
    let (N, n) = (x.rows, x.columns)
    var vt = [Scalar](repeating: 0, count: count * n)
    // U_r column-major is U_r^T row-major (r x N).
    u.withUnsafeBufferPointer { up in
        vt.withUnsafeMutableBufferPointer {
            Scalar.gemm(
                transA: false, transB: false, m: count, n: n, k: N, alpha: 1, a: up.baseAddress!, lda: N,
                b: x.base, ldb: x.rowStride, beta: 0, c: $0.baseAddress!, ldc: n)
        }
    }
    for r in 0..<count {
        var sum: Scalar = 0
        for j in 0..<n { sum += vt[r * n + j] * vt[r * n + j] }
        let scale = sum > 0 ? 1 / sum.squareRoot() : 0
        for j in 0..<n { vt[r * n + j] *= scale }
    }
    return Matrix(rows: count, columns: n, storage: vt)
}
