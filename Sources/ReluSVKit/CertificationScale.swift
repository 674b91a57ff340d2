/// Certification at every scale (MATH.md §2–3): the bounds of a layer whose
/// outputs are tiny (down to the smallest normal numbers) or huge are computed
/// on the same layer scaled by a power of two, where no squared error
/// underflows or overflows, and scaled back.
///
/// The ReLU and the leaky ReLU are positively homogeneous,
/// `act(c t) = c act(t)` for `c > 0`, so with `W' = c W` and `b' = c b`
///
///     act(L' x + b') - act(W' x + b') = c (act(L x + b) - act(W x + b)),   L' = c L,
///
/// exactly: every error of the scaled layer is `c` times the error of the
/// same approximant of the caller's layer. For `c` a power of two the scaled
/// entries are exact (barring entries more than the whole exponent range below
/// the largest, which become subnormal), and so are the scaled-back values:
/// `bound = bound' / c`, rounded up where that division is inexact (a
/// subnormal result), so the reported bound is never below the error of the
/// returned factors `L = L' / c`. The points `X` are not copied.
///
/// The scale brings `r = max(max|W_ij| max_i ||x_i||, max|b_j|)`, the size of
/// the pre-activations, into `[1, 2)` when it lies outside
/// `2^(-range) ... 2^range` (`range` 200 for `Double`, 20 for `Float`): there
/// squared errors down to `2^-40 r` (below the rounding of any evaluation) and
/// the square sums of `m` such terms neither underflow nor overflow. Inside the
/// range the layer is used as given, so ordinary inputs give the same bits as
/// without this step.
public enum CertificationScale {
    /// Exponents of `r` the layer is used at as given.
    static func range<Scalar: BLASScalar>(_: Scalar.Type) -> Int { Scalar.self == Float.self ? 20 : 200 }

    /// The power of two `c` the layer `(W, b)` over the points (largest row
    /// norm `maxPointNorm`) is evaluated at: 1 inside the range, else
    /// `2^(-e)` for `r = 2^e (1 + f)`, limited so that `c W` and `c b` stay
    /// `2^16` below the largest finite `Scalar`.
    public static func factor<Scalar: BLASScalar>(layer: ReluLayer<Scalar>, maxPointNorm: Double) -> Double {
        let weight = layer.weight.storage.reduce(0.0) { max($0, abs(Double($1))) }
        let bias = layer.bias.reduce(0.0) { max($0, abs(Double($1))) }
        var exponents: [Int] = []
        if weight > 0, maxPointNorm > 0 { exponents.append(Int(weight.exponent) + Int(maxPointNorm.exponent)) }
        if bias > 0 { exponents.append(Int(bias.exponent)) }
        guard let e = exponents.max(), abs(e) > range(Scalar.self) else { return 1 }
        let largest = max(weight, bias)
        let headroom = Int(Scalar.greatestFiniteMagnitude.exponent) - 16 - Int(largest.exponent)
        return Double(sign: .plus, exponent: min(-e, headroom), significand: 1)
    }

    /// `value / c` rounded up: exact where the quotient is normal, else (a
    /// subnormal quotient, rounded to nearest) the next value above it when
    /// it was rounded down (`q c`, a power-of-two scaling, is exact).
    static func unscaled(_ value: Double, by c: Double) -> Double {
        guard c != 1, value.isFinite, value > 0 else { return value }
        let q = value / c
        return q * c >= value ? q : q.nextUp
    }
}

extension ReluLayer {
    /// The layer `act(c W x + c b)` (`c` a power of two), with the same slope.
    func scaled(by c: Double) throws -> ReluLayer {
        let s = Scalar(c)
        let w = Matrix(rows: weight.rows, columns: weight.columns, storage: weight.storage.map { $0 * s })
        return try w.withView { try ReluLayer(weight: $0, bias: bias.map { $0 * s }, slope: Double(slope)) }
    }
}

/// `reluSpectrum` of the layer over the points `X` (rows; every `groupSize`
/// consecutive rows one point, MATH.md §9), certified at every scale
/// (`CertificationScale`): computed on the layer scaled by
/// `c = CertificationScale.factor` and scaled back. Bounds and `t_k` are
/// divided by `c` (rounded up), `sigma_k` too; the kept factors are those of
/// the scaled layer, `L = U V / factorScale` (`factorScale = c`).
///
/// Reproducible: the whole computation runs with OpenBLAS at one thread
/// (`BLASThreadLimit`; the engine's own threads work across `k`), so every
/// value is bit-identical whatever OpenBLAS's thread count, `settings.threads`
/// and other calls running at the same time. Measured cost: none beyond the
/// noise (the set-up's SVDs and GEMMs are a small share of the work).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func reluSpectrum<Scalar: BLASScalar>(
    layer: ReluLayer<Scalar>, points: MatrixView<Scalar>, groupSize: Int = 1, ks: [Int],
    settings: SpectrumSettings = SpectrumSettings(), progress: Progress = .silent
) throws -> ReluSpectrum<Scalar> {
    try BLASThreadLimit.singleThreaded {
        try scaledSpectrum(
            layer: layer, points: points, groupSize: groupSize, ks: ks, settings: settings, progress: progress)
    }
}

/// `reluSpectrum(layer:points:...)` without the OpenBLAS thread limit.
private func scaledSpectrum<Scalar: BLASScalar>(
    layer: ReluLayer<Scalar>, points: MatrixView<Scalar>, groupSize: Int, ks: [Int],
    settings: SpectrumSettings, progress: Progress
) throws -> ReluSpectrum<Scalar> {
    try ReluBoundRequest.checkData(
        rows: points.rows, columns: points.columns, inputs: layer.inputs, groupSize: groupSize)
    let maxPointNorm = try (0..<points.rows).reduce(0.0) { largest, i in
        let norm = RowExtremes.norm(points.row(i), count: points.columns)
        guard norm.isFinite else {
            let r = points.row(i)
            for j in 0..<points.columns where !r[j].isFinite { throw EngineError.nonFiniteData(row: i, column: j) }
            throw EngineError.overflow("the norm of row \(i) of X exceeds the range of Double")
        }
        return max(largest, norm)
    }
    let c = CertificationScale.factor(layer: layer, maxPointNorm: maxPointNorm)
    let problem = try ReluBoundProblem(
        layer: c == 1 ? layer : try layer.scaled(by: c), points: points, groupSize: groupSize)
    var spectrum = try reluSpectrum(of: problem, ks: ks, settings: settings, progress: progress)
    guard c != 1 else { return spectrum }
    for i in spectrum.entries.indices {
        spectrum.entries[i].bound = CertificationScale.unscaled(spectrum.entries[i].bound, by: c)
        spectrum.entries[i].truncationBound = CertificationScale.unscaled(spectrum.entries[i].truncationBound, by: c)
        spectrum.entries[i].sigma /= c
    }
    guard spectrum.entries.allSatisfy({ $0.bound.isFinite && $0.sigma.isFinite }) else {
        throw EngineError.overflow("a bound exceeds the range of Double; rescale W, b or X")
    }
    spectrum.factorScale = c
    return spectrum
}
