/// Recomputation of point errors in `Double` for the certificate of `Float`
/// problems (`ReluBoundProblem.certify`, MATH.md §2, chain in float32): many
/// points at once by `Double` GEMMs instead of one point at a time.
///
/// For groups `G` (each `groupSize` consecutive rows), with every input
/// converted exactly to `Double`:
///
///     Z_L = (X_G V^T) U^T + 1 b^T,   e_g = ||act(Z_L) - act(X_G W^T + 1 b^T)|| over the group's rows.
///
/// The points `X_G` and the targets `act(X_G W^T + b)` are rows of the
/// problem's `Double` copy (`doubleCopy()`), so a group costs `k (m + n)`
/// per row; without a copy (its memory refused) they are converted and
/// recomputed (`n m` more per row). The products run in `Double` (another
/// order of sums than `ReluLayer.errorInDouble`, same precision).
extension ReluBoundProblem {
    /// Groups recomputed by one blocked call at most (bounds the scratch memory).
    static var recomputeBlock: Int { 256 }

    /// The `Double` errors of `groups` for the factors `f`, in order.
    func groupErrorsInDouble(_ groups: [Int], factors f: FactorPointers<Scalar>, copy: ReluBoundProblem<Double>?)
        -> [Double]
    {
        let m = layer.outputs
        let n = layer.inputs
        let k = f.k
        let P = groupSize
        let rows = groups.count * P
        guard rows > 0 else { return [] }
        let sourceRows = groups.flatMap { g in (g * P)..<((g + 1) * P) }
        var xd = [Double](repeating: 0, count: rows * n)
        var targets = [Double](repeating: 0, count: rows * m)
        for (slot, i) in sourceRows.enumerated() {
            if let copy {
                let source = copy.x.row(i)
                for j in 0..<n { xd[slot * n + j] = source[j] }
                for j in 0..<m { targets[slot * m + j] = copy.y[i, j] }
            } else {
                let source = x.row(i)
                for j in 0..<n { xd[slot * n + j] = Double(source[j]) }
            }
        }
        let a = Double(layer.slope)
        let bias = layer.bias.map(Double.init)
        if copy == nil {
            let weight = layer.weight.storage.map(Double.init)
            Double.gemm(
                transA: false, transB: true, m: rows, n: m, k: n, alpha: 1, a: xd, lda: n, b: weight, ldb: n,
                beta: 0, c: &targets, ldc: m)
            for r in 0..<rows {
                for j in 0..<m {
                    let w = targets[r * m + j] + bias[j]
                    targets[r * m + j] = w > 0 ? w : a * w
                }
            }
        }
        var ud = [Double](repeating: 0, count: max(1, m * k))
        var vd = [Double](repeating: 0, count: max(1, k * n))
        for i in 0..<m { for r in 0..<k { ud[i * k + r] = Double(f.u[i * f.ldu + r]) } }
        for i in 0..<(k * n) { vd[i] = Double(f.v[i]) }
        var zl = [Double](repeating: 0, count: rows * m)
        var projection = [Double](repeating: 0, count: max(1, rows * k))
        if k > 0 {
            Double.gemm(
                transA: false, transB: true, m: rows, n: k, k: n, alpha: 1, a: xd, lda: n, b: vd, ldb: n,
                beta: 0, c: &projection, ldc: k)
            Double.gemm(
                transA: false, transB: true, m: rows, n: m, k: k, alpha: 1, a: projection, lda: k, b: ud,
                ldb: k, beta: 0, c: &zl, ldc: m)
        }
        return groups.indices.map { slot in
            var total = 0.0
            for r in (slot * P)..<((slot + 1) * P) {
                for j in 0..<m {
                    let l = zl[r * m + j] + bias[j]
                    let d = (l > 0 ? l : a * l) - targets[r * m + j]
                    total += d * d
                }
            }
            return certifiable(total.squareRoot())
        }
    }
}
