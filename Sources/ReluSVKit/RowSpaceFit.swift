/// Fits in the row space of the points (MATH.md §3, the fits).
///
/// An approximant `L = U V` acts on the points only through their row space.
/// Where the points have at most half as many rows as inputs (`N P <= n / 2`:
/// few points, or a layer applied to few positions), `B` (`r x n`, `r = N P`)
/// with orthonormal rows spanning that space (the right singular vectors of
/// `X`) gives `L x = U (V B^T)(B x)` for every point `x`. A fit over `U` and
/// `V' = V B^T` (`k x r`) on the coordinates `C = X B^T` against the layer
/// `W B^T` (the same targets, `W B^T B x = W x`) reaches the same actions on
/// the data with `k (m + r)` parameters instead of `k (m + n)`, and each
/// product over the points costs `N P k (m + r)` multiply-adds instead of
/// `N P k (m + n)`. Its best iterate is lifted to `V = V' B` and certified on
/// the original points like every other candidate: the reduction changes
/// which approximants a fit visits (rounding, Adam's per-coordinate steps),
/// never what a bound means.
struct RowSpace<Scalar: BLASScalar> {
    /// `B` (`r x n`).
    let basis: Matrix<Scalar>
    /// `C = X B^T` (`N P x r`).
    let coordinates: Matrix<Scalar>
    /// `W B^T`, with the layer's bias and slope.
    let layer: ReluLayer<Scalar>
    let groupSize: Int

    /// Nil where the points have more than half as many rows as inputs.
    init?(problem: ReluBoundProblem<Scalar>) throws {
        let (rows, n, m) = (problem.count, problem.layer.inputs, problem.layer.outputs)
        guard rows >= 1, 2 * rows <= n else { return nil }
        let b = try rightSVD(of: problem.x).vt
        let r = b.rows
        var c = Matrix<Scalar>(rows: rows, columns: r)
        var w = Matrix<Scalar>(rows: m, columns: r)
        b.storage.withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer {
                Scalar.gemm(
                    transA: false, transB: true, m: rows, n: r, k: n, alpha: 1, a: problem.x.base,
                    lda: problem.x.rowStride, b: bp.baseAddress!, ldb: n, beta: 0, c: $0.baseAddress!, ldc: r)
            }
            problem.layer.weight.storage.withUnsafeBufferPointer { wp in
                w.withUnsafeMutableBufferPointer {
                    Scalar.gemm(
                        transA: false, transB: true, m: m, n: r, k: n, alpha: 1, a: wp.baseAddress!, lda: n,
                        b: bp.baseAddress!, ldb: n, beta: 0, c: $0.baseAddress!, ldc: r)
                }
            }
        }
        basis = b
        coordinates = c
        layer = try w.withView {
            try ReluLayer(weight: $0, bias: problem.layer.bias, slope: Double(problem.layer.slope))
        }
        groupSize = problem.groupSize
    }

    /// `(U, V B^T)` of `(U, V)`.
    func reduce(_ f: RankFactors<Scalar>) -> RankFactors<Scalar> {
        RankFactors(k: f.k, m: f.m, n: basis.rows, u: f.u, v: timesBasis(f.v, rows: f.k, transposed: true))
    }

    /// `(U, V' B)` of `(U, V')`.
    func lift(_ f: RankFactors<Scalar>) -> RankFactors<Scalar> {
        RankFactors(k: f.k, m: f.m, n: basis.columns, u: f.u, v: timesBasis(f.v, rows: f.k, transposed: false))
    }

    /// `V B^T` (`V` of `rows x n`) or `V' B` (`V'` of `rows x r`), row-major.
    private func timesBasis(_ v: [Scalar], rows: Int, transposed: Bool) -> [Scalar] {
        let (r, n) = (basis.rows, basis.columns)
        let (inner, outer) = transposed ? (n, r) : (r, n)
        var out = [Scalar](repeating: 0, count: rows * outer)
        v.withUnsafeBufferPointer { vp in
            basis.storage.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer {
                    Scalar.gemm(
                        transA: false, transB: transposed, m: rows, n: outer, k: inner, alpha: 1, a: vp.baseAddress!,
                        lda: inner, b: bp.baseAddress!, ldb: n, beta: 0, c: $0.baseAddress!, ldc: outer)
                }
            }
        }
        return out
    }

    /// `body` with the fit's problem: the coordinates against the reduced layer.
    func withProblem<R>(_ body: (ReluBoundProblem<Scalar>) throws -> R) throws -> R {
        try coordinates.withView { try body(ReluBoundProblem(layer: layer, points: $0, groupSize: groupSize)) }
    }
}
