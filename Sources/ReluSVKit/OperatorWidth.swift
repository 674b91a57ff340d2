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

/// Bytes an operator width allocates for `samples` directions of an `m x n`
/// map (or layer) at `points` points in `scalarBytes` precision: for the
/// linear map the directions `G` (`S x m`), the products `G W` (`S x n`) and
/// the SVD of `W`; for the layer the sample (`N x n`), `phi(X)` (`N x m`),
/// the width accumulator over it and the layer's copy of `W`. Entry points
/// check it against `MemoryBudget` before allocating anything.
public func operatorWidthMemory(
    outputs m: Int, inputs n: Int, samples: Int, points: Int, relu: Bool,
    scalarBytes: Int
) -> Double {
    let m = Double(m)
    let n = Double(n)
    let s = Double(samples)
    let p = Double(points)
    let b = Double(scalarBytes)
    let perDirection: Double = 5 * 8 * s  // widths, extremes, norms (Double)
    if !relu {
        let elements: Double = s * (m + n) + 3 * m * n
        return elements * b + perDirection
    }
    let scratch: Double = max(s, Double(1 << 20))
    let elements: Double = p * (n + 2 * m) + s * m + scratch + m * n
    return elements * b + 8 * p + perDirection
}

/// `w(W) = 2 E ||W^T g||`, `g ~ N(0, I_m)`, from `samples` directions of
/// `CounterRandom(seed, .widthDirections)` (one GEMM `G W`), with the
/// two-sided bound `2 sqrt(2/pi) ||W||_F <= w(W) <= 2 ||W||_F`
/// (`||sigma||_2 = ||W||_F`) and `norm = sigma_0(W)`.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func linearOperatorWidth<Scalar: BLASScalar>(
    weight: MatrixView<Scalar>, samples: Int, seed: UInt64, trim: Double, progress: Progress = .silent
) throws -> OperatorWidth {
    guard samples > 0 else { throw EngineError.invalidArgument("samples must be positive, got \(samples)") }
    guard samples <= WidthAccumulator<Scalar>.maximumSamples else {
        throw EngineError.invalidArgument(
            "samples = \(samples) exceeds the limit of \(WidthAccumulator<Scalar>.maximumSamples)")
    }
    try SampleSummary.checkTrim(trim)
    let m = weight.rows
    let n = weight.columns
    try MemoryBudget.require(
        bytes: operatorWidthMemory(
            outputs: m, inputs: n, samples: samples, points: 0,
            relu: false, scalarBytes: MemoryLayout<Scalar>.stride),
        for: "the width of a \(m) x \(n) map from \(samples) directions")
    let sigma = try singularValues(of: weight)  // also checks finiteness
    try progress.checkCancelled()
    let g = try ScratchBuffer<Scalar>(count: samples * m, purpose: "\(samples) x \(m) directions")
    CounterRandom(seed: seed, stream: .widthDirections).fillNormals(g.pointer, firstRow: 0, rows: samples, columns: m)
    try progress.checkCancelled()
    let t = try ScratchBuffer<Scalar>(count: samples * n, purpose: "\(samples) x \(n) products")
    Scalar.gemm(
        transA: false, transB: false, m: samples, n: n, k: m, alpha: 1, a: g.pointer, lda: m,
        b: weight.base, ldb: weight.rowStride, beta: 0, c: t.pointer, ldc: n)
    try progress.checkCancelled()
    let values = (0..<samples).map { j in 2 * RowExtremes.norm(t.pointer + j * n, count: n) }
    let summary = try SampleSummary(values, trim: trim)
    let frobenius = sigma.map(Double.init).withUnsafeBufferPointer {
        RowExtremes.norm($0.baseAddress!, count: $0.count)
    }
    guard (2 * frobenius).isFinite else {
        throw EngineError.overflow("2 ||W||_F exceeds the range of Double; rescale W")
    }
    return OperatorWidth(
        estimate: summary.estimate, standardError: summary.standardError,
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
    try SampleSummary.checkTrim(trim)
    try WidthAccumulator<Scalar>.validate(dimension: layer.outputs, samples: samples)
    try progress.checkCancelled()
    let problem = try ReluBoundProblem(layer: layer, points: x)
    try progress.checkCancelled()
    let (summary, norm) = try problem.y.withView { y in
        let norm = (0..<y.rows).reduce(0.0) { max($0, RowExtremes.norm(y.row($1), count: y.columns)) }
        return (
            try gaussianMeanWidth(of: y, samples: samples, seed: seed, trim: trim, progress: progress).summary, norm
        )
    }
    let frobenius = layer.weight.withView { RowExtremes.norm($0.base, count: $0.rows * $0.columns) }
    guard frobenius.isFinite, norm.isFinite, (2 * frobenius * problem.maxPointNorm).isFinite else {
        throw EngineError.overflow("||W||_F max ||x|| or max ||phi(x)|| exceeds the range of Double; rescale the data")
    }
    return OperatorWidth(
        estimate: summary.estimate, standardError: summary.standardError, lower: .nan,
        upper: 2 * frobenius * problem.maxPointNorm, norm: norm, samples: samples, points: problem.count)
}
