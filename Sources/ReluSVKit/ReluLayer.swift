/// The layer `phi(x) = act(W x + b)` with `act` the ReLU (`slope = 0`) or the
/// leaky ReLU `max(z, a z)` (`0 < a < 1`), and the exact evaluation of the
/// bound of MATH.md §3 step 2 for a rank-`k` approximant `L = U V`:
///
///     e_i(L) = || act(W x_i + b) - act(L x_i + b) ||,   bound(L) = max_i e_i(L).
///
/// Rows of the data are points. With `U` (`m x k`) and `V` (`k x n`) the
/// predictions of a block of rows are `Z = (X V^T) U^T + 1 b^T`, two GEMMs of
/// `O(rows * k * (m + n))` work, so no `m x n` product is ever formed.
public struct ReluLayer<Scalar: BLASScalar> {
    /// `W`, `m x n` (out x in).
    public let weight: Matrix<Scalar>
    /// `b`, length `m`.
    public let bias: [Scalar]
    /// Leaky slope `a` in `[0, 1)`; 0 is the ReLU.
    public let slope: Scalar

    public var outputs: Int { weight.rows }
    public var inputs: Int { weight.columns }

    /// Copies and checks `W` (finite), `b` (finite, length `m`, nil = 0) and `slope`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public init(weight: MatrixView<Scalar>, bias: [Scalar]?, slope: Double) throws {
        try checkWeight(rows: weight.rows, columns: weight.columns)
        guard slope.isFinite, slope >= 0, slope < 1 else {
            throw EngineError.invalidArgument("leaky_slope must lie in [0, 1), got \(slope)")
        }
        var w = Matrix<Scalar>(rows: weight.rows, columns: weight.columns)
        for i in 0..<weight.rows {
            let r = weight.row(i)
            for j in 0..<weight.columns {
                guard r[j].isFinite else {
                    throw EngineError.nonFinite("W contains NaN or infinity at row \(i), column \(j)")
                }
                w[i, j] = r[j]
            }
        }
        if let bias {
            guard bias.count == weight.rows else {
                throw EngineError.shape("b has length \(bias.count) but W has \(weight.rows) rows (outputs)")
            }
            if let j = bias.firstIndex(where: { !$0.isFinite }) {
                throw EngineError.nonFinite("b contains NaN or infinity at index \(j)")
            }
        }
        self.weight = w
        self.bias = bias ?? [Scalar](repeating: 0, count: weight.rows)
        self.slope = Scalar(slope)
    }

    @inline(__always) func activate(_ z: Scalar) -> Scalar { z > 0 ? z : slope * z }

    /// `phi(X)`, `N x m`, by one GEMM per block of rows.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func apply(_ x: MatrixView<Scalar>) -> Matrix<Scalar> {
        precondition(x.columns == inputs, "data dimension differs from W's columns")
        var y = Matrix<Scalar>(rows: x.rows, columns: outputs)
        guard x.rows > 0 else { return y }
        let m = outputs
        weight.storage.withUnsafeBufferPointer { w in
            y.withUnsafeMutableBufferPointer { yp in
                let out = yp.baseAddress!
                Scalar.gemm(
                    transA: false, transB: true, m: x.rows, n: m, k: inputs, alpha: 1,
                    a: x.base, lda: x.rowStride, b: w.baseAddress!, ldb: inputs, beta: 0, c: out, ldc: m)
                for i in 0..<x.rows {
                    let r = out + i * m
                    for j in 0..<m { r[j] = activate(r[j] + bias[j]) }
                }
            }
        }
        return y
    }

    /// `|| |W| |x_i| + |b| ||` for every row of `x` (the magnitude that bounds
    /// the rounding of `W x_i + b`), by one GEMM of absolute values per block.
    func absoluteMagnitudes(_ x: MatrixView<Scalar>) -> [Double] {
        let m = outputs
        let n = inputs
        let absW = weight.storage.map { abs($0) }
        let block = max(1, min(x.rows, 1 << 18 / max(1, m + n)))
        let xa = Workspace<Scalar>(count: block * n)
        let z = Workspace<Scalar>(count: block * m)
        var out = [Double](repeating: 0, count: x.rows)
        var start = 0
        while start < x.rows {
            let rows = min(block, x.rows - start)
            for i in 0..<rows {
                let r = x.row(start + i)
                for j in 0..<n { xa.base[i * n + j] = abs(r[j]) }
            }
            absW.withUnsafeBufferPointer { w in
                Scalar.gemm(
                    transA: false, transB: true, m: rows, n: m, k: n, alpha: 1, a: xa.base, lda: n,
                    b: w.baseAddress!, ldb: n, beta: 0, c: z.base, ldc: m)
            }
            for i in 0..<rows {
                var s = 0.0
                for j in 0..<m {
                    let v = Double(z.base[i * m + j]) + Double(abs(bias[j]))
                    s += v * v
                }
                out[start + i] = s.squareRoot()
            }
            start += rows
        }
        return out
    }

    /// Writes `Z = act(P U^T + 1 b^T)` for `rows` rows with `P` (`rows x k`)
    /// given; `k = 0` gives `act(b)` in every row.
    @inline(__always)
    func predictFromProjection(
        rows: Int, k: Int, p: UnsafePointer<Scalar>, u: UnsafePointer<Scalar>, z: UnsafeMutablePointer<Scalar>,
        activated: Bool
    ) {
        let m = outputs
        if k > 0 {
            Scalar.gemm(
                transA: false, transB: true, m: rows, n: m, k: k, alpha: 1, a: p, lda: k,
                b: u, ldb: k, beta: 0, c: z, ldc: m)
        } else {
            for i in 0..<rows * m { z[i] = 0 }
        }
        bias.withUnsafeBufferPointer { b in
            for i in 0..<rows {
                let r = z + i * m
                if activated {
                    for j in 0..<m { r[j] = activate(r[j] + b[j]) }
                } else {
                    for j in 0..<m { r[j] += b[j] }
                }
            }
        }
    }

    /// Squared row errors `||act(L x_i + b) - y_i||^2` of rows `0 ..< rows`
    /// of `x` against targets `y` (`rows x m`, contiguous), written to `out`.
    ///
    /// `scratch` must hold `blockRows * (k + m)` elements; work is blocked by
    /// `blockRows` rows. `columns`: of `x` and `V` (`k x columns`), when not
    /// the layer's inputs (rows of other coordinates, `WeightedRegression`).
    func squaredErrors(
        x: UnsafePointer<Scalar>, ldx: Int, y: UnsafePointer<Scalar>, rows: Int,
        u: UnsafePointer<Scalar>, v: UnsafePointer<Scalar>, k: Int,
        out: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Scalar>, blockRows: Int, columns: Int? = nil
    ) {
        let n = columns ?? inputs
        let p = scratch
        let z = scratch + blockRows * k
        var start = 0
        while start < rows {
            let b = min(blockRows, rows - start)
            if k > 0 {
                Scalar.gemm(
                    transA: false, transB: true, m: b, n: k, k: n, alpha: 1, a: x + start * ldx, lda: ldx,
                    b: v, ldb: n, beta: 0, c: p, ldc: k)
            }
            squaredErrors(
                projection: p, y: y + start * outputs, rows: b, u: u, k: k, out: out + start, scratch: z)
            start += b
        }
    }

    /// Squared row errors `||act(P_i U^T + b) - y_i||^2` of `rows` rows from
    /// their projections `P` (`rows x k`, contiguous; `P = X V^T`) against
    /// targets `y` (`rows x m`), written to `out`; `scratch` holds
    /// `rows * m` elements.
    func squaredErrors(
        projection p: UnsafePointer<Scalar>, y: UnsafePointer<Scalar>, rows: Int, u: UnsafePointer<Scalar>, k: Int,
        out: UnsafeMutablePointer<Double>, scratch z: UnsafeMutablePointer<Scalar>
    ) {
        let m = outputs
        predictFromProjection(rows: rows, k: k, p: p, u: u, z: z, activated: true)
        for i in 0..<rows {
            let zr = z + i * m
            let yr = y + i * m
            var s: Scalar = 0
            for j in 0..<m {
                let d = zr[j] - yr[j]
                s += d * d
            }
            out[i] = Double(s)
        }
    }

    /// The error of one point recomputed in `Double` from the caller's values:
    /// `||act(W x + b) - act(U (V x) + b)||` with every product in `Double`.
    func errorInDouble(x: UnsafePointer<Scalar>, factors f: FactorPointers<Scalar>) -> Double {
        let m = outputs
        let n = inputs
        let k = f.k
        let u = f.u
        let v = f.v
        let a = Double(slope)
        var vx = [Double](repeating: 0, count: k)
        for r in 0..<k {
            var s = 0.0
            let vr = v + r * n
            for j in 0..<n { s += Double(vr[j]) * Double(x[j]) }
            vx[r] = s
        }
        var total = 0.0
        weight.storage.withUnsafeBufferPointer { w in
            for i in 0..<m {
                var wx = Double(bias[i])
                var lx = Double(bias[i])
                let wr = w.baseAddress! + i * n
                for j in 0..<n { wx += Double(wr[j]) * Double(x[j]) }
                let ur = u + i * f.ldu
                for r in 0..<k { lx += Double(ur[r]) * vx[r] }
                let d = (wx > 0 ? wx : a * wx) - (lx > 0 ? lx : a * lx)
                total += d * d
            }
        }
        return total.squareRoot()
    }

    /// `F = ||E||_F^2` and its gradient (MATH.md §3) on `rows` rows, with
    /// optional row weights (`F = sum_i w_i ||E_i||^2`; nil: all 1):
    ///
    ///     P = X V^T,  Z = P U^T + 1 b^T,  E = act(Z) - Y,  D = w ⊙ E ⊙ act'(Z),
    ///     dF/dU = 2 D^T P,   dF/dV = 2 (D U)^T X.
    ///
    /// With `power = q > 1` the weights are `(s_i / max_j s_j)^(q - 1)` of the
    /// current squared row errors `s_i`: the gradient direction of the smooth
    /// maximum `sum_i s_i^q` (up to a positive factor); with `groupSize = P > 1`
    /// (`rows` a multiple of `P`), `s_i` is the sum over the row's group of `P`
    /// consecutive rows (MATH.md §9). `scratch` holds
    /// `rows * (2 k + m)` elements. Returns `F` (unweighted) and the largest `s_i`
    /// (both 0 with `skipLoss` and `power <= 1`, when only the gradient is needed).
    func gradient(
        x: UnsafePointer<Scalar>, ldx: Int, y: UnsafePointer<Scalar>, rows: Int,
        u: UnsafePointer<Scalar>, v: UnsafePointer<Scalar>, k: Int, power: Double,
        gradU: UnsafeMutablePointer<Scalar>, gradV: UnsafeMutablePointer<Scalar>, scratch: UnsafeMutablePointer<Scalar>,
        skipLoss: Bool = false, groupSize: Int = 1
    ) -> (loss: Double, maxSquared: Double) {
        let m = outputs
        let n = inputs
        let p = scratch
        let z = scratch + rows * k
        let t = z + rows * m
        Scalar.gemm(
            transA: false, transB: true, m: rows, n: k, k: n, alpha: 1, a: x, lda: ldx,
            b: v, ldb: n, beta: 0, c: p, ldc: k)
        predictFromProjection(rows: rows, k: k, p: p, u: u, z: z, activated: false)
        var loss = 0.0
        var largest = 0.0
        var rowSquares = [Double](repeating: 0, count: power > 1 ? rows : 0)
        let a = slope
        for i in 0..<rows {
            let zr = z + i * m
            let yr = y + i * m
            if power > 1 || !skipLoss {
                // Four partial sums: the reduction stays fast without reassociation.
                var s0: Scalar = 0
                var s1: Scalar = 0
                var s2: Scalar = 0
                var s3: Scalar = 0
                var j = 0
                while j + 3 < m {
                    let e0 = (zr[j] > 0 ? zr[j] : a * zr[j]) - yr[j]
                    let e1 = (zr[j + 1] > 0 ? zr[j + 1] : a * zr[j + 1]) - yr[j + 1]
                    let e2 = (zr[j + 2] > 0 ? zr[j + 2] : a * zr[j + 2]) - yr[j + 2]
                    let e3 = (zr[j + 3] > 0 ? zr[j + 3] : a * zr[j + 3]) - yr[j + 3]
                    s0 += e0 * e0
                    s1 += e1 * e1
                    s2 += e2 * e2
                    s3 += e3 * e3
                    j += 4
                }
                while j < m {
                    let e = (zr[j] > 0 ? zr[j] : a * zr[j]) - yr[j]
                    s0 += e * e
                    j += 1
                }
                let s = Double((s0 + s1) + (s2 + s3))
                loss += s
                largest = max(largest, s)
                if power > 1 { rowSquares[i] = s }
            }
            // D (times 2), elementwise: vectorisable.
            for j in 0..<m {
                let zi = zr[j]
                let e = (zi > 0 ? zi : a * zi) - yr[j]
                zr[j] = zi > 0 ? 2 * e : 2 * a * e
            }
        }
        if power > 1, groupSize > 1 {
            // Groups (MATH.md §9): the smooth maximum is over the groups' sums.
            largest = 0
            for g in 0..<(rows / groupSize) {
                var s = 0.0
                for i in (g * groupSize)..<((g + 1) * groupSize) { s += rowSquares[i] }
                for i in (g * groupSize)..<((g + 1) * groupSize) { rowSquares[i] = s }
                largest = max(largest, s)
            }
        }
        if power > 1, largest > 0 {
            for i in 0..<rows {
                let w = Scalar(pow(rowSquares[i] / largest, power - 1))
                let zr = z + i * m
                for j in 0..<m { zr[j] *= w }
            }
        }
        // dF/dU = D^T P (m x k); T = D U (rows x k); dF/dV = T^T X (k x n).
        Scalar.gemm(
            transA: true, transB: false, m: m, n: k, k: rows, alpha: 1, a: z, lda: m,
            b: p, ldb: k, beta: 0, c: gradU, ldc: k)
        Scalar.gemm(
            transA: false, transB: false, m: rows, n: k, k: m, alpha: 1, a: z, lda: m,
            b: u, ldb: k, beta: 0, c: t, ldc: k)
        Scalar.gemm(
            transA: true, transB: false, m: k, n: n, k: rows, alpha: 1, a: t, lda: k,
            b: x, ldb: ldx, beta: 0, c: gradV, ldc: n)
        return (loss, largest)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
