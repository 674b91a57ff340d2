/// Certification at every scale (MATH.md §2–3): the bounds of a layer whose
/// outputs are tiny (down to the smallest normal numbers) or huge are computed
/// on the same layer scaled by powers of two, where no squared error
/// underflows or overflows, and scaled back.
///
/// The ReLU and the leaky ReLU are positively homogeneous,
/// `act(c t) = c act(t)` for `c > 0`, so with `X' = a X`, `W' = c W` and
/// `b' = a c b`
///
///     act(L' x' + b') - act(W' x' + b') = a c (act(L x + b) - act(W x + b)),   L' = c L,
///
/// exactly: every error of the scaled problem is `a c` times the error of the
/// same approximant of the caller's. For `a = 2^ka` and `c = 2^kc` the scaled
/// entries are exact (barring entries more than the whole exponent range below
/// the largest, which become subnormal), and so are the scaled-back values:
/// `bound = bound' / (a c)`, rounded up where that is inexact (a subnormal
/// result), so a reported bound is never below the error of the returned
/// factors `L = L' / c`.
///
/// - The points are scaled (a copy) only when their largest norm lies outside
///   `2^(-range) ... 2^range`, where the fits' gradient moments (squares of
///   products with `X`) would underflow or overflow, or meet Adam's absolute
///   epsilon; `a` brings it into `[1, 2)`.
/// - The layer is scaled when `r = max(max|W_ij| max_i ||x'_i||, max|b'_j|)`,
///   the size of the pre-activations, lies outside `2^(-range) ... 2^range`
///   (`range` 200 for `Double`, 20 for `Float`): `c` brings it into `[1, 2)`,
///   where squared errors down to `2^-40 r` (below the rounding of any
///   evaluation) and the square sums of `m` such terms neither underflow nor
///   overflow; `c W` and `a c b` stay `2^16` below the largest `Scalar`.
///
/// Inside the ranges the problem is used as given, so ordinary inputs give the
/// same bits as without this step.
public enum CertificationScale {
    /// Exponents of `r` the layer is used at as given.
    static func range<Scalar: BLASScalar>(_: Scalar.Type) -> Int { Scalar.self == Float.self ? 20 : 200 }

    /// Largest `|kc|`: `2^kc` (the factors' scale) is a normal `Double`.
    static let largestLayerExponent = 1000

    /// `ka`: the points are scaled by `2^ka` (0: used as given).
    public static func pointExponent<Scalar: BLASScalar>(maxPointNorm: Double, _: Scalar.Type) -> Int {
        guard maxPointNorm > 0, maxPointNorm.isFinite else { return 0 }
        let e = Int(maxPointNorm.exponent)
        return abs(e) > range(Scalar.self) ? -e : 0
    }

    /// Whether `reluSpectrum(layer:points:...)` copies the points `x` (scaled):
    /// for the memory estimate, before the call (false where an entry is not
    /// finite: the call refuses those).
    public static func copiesPoints<Scalar: BLASScalar>(_ x: MatrixView<Scalar>) -> Bool {
        guard let norm = try? largestNorm(x) else { return false }
        return pointExponent(maxPointNorm: norm, Scalar.self) != 0
    }

    /// `kc`: the layer `(W, b)` over points of largest norm `maxPointNorm`
    /// (before their scaling by `2^ka`) is scaled to `(2^kc W, 2^(kc + ka) b)`.
    public static func layerExponent<Scalar: BLASScalar>(
        layer: ReluLayer<Scalar>, maxPointNorm: Double, pointExponent ka: Int = 0
    ) -> Int {
        let weight = layer.weight.storage.reduce(0.0) { max($0, abs(Double($1))) }
        let bias = layer.bias.reduce(0.0) { max($0, abs(Double($1))) }
        var exponents: [Int] = []
        if weight > 0, maxPointNorm > 0 {
            exponents.append(Int(weight.exponent) + Int(maxPointNorm.exponent) + ka)
        }
        if bias > 0 { exponents.append(Int(bias.exponent) + ka) }
        guard let e = exponents.max(), abs(e) > range(Scalar.self) else { return 0 }
        let top = Int(Scalar.greatestFiniteMagnitude.exponent) - 16
        var k = -e
        if weight > 0 { k = min(k, top - Int(weight.exponent)) }
        if bias > 0 { k = min(k, top - Int(bias.exponent) - ka) }
        return max(-largestLayerExponent, min(largestLayerExponent, k))
    }

    /// The factor `c = 2^kc` of `layerExponent` (for points used as given).
    public static func factor<Scalar: BLASScalar>(layer: ReluLayer<Scalar>, maxPointNorm: Double) -> Double {
        Double(sign: .plus, exponent: layerExponent(layer: layer, maxPointNorm: maxPointNorm), significand: 1)
    }

    /// `value 2^k`, one rounding (only where the result is subnormal).
    @inline(__always)
    static func scaled<T: BinaryFloatingPoint>(_ value: T, exponent k: Int) -> T {
        k == 0 ? value : T(sign: .plus, exponent: T.Exponent(k), significand: value)
    }

    /// `value 2^-k` rounded up: exact where the quotient is normal, else (a
    /// subnormal quotient, rounded to nearest) the next value above it when
    /// it was rounded down (scaling it back, `q 2^k`, is exact).
    static func unscaled(_ value: Double, exponent k: Int) -> Double {
        guard k != 0, value.isFinite, value > 0 else { return value }
        let q = scaled(value, exponent: -k)
        return scaled(q, exponent: k) >= value ? q : q.nextUp
    }

    /// `unscaled(value, exponent: k)` for `c = 2^k`.
    static func unscaled(_ value: Double, by c: Double) -> Double {
        unscaled(value, exponent: Int(c.exponent))
    }
}

extension ReluLayer {
    /// The layer `act(2^kw W x + 2^kb b)`, with the same slope.
    func scaled(weightExponent kw: Int, biasExponent kb: Int) throws -> ReluLayer {
        let w = Matrix(
            rows: weight.rows, columns: weight.columns,
            storage: weight.storage.map { CertificationScale.scaled($0, exponent: kw) })
        return try w.withView {
            try ReluLayer(
                weight: $0, bias: bias.map { CertificationScale.scaled($0, exponent: kb) }, slope: Double(slope))
        }
    }
}

/// `reluSpectrum` of the layer over the points `X` (rows; every `groupSize`
/// consecutive rows one point, MATH.md §9), certified at every scale
/// (`CertificationScale`): computed on the problem scaled by `2^ka` (points)
/// and `2^kc` (layer) and scaled back. Bounds and `t_k` are divided by
/// `2^(ka + kc)` (rounded up), `sigma_k` by `2^kc`, `dataMaxNorm` by `2^ka`;
/// the kept factors are those of the scaled layer, `L = U V / factorScale`
/// (`factorScale = 2^kc`). A scaled copy of the points (only for norms
/// beyond `2^±200` in float64, `2^±20` in float32) is checked against the
/// memory limit first.
///
/// Reproducible: the whole computation runs with OpenBLAS at one thread
/// (`BLASThreadLimit`; the engine's own threads work across `k`), so every
/// value is bit-identical whatever OpenBLAS's thread count, `settings.threads`
/// and other calls running at the same time. Measured cost: none beyond the
/// noise (the set-up's SVDs and GEMMs are a small share of the work).
///
/// `weightSVD`, when given, is `thinSVD(of: layer.weight)` computed by the
/// caller with OpenBLAS at one thread (shared by several curves of one layer,
/// the same values the call would compute). A layer evaluated scaled
/// (`kc != 0`) takes the SVD of its scaled weight instead: LAPACK rescales
/// matrices of extreme norm internally, so the unscaled factors could differ
/// in their last bits from those the call computes alone.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func reluSpectrum<Scalar: BLASScalar>(
    layer: ReluLayer<Scalar>, points: MatrixView<Scalar>, groupSize: Int = 1, ks: [Int],
    settings: SpectrumSettings = SpectrumSettings(), weightSVD: ThinSVD<Scalar>? = nil, progress: Progress = .silent
) throws -> ReluSpectrum<Scalar> {
    try BLASThreadLimit.singleThreaded {
        try scaledSpectrum(
            layer: layer, points: points, groupSize: groupSize, ks: ks, settings: settings, weightSVD: weightSVD,
            progress: progress)
    }
}

/// `reluSpectrum(layer:points:...)` without the OpenBLAS thread limit.
private func scaledSpectrum<Scalar: BLASScalar>(
    layer: ReluLayer<Scalar>, points: MatrixView<Scalar>, groupSize: Int, ks: [Int],
    settings: SpectrumSettings, weightSVD: ThinSVD<Scalar>?, progress: Progress
) throws -> ReluSpectrum<Scalar> {
    try ReluBoundRequest.checkData(
        rows: points.rows, columns: points.columns, inputs: layer.inputs, groupSize: groupSize)
    let maxPointNorm = try largestNorm(points)
    let ka = CertificationScale.pointExponent(maxPointNorm: maxPointNorm, Scalar.self)
    let kc = CertificationScale.layerExponent(layer: layer, maxPointNorm: maxPointNorm, pointExponent: ka)
    let scaledLayer = ka == 0 && kc == 0 ? layer : try layer.scaled(weightExponent: kc, biasExponent: kc + ka)
    func run(_ x: MatrixView<Scalar>) throws -> ReluSpectrum<Scalar> {
        let problem = try ReluBoundProblem(layer: scaledLayer, points: x, groupSize: groupSize)
        return try reluSpectrum(
            of: problem, ks: ks, settings: settings, weightSVD: kc == 0 ? weightSVD : nil, progress: progress)
    }
    var spectrum: ReluSpectrum<Scalar>
    if ka == 0 {
        spectrum = try run(points)
    } else {
        try MemoryBudget.require(
            elements: Double(points.rows) * Double(points.columns), scalarBytes: MemoryLayout<Scalar>.stride,
            for: "the scaled copy of the \(points.rows) x \(points.columns) points")
        var copy = Matrix<Scalar>(rows: points.rows, columns: points.columns)
        for i in 0..<points.rows {
            let r = points.row(i)
            for j in 0..<points.columns { copy[i, j] = CertificationScale.scaled(r[j], exponent: ka) }
        }
        spectrum = try copy.withView(run)
    }
    guard ka != 0 || kc != 0 else { return spectrum }
    for i in spectrum.entries.indices {
        spectrum.entries[i].bound = CertificationScale.unscaled(spectrum.entries[i].bound, exponent: ka + kc)
        spectrum.entries[i].truncationBound = CertificationScale.unscaled(
            spectrum.entries[i].truncationBound, exponent: ka + kc)
        spectrum.entries[i].sigma = CertificationScale.scaled(spectrum.entries[i].sigma, exponent: -kc)
    }
    guard spectrum.entries.allSatisfy({ $0.bound.isFinite && $0.sigma.isFinite }) else {
        throw EngineError.overflow("a bound exceeds the range of Double; rescale W, b or X")
    }
    spectrum.dataMaxNorm = CertificationScale.scaled(spectrum.dataMaxNorm, exponent: -ka)
    spectrum.factorScale = Double(sign: .plus, exponent: kc, significand: 1)
    return spectrum
}

/// `max_i ||x_i||` (scaled where squares would underflow or overflow),
/// checking that every entry is finite (named by position) and the norms representable.
func largestNorm<Scalar: BLASScalar>(_ points: MatrixView<Scalar>) throws -> Double {
    try (0..<points.rows).reduce(0.0) { largest, i in
        let norm = RowExtremes.norm(points.row(i), count: points.columns)
        guard norm.isFinite else {
            let r = points.row(i)
            for j in 0..<points.columns where !r[j].isFinite { throw EngineError.nonFiniteData(row: i, column: j) }
            throw EngineError.overflow("the norm of row \(i) of X exceeds the range of Double")
        }
        return max(largest, norm)
    }
}
