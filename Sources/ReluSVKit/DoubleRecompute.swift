/// Recomputation of point errors in `Double` for the certificate of `Float`
/// problems (MATH.md §2, chain in float32): many points at once by `Double`
/// GEMMs instead of one point at a time.
///
/// For groups `G` (each `groupSize` consecutive rows), with every input
/// converted exactly to `Double`:
///
///     Z = X_G W^T + 1 b^T,   Z_L = (X_G V^T) U^T + 1 b^T,   e_g = ||act(Z) - act(Z_L)|| over the group's rows.
///
/// The products run in `Double` (a different order of sums than
/// `ReluLayer.errorInDouble`, same precision).
extension ReluBoundProblem {
    /// Groups recomputed by one blocked call at most (bounds the scratch memory).
    static var recomputeBlock: Int { 256 }

    /// The `Double` errors of `groups` for the factors `f`, in order.
    func groupErrorsInDouble(_ groups: [Int], factors f: FactorPointers<Scalar>, weight: [Double]) -> [Double] {
        let m = layer.outputs
        let n = layer.inputs
        let k = f.k
        let P = groupSize
        let rows = groups.count * P
        guard rows > 0 else { return [] }
        var xd = [Double](repeating: 0, count: rows * n)
        for (slot, g) in groups.enumerated() {
            for r in 0..<P {
                let source = x.row(g * P + r)
                let target = (slot * P + r) * n
                for j in 0..<n { xd[target + j] = Double(source[j]) }
            }
        }
        var ud = [Double](repeating: 0, count: max(1, m * k))
        var vd = [Double](repeating: 0, count: max(1, k * n))
        for i in 0..<m { for r in 0..<k { ud[i * k + r] = Double(f.u[i * f.ldu + r]) } }
        for i in 0..<(k * n) { vd[i] = Double(f.v[i]) }
        var z = [Double](repeating: 0, count: rows * m)
        var zl = [Double](repeating: 0, count: rows * m)
        var projection = [Double](repeating: 0, count: max(1, rows * k))
        Double.gemm(
            transA: false, transB: true, m: rows, n: m, k: n, alpha: 1, a: xd, lda: n, b: weight, ldb: n,
            beta: 0, c: &z, ldc: m)
        if k > 0 {
            Double.gemm(
                transA: false, transB: true, m: rows, n: k, k: n, alpha: 1, a: xd, lda: n, b: vd, ldb: n,
                beta: 0, c: &projection, ldc: k)
            Double.gemm(
                transA: false, transB: true, m: rows, n: m, k: k, alpha: 1, a: projection, lda: k, b: ud,
                ldb: k, beta: 0, c: &zl, ldc: m)
        }
        let a = Double(layer.slope)
        let bias = layer.bias.map(Double.init)
        return groups.indices.map { slot in
            var total = 0.0
            for r in (slot * P)..<((slot + 1) * P) {
                for j in 0..<m {
                    let w = z[r * m + j] + bias[j]
                    let l = zl[r * m + j] + bias[j]
                    let d = (w > 0 ? w : a * w) - (l > 0 ? l : a * l)
                    total += d * d
                }
            }
            return certifiable(total.squareRoot())
        }
    }

    /// `W` in `Double`, row-major (converted once per certificate that needs blocks).
    func weightInDouble() -> [Double] { layer.weight.storage.map(Double.init) }
}
