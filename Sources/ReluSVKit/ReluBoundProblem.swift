/// The data of one bound computation, shared read-only by every fit and every
/// thread: the layer, the points `X` (rows), the targets `Y = phi(X)` and the
/// point norms. `evaluate` is the exact step 2 of MATH.md §3.
///
/// Precision: products are formed in `Scalar`, the precision of the caller's
/// data. For `Float` the points whose error lies within 0.1 % of the maximum
/// are recomputed in `Double` from the caller's values and the reported bound
/// is the `Double` maximum, so rounding in `Float` cannot lower a bound.
public final class ReluBoundProblem<Scalar: BLASScalar> {
    public let layer: ReluLayer<Scalar>
    public let x: MatrixView<Scalar>
    public let y: Matrix<Scalar>
    /// `||x_i||` in `Double`.
    public let pointNorms: [Double]
    /// `s_0 = max_i ||phi(x_i) - act(b)||`, the scale of the errors.
    public let outputScale: Double
    /// Rows per block of the exact evaluation.
    let blockRows: Int

    public var count: Int { x.rows }

    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public init(layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>) throws {
        guard x.rows > 0 else { throw EngineError.invalidArgument("the data X has no points") }
        guard x.columns == layer.inputs else {
            throw EngineError.mismatch("X has \(x.columns) columns but W has \(layer.inputs) columns (inputs)")
        }
        var norms = [Double](repeating: 0, count: x.rows)
        for i in 0..<x.rows {
            let r = x.row(i)
            var s = 0.0
            for j in 0..<x.columns {
                guard r[j].isFinite else { throw EngineError.nonFiniteData(row: i, column: j) }
                s += Double(r[j]) * Double(r[j])
            }
            norms[i] = s.squareRoot()
        }
        self.layer = layer
        self.x = x
        self.pointNorms = norms
        y = layer.apply(x)
        let rest = layer.bias.map { layer.activate($0) }
        var s0 = 0.0
        for i in 0..<x.rows {
            var s = 0.0
            for j in 0..<layer.outputs { let d = Double(y[i, j] - rest[j]); s += d * d }
            s0 = max(s0, s)
        }
        outputScale = s0.squareRoot()
        blockRows = max(16, min(x.rows, 1 << 20 / max(1, layer.outputs + layer.inputs)))
    }

    /// Largest `||x_i||`.
    public var maxPointNorm: Double { pointNorms.max() ?? 0 }

    /// Per-point errors `e_i = ||phi(x_i) - act(U V x_i + b)||` of the
    /// approximant with factors `u` (`m x k`) and `v` (`k x n`), and their
    /// maximum, the certified bound (see the type's note on precision).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func evaluate(u: UnsafePointer<Scalar>, v: UnsafePointer<Scalar>, k: Int) -> (bound: Double, errors: [Double]) {
        var errors = [Double](repeating: 0, count: count)
        let scratch = Workspace<Scalar>(count: blockRows * (k + layer.outputs))
        y.storage.withUnsafeBufferPointer { yp in
            errors.withUnsafeMutableBufferPointer { ep in
                layer.squaredErrors(x: x.base, ldx: x.rowStride, y: yp.baseAddress!, rows: count, u: u, v: v, k: k,
                                    out: ep.baseAddress!, scratch: scratch.base, blockRows: blockRows)
            }
        }
        var largest = 0.0
        for i in 0..<count {
            errors[i] = certifiable(errors[i].squareRoot())
            largest = max(largest, errors[i])
        }
        return (certified(errors: &errors, largest: largest, u: u, v: v, k: k), errors)
    }

    /// The maximum recomputed in `Double` over the points near the top (Float only).
    func certified(errors: inout [Double], largest: Double, u: UnsafePointer<Scalar>, v: UnsafePointer<Scalar>, k: Int) -> Double {
        guard Scalar.self != Double.self, largest > 0 else { return largest }
        for i in 0..<count where errors[i] >= largest * 0.999 {
            errors[i] = certifiable(layer.errorInDouble(x: x.row(i), u: u, v: v, k: k))
        }
        return errors.reduce(0, max)
    }
}

/// A per-point error as a bound may use it: NaN (from overflow or non-finite
/// factors) certifies nothing and counts as `+infinity`, so such a candidate
/// can never be reported as a bound (`max` would silently drop a NaN).
@inline(__always)
func certifiable(_ error: Double) -> Double {
    error.isNaN ? .infinity : error
}

/// Memory the engine allocates for scratch space (zeroed), freed with the object.
final class Workspace<Scalar: BLASScalar> {
    let base: UnsafeMutablePointer<Scalar>
    let count: Int
    init(count: Int) {
        self.count = max(count, 1)
        base = .allocate(capacity: self.count)
        base.initialize(repeating: 0, count: self.count)
    }
    deinit { base.deallocate() }
}

extension ReluBoundProblem {
    /// `F(U, V) = sum_i ||act(U V x_i + b) - phi(x_i)||^2` over all points and
    /// its analytic gradient (MATH.md §3), in `Scalar`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func lossAndGradient(factors f: RankFactors<Scalar>) -> (loss: Double, gradU: [Scalar], gradV: [Scalar]) {
        var gu = [Scalar](repeating: 0, count: f.m * f.k), gv = [Scalar](repeating: 0, count: f.k * f.n)
        guard f.k > 0 else {
            let dummy: [Scalar] = [0]
            let (bound, errors) = dummy.withUnsafeBufferPointer { evaluate(u: $0.baseAddress!, v: $0.baseAddress!, k: 0) }
            _ = bound
            return (errors.reduce(0) { $0 + $1 * $1 }, gu, gv)
        }
        let scratch = Workspace<Scalar>(count: count * (2 * f.k + layer.outputs))
        let loss = f.withPointers { u, v in
            y.storage.withUnsafeBufferPointer { yp in
                gu.withUnsafeMutableBufferPointer { gup in
                    gv.withUnsafeMutableBufferPointer { gvp in
                        layer.gradient(x: x.base, ldx: x.rowStride, y: yp.baseAddress!, rows: count, u: u, v: v, k: f.k,
                                       power: 1, gradU: gup.baseAddress!, gradV: gvp.baseAddress!, scratch: scratch.base).loss
                    }
                }
            }
        }
        return (loss, gu, gv)
    }
}
