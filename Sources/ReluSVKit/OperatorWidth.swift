/// The Gaussian mean width of an operator (MATH.md §5) with what is known
/// about it exactly.
public struct OperatorWidth: Sendable, Equatable {
    /// The Monte-Carlo estimate (mean trimmed by `trim` at each end).
    public var estimate: Double
    /// Its standard error.
    public var standardError: Double
    /// A certain lower bound of the width, or NaN when none is known.
    public var lower: Double
    /// A certain upper bound of the width.
    public var upper: Double
    /// Linear: `||W||_op`; ReLU layer: `max_i ||phi(x_i)||` over the points.
    public var norm: Double
    public var samples: Int
    /// Points the estimate used (0 for the linear closed form).
    public var points: Int
}

/// `w(W) = 2 E ||W^T g||`, `g ~ N(0, I_m)`, from `samples` directions of
/// `CounterRandom(seed, .widthDirections)` (one GEMM `G W`), with the
/// two-sided bound `2 sqrt(2/pi) ||W||_F <= w(W) <= 2 ||W||_F`
/// (`||sigma||_2 = ||W||_F`) and `norm = sigma_0(W)`.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func linearOperatorWidth<Scalar: BLASScalar>(
    weight: MatrixView<Scalar>, samples: Int, seed: UInt64, trim: Double
) throws -> OperatorWidth {
    guard samples > 0 else { throw EngineError.invalidArgument("samples must be positive, got \(samples)") }
    let m = weight.rows, n = weight.columns
    let sigma = try singularValues(of: weight)  // also checks finiteness
    var g = [Scalar](repeating: 0, count: samples * m)
    g.withUnsafeMutableBufferPointer {
        CounterRandom(seed: seed, stream: .widthDirections).fillNormals($0.baseAddress!, firstRow: 0, rows: samples, columns: m)
    }
    var t = [Scalar](repeating: 0, count: samples * n)
    g.withUnsafeBufferPointer { gp in
        t.withUnsafeMutableBufferPointer { tp in
            Scalar.gemm(transA: false, transB: false, m: samples, n: n, k: m, alpha: 1, a: gp.baseAddress!, lda: m,
                        b: weight.base, ldb: weight.rowStride, beta: 0, c: tp.baseAddress!, ldc: n)
        }
    }
    var values = [Double](repeating: 0, count: samples)
    for j in 0..<samples {
        var s = 0.0
        for c in 0..<n { let v = Double(t[j * n + c]); s += v * v }
        values[j] = 2 * s.squareRoot()
    }
    let summary = try SampleSummary(values, trim: trim)
    let frobenius = sigma.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    return OperatorWidth(estimate: summary.estimate, standardError: summary.standardError,
                         lower: 2 * (2 / Double.pi).squareRoot() * frobenius, upper: 2 * frobenius,
                         norm: Double(sigma.first ?? 0), samples: samples, points: 0)
}

/// The width of the layer `phi` on the points `x`: the Gaussian mean width of
/// the set `phi(X)` (rows), an estimate from inside of `w(phi(B))` when `x`
/// samples the unit sphere. Upper bound by Sudakov–Fernique: `phi` is
/// 1-Lipschitz after `W` (Lemma 4), so `w(phi(X)) <= w(W X) <= 2 ||W||_F max_i ||x_i||`.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func layerOperatorWidth<Scalar: BLASScalar>(
    layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>, samples: Int, seed: UInt64, trim: Double,
    progress: Progress = .silent
) throws -> OperatorWidth {
    let problem = try ReluBoundProblem(layer: layer, points: x)
    var norm = 0.0
    for i in 0..<problem.count {
        var s = 0.0
        for j in 0..<layer.outputs { let v = Double(problem.y[i, j]); s += v * v }
        norm = max(norm, s.squareRoot())
    }
    let (summary, _) = try problem.y.withView {
        try gaussianMeanWidth(of: $0, samples: samples, seed: seed, trim: trim, progress: progress)
    }
    let frobenius = layer.weight.storage.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    return OperatorWidth(estimate: summary.estimate, standardError: summary.standardError, lower: .nan,
                         upper: 2 * frobenius * problem.maxPointNorm, norm: norm, samples: samples, points: problem.count)
}
