/// The data of one bound computation, shared read-only by every fit and every
/// thread: the layer, the points `X` (rows), the targets `Y = phi(X)`, the
/// grouping of rows into points, and the exact evaluation of MATH.md §3 step 2.
///
/// **Groups** (MATH.md §9). Every `groupSize = P` consecutive rows of `X`
/// form one point (the patches of one image for a convolution): the error of
/// a point is the root-sum-square of its rows' errors,
/// `e_g = (sum_{i in g} ||act(W x_i + b) - act(L x_i + b)||^2)^(1/2)`, and the
/// bound is `max_g e_g`. `P = 1` is the fully connected layer (`e_g` = the
/// row's error). Per-point quantities below are per group.
///
/// **Precision.** Products are formed in `Scalar`, the precision of the
/// caller's data. For `Double` the reported bound is the maximum of the
/// computed errors. For `Float` every reported bound is the `Double` maximum
/// error of the `Float` factors as given; how, is decided in one place
/// (`DoublePass.swift`): blocked passes run on the exact `Double` copy
/// (`doubleCopy()`), single candidates are certified by `certify`.
public final class ReluBoundProblem<Scalar: BLASScalar> {
    public let layer: ReluLayer<Scalar>
    public let x: MatrixView<Scalar>
    public let y: Matrix<Scalar>
    /// Rows per point (MATH.md §9); `count` is a multiple of it.
    public let groupSize: Int
    /// `||x_i||` in `Double`, per row.
    public let pointNorms: [Double]
    /// `s_0 = max_g ||phi(x_g) - act(b)||`, the scale of the errors.
    public let outputScale: Double
    /// `Float` only: `|| |W| |x_i| + |b| ||` per row, the magnitude the rounding
    /// of the targets is bounded by (empty for `Double`).
    let targetMagnitudes: [Double]
    /// Rows per block of the exact evaluation.
    let blockRows: Int
    /// `Float` only: the `Double` copy (`doubleCopy()`), made once when first needed.
    let exactCopy = MadeOnce<ReluBoundProblem<Double>>()
    /// Memory the points `x` live in when the problem owns them (the `Double` copy's).
    var ownedPoints: AnyObject?

    /// Rows of `X`.
    public var count: Int { x.rows }
    /// Points (groups of `groupSize` rows).
    public var groups: Int { x.rows / groupSize }

    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public init(layer: ReluLayer<Scalar>, points x: MatrixView<Scalar>, groupSize: Int = 1) throws {
        try ReluBoundRequest.checkData(rows: x.rows, columns: x.columns, inputs: layer.inputs, groupSize: groupSize)
        var norms = [Double](repeating: 0, count: x.rows)
        for i in 0..<x.rows {
            let r = x.row(i)
            for j in 0..<x.columns where !r[j].isFinite { throw EngineError.nonFiniteData(row: i, column: j) }
            norms[i] = RowExtremes.norm(r, count: x.columns)  // scaled where squares would underflow
        }
        self.layer = layer
        self.x = x
        self.groupSize = groupSize
        self.pointNorms = norms
        y = layer.apply(x)
        let rest = layer.bias.map { layer.activate($0) }
        var rowSquares = [Double](repeating: 0, count: x.rows)
        for i in 0..<x.rows {
            var s = 0.0
            for j in 0..<layer.outputs {
                let d = Double(y[i, j] - rest[j])
                s += d * d
            }
            rowSquares[i] = s
        }
        outputScale = ReluBoundProblem.groupRoots(rowSquares, groupSize: groupSize).reduce(0, max)
        targetMagnitudes = Scalar.self == Double.self ? [] : layer.absoluteMagnitudes(x)
        blockRows = max(16, min(x.rows, 1 << 20 / max(1, layer.outputs + layer.inputs)))
    }

    /// Largest `||x_i||` over the rows.
    public var maxPointNorm: Double { pointNorms.max() ?? 0 }

    /// `e_g = (sum_{i in g} s_i)^(1/2)` for consecutive groups of `groupSize`
    /// row values `s_i` (squared row errors); NaN counts as `+infinity`.
    /// The one place rows become points (MATH.md §9).
    static func groupRoots(_ rowSquares: [Double], groupSize: Int) -> [Double] {
        let groups = rowSquares.count / groupSize
        var out = [Double](repeating: 0, count: groups)
        for g in 0..<groups {
            var s = 0.0
            for i in (g * groupSize)..<((g + 1) * groupSize) { s += rowSquares[i] }
            out[g] = certifiable(s.squareRoot())
        }
        return out
    }

    /// Per-point errors `e_g` of the approximant with factors `u` (`m x k`)
    /// and `v` (`k x n`), and their maximum.
    ///
    /// `certified = false` (inside fits, to rank iterates): for `Float`, the
    /// points within 0.1 % of the largest error are recomputed in `Double`.
    /// `certified = true`: the bound is certified (see `certify`).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func evaluate(u: UnsafePointer<Scalar>, v: UnsafePointer<Scalar>, k: Int, certified: Bool = true)
        -> (bound: Double, errors: [Double])
    {
        var rows = [Double](repeating: 0, count: count)
        let scratch = Workspace<Scalar>(count: blockRows * (k + layer.outputs))
        y.storage.withUnsafeBufferPointer { yp in
            rows.withUnsafeMutableBufferPointer { ep in
                layer.squaredErrors(
                    x: x.base, ldx: x.rowStride, y: yp.baseAddress!, rows: count, u: u, v: v, k: k,
                    out: ep.baseAddress!, scratch: scratch.base, blockRows: blockRows)
            }
        }
        var errors = ReluBoundProblem.groupRoots(rows, groupSize: groupSize)
        let factors = FactorPointers(u: u, v: v, k: k, ldu: k)
        let bound =
            certified ? certify(errors: &errors, factors: factors) : refineTop(errors: &errors, factors: factors)
        return (bound, errors)
    }

    /// The group errors of `L = Q Q^T W` (`q`: `Q`, `m x k`; `qt`: the `k x m`
    /// rows of `Q^T`) from the layer's pre-activations `zt = X W^T` (`N x m`):
    /// `X L^T = (zt Q) Q^T`, `2 N m k` multiply-adds instead of `N k (m + n)`
    /// from `X`. Equal to the errors of `evaluate(certified: false)` of the
    /// factors `U = Q`, `V = Q^T W` in exact arithmetic, not in its rounding (and
    /// in `Float` without `refineTop`): a ranking of candidates; a bound is
    /// reported only from `evaluate` and `certify` of the factors.
    func rankingErrors(
        preactivations zt: UnsafePointer<Scalar>, q u: UnsafePointer<Scalar>, qt: UnsafePointer<Scalar>, k: Int
    ) -> [Double] {
        let m = layer.outputs
        var rows = [Double](repeating: 0, count: count)
        let scratch = Workspace<Scalar>(count: blockRows * (k + m))
        y.storage.withUnsafeBufferPointer { yp in
            rows.withUnsafeMutableBufferPointer { ep in
                layer.squaredErrors(
                    x: zt, ldx: m, y: yp.baseAddress!, rows: count, u: u, v: qt, k: k,
                    out: ep.baseAddress!, scratch: scratch.base, blockRows: blockRows, columns: m)
            }
        }
        return ReluBoundProblem.groupRoots(rows, groupSize: groupSize)
    }

    /// The group errors of `L = Q Q^T W` from the projections `P = X W^T Q`
    /// (`N x k`) of the points on `Q` (`q`, `m x k`): `X L^T = P Q^T`, `N m k`
    /// multiply-adds. A ranking like `rankingErrors(preactivations:)`, for a
    /// caller that holds `P` (Lawson's power steps, which read it again).
    func rankingErrors(projection p: UnsafePointer<Scalar>, q u: UnsafePointer<Scalar>, k: Int) -> [Double] {
        let m = layer.outputs
        var rows = [Double](repeating: 0, count: count)
        let scratch = Workspace<Scalar>(count: blockRows * m)
        y.storage.withUnsafeBufferPointer { yp in
            rows.withUnsafeMutableBufferPointer { ep in
                var start = 0
                while start < count {
                    let b = min(blockRows, count - start)
                    layer.squaredErrors(
                        projection: p + start * k, y: yp.baseAddress! + start * m, rows: b, u: u, k: k,
                        out: ep.baseAddress! + start, scratch: scratch.base)
                    start += b
                }
            }
        }
        return ReluBoundProblem.groupRoots(rows, groupSize: groupSize)
    }

    /// `||act(z_i + b) - y_i||^2` for every row, from the pre-activations
    /// `z` (`N x m`, without the bias) of an approximant.
    func squaredRowErrors(preactivation z: UnsafePointer<Scalar>, into out: UnsafeMutablePointer<Double>) {
        let m = layer.outputs
        y.storage.withUnsafeBufferPointer { yp in
            layer.bias.withUnsafeBufferPointer { b in
                for i in 0..<count {
                    let zr = z + i * m
                    let yr = yp.baseAddress! + i * m
                    var s: Scalar = 0
                    for j in 0..<m {
                        let d = layer.activate(zr[j] + b[j]) - yr[j]
                        s += d * d
                    }
                    out[i] = Double(s)
                }
            }
        }
    }

    /// The error of group `g` recomputed in `Double` from the caller's values.
    func groupErrorInDouble(_ g: Int, factors f: FactorPointers<Scalar>) -> Double {
        var s = 0.0
        for i in (g * groupSize)..<((g + 1) * groupSize) {
            let e = layer.errorInDouble(x: x.row(i), factors: f)
            s += e * e
        }
        return certifiable(s.squareRoot())
    }

    /// The maximum after recomputing in `Double` the groups within 0.1 % of
    /// the largest `Float` error (`Float` only; a ranking, not a certificate).
    func refineTop(errors: inout [Double], factors: FactorPointers<Scalar>) -> Double {
        let largest = errors.reduce(0, max)
        guard Scalar.self != Double.self, largest > 0, largest.isFinite else { return largest }
        for g in errors.indices where errors[g] >= largest * 0.999 {
            errors[g] = groupErrorInDouble(g, factors: factors)
        }
        return errors.reduce(0, max)
    }

    /// The certified bound: for `Double`, `max_g e_g`; for `Float`, the
    /// `Double` maximum error of the factors over all points.
    ///
    /// With `M` the `Double` maximum over the groups recomputed so far, a group
    /// not recomputed can exceed `M` only if `e_g^Float + slack_g >= M`
    /// (`roundingSlack`); those are recomputed until none is left, so `M` is
    /// the `Double` maximum over every group (MATH.md §2, chain in float32).
    /// After the first few, groups are recomputed in blocks of `Double` GEMMs
    /// on the problem's `Double` copy (`groupErrorsInDouble`, `k (m + n)` per
    /// row): where the errors are concentrated the slack exceeds their spread
    /// and nearly every group is recomputed. `errors` are updated to the
    /// recomputed values.
    func certify(errors: inout [Double], factors f: FactorPointers<Scalar>) -> Double {
        guard Scalar.self != Double.self else { return errors.reduce(0, max) }
        let slack = roundingSlack(errors: errors, factors: f)
        // Groups in decreasing order of what they could reach; stop below M.
        let order = errors.indices.sorted { errors[$0] + slack[$0] > errors[$1] + slack[$1] }
        var largest = 0.0
        // The first few one at a time; then blocks of doubling size.
        var position = 0
        var copy: ReluBoundProblem<Double>??
        while position < order.count {
            let g = order[position]
            if errors[g] + slack[g] < largest { break }
            if position < 4 {
                errors[g] = groupErrorInDouble(g, factors: f)
                largest = max(largest, errors[g])
                position += 1
                continue
            }
            let size = min(ReluBoundProblem.recomputeBlock, position, order.count - position)
            let block = order[position..<(position + size)].filter { errors[$0] + slack[$0] >= largest }
            // The copy once blocks are needed; nil when its memory is refused.
            if copy == nil { copy = .some(try? doubleCopy()) }
            for (g, e) in zip(block, groupErrorsInDouble(block, factors: f, copy: copy!)) {
                errors[g] = e
                largest = max(largest, e)
            }
            position += size
        }
        return largest
    }

    /// `Float` only: a bound of `|e_g^Float - e_g|` for every group, from the
    /// standard rounding bound of dot products in any order (with or without
    /// FMA; Higham, *Accuracy and Stability*, §3.1), `gamma_j = j u / (1 - j u)`:
    ///
    ///     |fl(W x + b) - (W x + b)|       <= gamma_{n+1} (|W| |x| + |b|)
    ///     |fl(U (V x) + b) - (U V x + b)| <= gamma_{n+k+1} (|U| |V| |x| + |b|)
    ///
    /// and `|| |U| |V| |x| || <= ||U||_F ||V||_F ||x||`; the activation is
    /// 1-Lipschitz; the difference, squares, sums and square root add
    /// `gamma_{m+3}` relative to the result. Per row:
    /// `slack_i = gamma_{n+k+m+8} (a_i + ||U||_F ||V||_F ||x_i|| + ||b|| + e_i)`,
    /// per group the root-sum-square of its rows' (the triangle inequality on
    /// the group's vector of row errors).
    ///
    /// Underflow (gradual) adds an absolute error of at most `eta`, half the
    /// smallest subnormal, to every product and square and none to sums:
    /// `(n + k + 2) eta` to each entry of the difference, `m eta` to the
    /// row's sum of squares, so `slack_i` also has
    /// `sqrt(m) 2 (n + k + 2) eta + sqrt(1.01 m eta)` (a few `1e-23` in
    /// `Float`: what lets errors of layers at the smallest scales be
    /// recomputed rather than trusted; `CertificationScale` keeps ordinary
    /// errors far above it).
    func roundingSlack(errors: [Double], factors f: FactorPointers<Scalar>) -> [Double] {
        let u = Double(Scalar.ulpOfOne) / 2
        let j = Double(layer.inputs + f.k + layer.outputs + 8)
        let gamma = j * u / (1 - j * u) * 1.01  // 1 %: the magnitudes themselves were rounded
        let eta = Double(Scalar.leastNonzeroMagnitude) / 2
        let m = Double(layer.outputs)
        let underflow =
            m.squareRoot() * 2 * Double(layer.inputs + f.k + 2) * eta + (1.01 * m * eta).squareRoot()
        let frobenius = f.frobeniusProduct(m: layer.outputs, n: layer.inputs)
        var biasNorm = 0.0
        for b in layer.bias { biasNorm += Double(b) * Double(b) }
        biasNorm = biasNorm.squareRoot()
        var out = [Double](repeating: 0, count: errors.count)
        for g in errors.indices {
            var s = 0.0
            for i in (g * groupSize)..<((g + 1) * groupSize) {
                let r = gamma * (targetMagnitudes[i] + frobenius * pointNorms[i] + biasNorm) + underflow
                s += r * r
            }
            out[g] = s.squareRoot() + gamma * errors[g]
        }
        return out
    }
}

/// Pointers to the factors `U` (`m x k`, rows `ldu` apart) and `V` (`k x n`,
/// contiguous) of an approximant.
struct FactorPointers<Scalar: BLASScalar> {
    let u: UnsafePointer<Scalar>
    let v: UnsafePointer<Scalar>
    let k: Int
    let ldu: Int

    /// `||U||_F ||V||_F` in `Double`.
    func frobeniusProduct(m: Int, n: Int) -> Double {
        var su = 0.0
        var sv = 0.0
        for i in 0..<m {
            for r in 0..<k {
                let a = Double(u[i * ldu + r])
                su += a * a
            }
        }
        for i in 0..<(k * n) { sv += Double(v[i]) * Double(v[i]) }
        return (su * sv).squareRoot()
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
    /// `F(U, V) = sum_i ||act(U V x_i + b) - phi(x_i)||^2` over all rows and
    /// its analytic gradient (MATH.md §3), in `Scalar`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public func lossAndGradient(factors f: RankFactors<Scalar>) -> (loss: Double, gradU: [Scalar], gradV: [Scalar]) {
        var gu = [Scalar](repeating: 0, count: f.m * f.k)
        var gv = [Scalar](repeating: 0, count: f.k * f.n)
        guard f.k > 0 else {
            let (_, errors) = f.withPointers { evaluate(u: $0, v: $1, k: 0, certified: false) }
            return (errors.reduce(0) { $0 + $1 * $1 }, gu, gv)
        }
        let scratch = Workspace<Scalar>(count: count * (2 * f.k + layer.outputs))
        let loss = f.withPointers { u, v in
            y.storage.withUnsafeBufferPointer { yp in
                gu.withUnsafeMutableBufferPointer { gup in
                    gv.withUnsafeMutableBufferPointer { gvp in
                        layer.gradient(
                            x: x.base, ldx: x.rowStride, y: yp.baseAddress!, rows: count, u: u, v: v, k: f.k,
                            power: 1, gradU: gup.baseAddress!, gradV: gvp.baseAddress!, scratch: scratch.base
                        ).loss
                    }
                }
            }
        }
        return (loss, gu, gv)
    }
}
