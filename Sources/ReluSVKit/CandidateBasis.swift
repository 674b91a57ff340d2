/// A nested family of approximants `L_k = B[:, :k] C[:k, :]` (rank `<= k`),
/// one for every `k` from one factorisation (MATH.md §3):
///
/// - `svd`: the truncated SVD, `B = U Sigma^(1/2)`, `C = Sigma^(1/2) V^T`
///   (`L_k = W_k`, the chain of MATH.md §2);
/// - `reducedRankRegression`: `B = Q`, `C = Q^T W`, `Q` the left singular
///   vectors of `Z = W X^T` (`L_k = Q_k Q_k^T W`, the rank-`k` `L` minimising
///   `sum_x ||(W - L) x||^2`; `L_k X^T = Z_k`, zero error once `k >= rank Z`);
/// - `dataProjection`: `B = W V_X`, `C = V_X^T`, `V_X` the right singular
///   vectors of `X` (`L_k = W V_k V_k^T`; zero error once `k >= rank X`).
///
/// `a = X C^T` (`N x p`) makes every pre-activation a rank update:
/// `X L_k^T = a[:, :k] B[:, :k]^T`, so the whole family costs `O(N m)` per `k`.
struct CandidateBasis<Scalar: BLASScalar> {
    let source: BoundSource
    /// `m x p`.
    let b: Matrix<Scalar>
    /// `p x n`.
    let c: Matrix<Scalar>
    /// `X C^T`, `N x p`.
    let a: Matrix<Scalar>
    /// `Float` only: the `Double` copy for blocked passes (`doubleCopy(on:)`).
    let exactCopy = MadeOnce<CandidateBasis<Double>>()

    var size: Int { b.columns }

    init(source: BoundSource, b: Matrix<Scalar>, c: Matrix<Scalar>, points x: MatrixView<Scalar>) {
        precondition(b.columns == c.rows && c.columns == x.columns, "basis shapes do not match")
        self.source = source
        self.b = b
        self.c = c
        var a = Matrix<Scalar>(rows: x.rows, columns: c.rows)
        if c.rows > 0 {
            a.withUnsafeMutableBufferPointer { ap in
                c.storage.withUnsafeBufferPointer { cp in
                    Scalar.gemm(
                        transA: false, transB: true, m: x.rows, n: c.rows, k: x.columns, alpha: 1, a: x.base,
                        lda: x.rowStride, b: cp.baseAddress!, ldb: x.columns, beta: 0, c: ap.baseAddress!,
                        ldc: c.rows)
                }
            }
        }
        self.a = a
    }

    /// The truncated SVD of `W` as a basis, of the pairs whose vectors `svd` holds.
    static func svd(_ svd: ThinSVD<Scalar>, points x: MatrixView<Scalar>) -> CandidateBasis {
        let m = svd.u.rows
        let n = svd.vt.columns
        let p = svd.u.columns
        var b = Matrix<Scalar>(rows: m, columns: p)
        var c = Matrix<Scalar>(rows: p, columns: n)
        for j in 0..<p {
            let root = svd.s[j].squareRoot()
            for i in 0..<m { b[i, j] = svd.u[i, j] * root }
            for i in 0..<n { c[j, i] = svd.vt[j, i] * root }
        }
        return CandidateBasis(source: .svd, b: b, c: c, points: x)
    }

    /// Reduced-rank regression on the pre-activations `Z = W X^T` (one SVD of
    /// `X W^T`, `N x m`); nil when `X W^T` overflows.
    static func reducedRankRegression(layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>) throws -> CandidateBasis?
    {
        let m = layer.outputs
        let n = layer.inputs
        let zt = linearPreactivations(layer: layer, points: x)
        guard zt.storage.allSatisfy(\.isFinite) else { return nil }
        let f = try zt.withView { try rightSVD(of: $0) }
        let q = f.vt  // r x m: rows are the left singular vectors of Z
        let r = q.rows
        var b = Matrix<Scalar>(rows: m, columns: r)
        var c = Matrix<Scalar>(rows: r, columns: n)
        for i in 0..<m { for j in 0..<r { b[i, j] = q[j, i] } }
        c.withUnsafeMutableBufferPointer { cp in
            q.storage.withUnsafeBufferPointer { qp in
                layer.weight.storage.withUnsafeBufferPointer { w in
                    Scalar.gemm(
                        transA: false, transB: false, m: r, n: n, k: m, alpha: 1, a: qp.baseAddress!, lda: m,
                        b: w.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
                }
            }
        }
        return CandidateBasis(source: .reducedRankRegression, b: b, c: c, points: x)
    }

    /// The data projection `W V_X V_X^T` of the `pairs` leading directions of
    /// `X` (at most `min(N, n)`; `dataDirections(of:count:)`).
    static func dataProjection(layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>, pairs: Int) throws
        -> CandidateBasis
    {
        let m = layer.outputs
        let n = layer.inputs
        let vt = try dataDirections(of: x, count: min(pairs, min(x.rows, n)))  // r x n
        let r = vt.rows
        var b = Matrix<Scalar>(rows: m, columns: r)
        b.withUnsafeMutableBufferPointer { bp in
            vt.storage.withUnsafeBufferPointer { vp in
                layer.weight.storage.withUnsafeBufferPointer { w in
                    Scalar.gemm(
                        transA: false, transB: true, m: m, n: r, k: n, alpha: 1, a: w.baseAddress!, lda: n,
                        b: vp.baseAddress!, ldb: n, beta: 0, c: bp.baseAddress!, ldc: r)
                }
            }
        }
        return CandidateBasis(source: .dataProjection, b: b, c: vt, points: x)
    }

    /// The same basis without `a` (`N x p`): enough for `factors(rank:)`,
    /// not for a blocked pass (`NestedCurve` refuses it). What the chains keep
    /// of a weighted band's basis, so that the bands' memory does not grow
    /// with `N` times their count.
    func factorsOnly() -> CandidateBasis {
        CandidateBasis(source: source, b: b, c: c, a: Matrix(rows: 0, columns: 0))
    }

    private init(source: BoundSource, b: Matrix<Scalar>, c: Matrix<Scalar>, a: Matrix<Scalar>) {
        self.source = source
        self.b = b
        self.c = c
        self.a = a
    }

    /// The factors of `L_k` (`k <= size`).
    func factors(rank k: Int) -> RankFactors<Scalar> {
        RankFactors(k: 0, m: b.rows, n: c.columns, u: [], v: []).extended(by: self, pairs: 0..<k)
    }

    /// The first `k` columns of `B` as rows (`k x m`, `k <= size`): for the
    /// reduced-rank regression `Q_k^T`, where Lawson's power steps start
    /// (`RoundBasis.powerStep`; of another basis, the span of `U_k`).
    func leadingBasis(rank k: Int) -> Matrix<Scalar> {
        precondition(k >= 0 && k <= size, "rank out of range")
        var q = Matrix<Scalar>(rows: k, columns: b.rows)
        for i in 0..<b.rows { for r in 0..<k { q[r, i] = b[i, r] } }
        return q
    }

    /// `z += a[:, pairs] B[:, pairs]^T` (`z` is `N x m`): adds the pairs' pre-activations.
    func addPairs(to z: UnsafeMutablePointer<Scalar>, pairs: Range<Int>) {
        guard !pairs.isEmpty else { return }
        let N = a.rows
        let m = b.rows
        let p = size
        a.storage.withUnsafeBufferPointer { ap in
            b.storage.withUnsafeBufferPointer { bp in
                Scalar.gemm(
                    transA: false, transB: true, m: N, n: m, k: pairs.count, alpha: 1,
                    a: ap.baseAddress! + pairs.lowerBound, lda: p, b: bp.baseAddress! + pairs.lowerBound,
                    ldb: p, beta: 1, c: z, ldc: m)
            }
        }
    }
}

extension RankFactors {
    /// `L + B[:, pairs] C[pairs, :]`, of rank `<= k + pairs.count`.
    func extended(by basis: CandidateBasis<Scalar>, pairs: Range<Int>) -> RankFactors {
        let add = pairs.count
        let k2 = k + add
        var u2 = [Scalar](repeating: 0, count: m * k2)
        for i in 0..<m {
            for r in 0..<k { u2[i * k2 + r] = u[i * k + r] }
            for (col, j) in pairs.enumerated() { u2[i * k2 + k + col] = basis.b[i, j] }
        }
        var v2 = v
        v2.reserveCapacity(k2 * n)
        for j in pairs { for col in 0..<n { v2.append(basis.c[j, col]) } }
        return RankFactors(k: k2, m: m, n: n, u: u2, v: v2)
    }
}
