/// The checks of a request for ReLU singular-value bounds (MATH.md §2–3, §9)
/// and the memory it needs, in one place and before anything is read, sized
/// or allocated: the ranks `k`, the points (the caller's `X`, grouped, or a
/// sample of the unit sphere) and the settings. `reluSpectrum` and
/// `ReluBoundProblem` call them; the C surface calls them before it reads
/// the caller's arrays or sizes memory, and checks only pointers, dtypes,
/// struct sizes and size arithmetic itself.
public enum ReluBoundRequest {
    /// Points of the unit-sphere sample that stands for `X` when none is given
    /// (the default of `relusv_relu_sv_options.sphere_points`, read by Python).
    public static let defaultSpherePoints = 4096

    /// The ranks `ks` and the settings: every `k` in `[0, p)`, `p = min(m, n)`,
    /// no repeats, at least one `k`; `settings.validate()`.
    public static func check(ks: [Int], p: Int, settings: SpectrumSettings) throws {
        try checkRankCount(ks.count, p: p)
        for k in ks { try checkRank(k, p: p) }
        guard Set(ks).count == ks.count else { throw EngineError.invalidArgument("ks contains repeated values") }
        guard !ks.isEmpty else { throw EngineError.invalidArgument("ks is empty") }
        try settings.validate()
    }

    /// At most `p` ranks can be distinct values in `[0, p)`: a longer list is
    /// refused before it is read.
    public static func checkRankCount(_ count: Int, p: Int) throws {
        guard count <= p else {
            throw EngineError.invalidArgument("k_count = \(count) exceeds min(m, n) = \(p): the k must be distinct")
        }
    }

    /// One rank `k` in `[0, p)`, in the caller's integer type (so that a
    /// value beyond `Int` is named as given).
    public static func checkRank<K: BinaryInteger>(_ k: K, p: Int) throws {
        guard k >= 0, k < p else {
            throw EngineError.invalidArgument(
                "k = \(k) is out of range: k must lie in [0, min(m, n) - 1] = [0, \(p - 1)]")
        }
    }

    /// The caller's points `X` (`rows x columns`, rows are points) for a layer
    /// with `inputs` inputs, every `groupSize` consecutive rows one point (§9).
    public static func checkData(rows: Int, columns: Int, inputs: Int, groupSize: Int) throws {
        guard columns == inputs else {
            throw EngineError.shape(
                "X has \(columns) columns but W has \(inputs) columns (inputs); rows of X are points")
        }
        guard rows > 0 else { throw EngineError.empty("X has no points (0 rows)") }
        try checkGroupSize(groupSize)
        guard rows % groupSize == 0 else {
            throw EngineError.shape(
                "X has \(rows) rows, not a multiple of group_size = \(groupSize) (each point is group_size consecutive rows)"
            )
        }
    }

    /// The sphere sample that stands for `X` when none is given (§2): at least
    /// one point, and single-row points (`groupSize = 1`).
    public static func checkSphere(points: Int, groupSize: Int) throws {
        try checkGroupSize(groupSize)
        guard groupSize == 1 else {
            throw EngineError.invalidArgument("group_size needs X (the sphere sample has single-row points)")
        }
        try ReluSVKit.checkSpherePoints(points)
    }

    /// Factors `U` and `V` of a rank-`k` approximant of an `m x n` layer:
    /// `m x k` and `k x n`.
    public static func checkFactors(
        u: (rows: Int, columns: Int), v: (rows: Int, columns: Int),
        outputs m: Int, inputs n: Int
    ) throws {
        guard u.rows == m, v.rows == u.columns, v.columns == n else {
            throw EngineError.shape(
                "U is \(u.rows) x \(u.columns) and V is \(v.rows) x \(v.columns); expected \(m) x k and k x \(n)")
        }
    }

    private static func checkGroupSize(_ groupSize: Int) throws {
        guard groupSize >= 1 else {
            throw EngineError.invalidArgument("group_size must be at least 1, got \(groupSize)")
        }
    }

    /// Bytes `reluSpectrum` holds at most for `points` rows of a layer `m x n`
    /// in `scalarBytes`-byte scalars: per row the targets, the pre-activations
    /// of every chain (`settings.chains`), the candidate families (their
    /// projected data and one pre-activation each; docs/engine.md, large point sets) and the
    /// row's data; four copies of `W` (the layer, its scaled copy
    /// (`CertificationScale`), its SVD); and with
    /// `settings.keepFactors` the kept factors, `sum_k k (m + n)` in `Scalar`
    /// and as `Double`; with weighted bands (`WeightedBands`) the projected
    /// data of the bands running at once, every band's factors and each
    /// chain's scaled pre-activations and Gram copy.
    /// Below `Double` (`scalarBytes < 8`) also the `Double` copies the blocked
    /// passes run on (`DoublePass.swift`): the problem's (`doubleCopyBytes`)
    /// and per family its basis (`N p + p (m + n)`) and the pass's row errors (`N p`).
    /// With `scaledPoints` the scaled copy of the points (`CertificationScale`), `N n`.
    public static func memoryBytes(
        outputs m: Int, inputs n: Int, points: Int, ks: [Int], settings: SpectrumSettings,
        scalarBytes: Int, scaledPoints: Bool = false
    ) -> Double {
        let scalar = Double(scalarBytes)
        let chains = Double(settings.chains)
        let families = 3.0
        let p = min(m, n)
        let factors = settings.keepFactors ? Double(ks.reduce(0, +)) * Double(m + n) * (8 + scalar) : 0
        let requested = ks.isEmpty ? Array(0..<p) : ks
        let weighting = SpectrumPlan.weighting(points: points, outputs: m, inputs: n, ks: requested, settings: settings)
        let banded = weighting.banded
        var bandCount = 0
        if case .bands(let width) = weighting {
            let limit = WeightedBands.limit(points: points, outputs: m)
            bandCount = WeightedBands.bands(of: requested, limit: limit, width: width).count
        }
        // Each running band (one per chain's thread) projects the points on up to p columns; the chains keep
        // every band's factors, about p (bands + 1) / 2 pairs in all.
        let bandColumns = banded ? Double(p) * Double(min(settings.chains, bandCount)) : 0
        let bandFactors = banded ? Double(p) * Double(bandCount + 1) / 2 * Double(m + n) : 0
        let perPoint =
            Double(m) * (2 * chains + 2 + families) + Double(p + m) * families + Double(n) + bandColumns
            + (banded ? 3 * Double(m) * chains : 0)
        let doublePass =
            scalarBytes < 8
            ? doubleCopyBytes(points: points, outputs: m, inputs: n)
                + 8 * (families * Double(p) + bandColumns) * (2 * Double(points) + Double(m + n)) : 0
        let pointCopy = scaledPoints ? Double(points) * Double(n) : 0
        return scalar * (Double(points) * perPoint + 4 * Double(m) * Double(n) + bandFactors + pointCopy) + factors
            + doublePass
    }

    /// Bytes of the `Double` copy of a problem of `points` rows (`ReluBoundProblem.doubleCopy`):
    /// `X`, the targets and the row norms, `N (n + m + 1)`, and `W`, `m n`.
    static func doubleCopyBytes(points: Int, outputs m: Int, inputs n: Int) -> Double {
        8 * (Double(points) * Double(n + m + 1) + Double(m) * Double(n))
    }
}

extension ReluBoundRequest {
    /// Bytes `ReluBoundProblem.lossAndGradient` holds for `points` rows of a
    /// layer `m x n` at rank `k`: the targets, pre-activations and gradient
    /// scratch `N (2k + 2m)`, the row norms, the factors and their gradients.
    public static func gradientMemoryBytes(
        points: Int, outputs m: Int, inputs n: Int, rank k: Int,
        scalarBytes: Int
    ) -> Double {
        Double(scalarBytes) * (Double(points) * Double(2 * k + 2 * m + 2) + 2 * Double(k) * Double(m + n))
    }
}

extension ReluBoundProblem {
    /// `lossAndGradient(factors:)` for a caller's factors `U` (`m x k`) and `V`
    /// (`k x n`), checked: their shapes and finite entries (named by position).
    public func lossAndGradient(u: MatrixView<Scalar>, v: MatrixView<Scalar>) throws
        -> (loss: Double, gradU: [Scalar], gradV: [Scalar])
    {
        try ReluBoundRequest.checkFactors(
            u: (u.rows, u.columns), v: (v.rows, v.columns), outputs: layer.outputs,
            inputs: layer.inputs)
        func entries(_ a: MatrixView<Scalar>, _ name: String) throws -> [Scalar] {
            var out: [Scalar] = []
            out.reserveCapacity(a.rows * a.columns)
            for i in 0..<a.rows {
                let r = a.row(i)
                for j in 0..<a.columns {
                    guard r[j].isFinite else {
                        throw EngineError.nonFinite("\(name) contains NaN or infinity at row \(i), column \(j)")
                    }
                    out.append(r[j])
                }
            }
            return out
        }
        let factors = RankFactors(
            k: u.columns, m: layer.outputs, n: layer.inputs, u: try entries(u, "U"),
            v: try entries(v, "V"))
        let result = lossAndGradient(factors: factors)
        // Finite inputs whose products exceed the range of `Scalar` give inf - inf = NaN or an
        // infinite loss or gradient entry: an overflow, never a value.
        guard result.loss.isFinite, result.gradU.allSatisfy(\.isFinite), result.gradV.allSatisfy(\.isFinite) else {
            throw EngineError.overflow(
                "the loss or its gradient exceeds the range of \(Scalar.self); rescale W, b, X, U or V")
        }
        return result
    }
}
