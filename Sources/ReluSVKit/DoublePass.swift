/// How a `Float` problem is certified: the one owner of the rule. (MATH.md
/// §2–3 define the bound as the maximum error of a returned matrix; the
/// float32 argument is stated here.)
///
/// Every bound reported for a `Float` problem is `max_g e_g` with `e_g` the
/// error of the returned `Float` factors computed in `Double` from the
/// caller's `W`, `b` and `X` (every `Float` is a `Double`: the conversions
/// are exact). Two routes lead there:
///
/// - **Blocked passes** (`NestedCurve`: the families of `familyCurves`, the
///   fits' extensions in `SpectrumChain.extensionBounds`) run in `Double` on
///   the copy of the problem (`doubleCopy()`: `W`, `b`, `X` converted, the
///   targets `act(X W^T + b)` recomputed in `Double`) and of the basis
///   (`CandidateBasis.doubleCopy(on:)`: `B`, `C` holding exactly the `Float`
///   entries of the returned factors, `a = X C^T` recomputed in `Double`).
///   Each error is then the `Double` error of exactly the returned factors,
///   and the bound is the maximum as computed, as for `Double` problems: no
///   rounding slack, no point recomputed.
/// - **Single candidates** (fits' results, weighted candidates) are evaluated
///   in `Float` and certified by `ReluBoundProblem.certify`. With
///   `|e_g^Float - e_g| <= slack_g` (`roundingSlack`) and `M` the `Double`
///   maximum of the groups recomputed so far, a group with
///   `e_g^Float + slack_g < M` has `e_g < M`; the others are recomputed in
///   `Double` on the copy (`groupErrorsInDouble`, `k (m + n)` per row), so
///   the result is `max_g e_g`.
///
/// Memory: the copy holds `N (n + m + 1) + m n` doubles, a basis copy
/// `N p + p (m + n)`; each is checked before it is allocated (`MemoryBudget`)
/// and counted in `ReluBoundRequest.memoryBytes`.
extension ReluBoundProblem {
    /// The problem and bases a blocked pass over `bases` runs on: their
    /// `Double` copies for a `Float` problem, nil for `Double` (as given).
    func passInDouble(_ bases: [CandidateBasis<Scalar>]) throws
        -> (problem: ReluBoundProblem<Double>, bases: [CandidateBasis<Double>])?
    {
        guard let copy = try doubleCopy() else { return nil }
        return (copy, try bases.map { try $0.doubleCopy(on: copy) })
    }

    /// `Float` only: the problem in `Double` (made once, on first use); nil for `Double`.
    func doubleCopy() throws -> ReluBoundProblem<Double>? {
        guard Scalar.self != Double.self else { return nil }
        return try exactCopy.value { try makeDoubleCopy() }
    }

    private func makeDoubleCopy() throws -> ReluBoundProblem<Double> {
        let N = count
        let n = layer.inputs
        let m = layer.outputs
        try MemoryBudget.require(
            bytes: ReluBoundRequest.doubleCopyBytes(points: N, outputs: m, inputs: n),
            for: "the float64 copy of a float32 problem")
        let points = try ScratchBuffer<Double>(count: N * n, purpose: "the float64 copy of X")
        for i in 0..<N {
            let r = x.row(i)
            for j in 0..<n { points.pointer[i * n + j] = Double(r[j]) }
        }
        let weight = Matrix<Double>(rows: m, columns: n, storage: layer.weight.storage.map(Double.init))
        let exactLayer = try weight.withView {
            try ReluLayer<Double>(weight: $0, bias: layer.bias.map(Double.init), slope: Double(layer.slope))
        }
        let copy = try ReluBoundProblem<Double>(
            layer: exactLayer, points: MatrixView(base: UnsafePointer(points.pointer), rows: N, columns: n),
            groupSize: groupSize)
        copy.ownedPoints = points
        return copy
    }
}

extension CandidateBasis {
    /// The basis in `Double` over the points of `problem` (the `Double` copy
    /// of this basis's problem): `B`, `C` converted, `a = X C^T` recomputed.
    /// Made once, on first use.
    func doubleCopy(on problem: ReluBoundProblem<Double>) throws -> CandidateBasis<Double> {
        try exactCopy.value {
            let m = b.rows
            let n = c.columns
            try MemoryBudget.require(
                elements: Double(problem.count) * Double(size) + Double(size) * Double(m + n), scalarBytes: 8,
                for: "the float64 copy of a candidate family")
            return CandidateBasis<Double>(
                source: source, b: Matrix(rows: m, columns: size, storage: b.storage.map(Double.init)),
                c: Matrix(rows: size, columns: n, storage: c.storage.map(Double.init)), points: problem.x)
        }
    }
}

extension RankFactors {
    /// The same factors in `Double` (exact).
    var inDouble: RankFactors<Double> {
        RankFactors<Double>(k: k, m: m, n: n, u: u.map(Double.init), v: v.map(Double.init))
    }
}

/// A value made at most once, on first use, by whichever thread asks first
/// (the others wait for it).
final class MadeOnce<Value> {
    private let lock = Lock()
    private var made: Value?

    func value(_ make: () throws -> Value) rethrows -> Value {
        try lock.withLock {
            if let made { return made }
            let value = try make()
            made = value
            return value
        }
    }
}
