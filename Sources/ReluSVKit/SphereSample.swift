/// `points > 0` for a sphere sample standing for data that were not given: the
/// one owner of this rule (`sphereSample`, `ReluBoundRequest` and the C surface
/// before it sizes memory).
public func checkSpherePoints(_ points: Int) throws {
    guard points > 0 else {
        throw EngineError.invalidArgument("sphere_points must be positive when X is not given, got \(points)")
    }
}

/// A seeded sample of the unit sphere `S^{n-1}` (MATH.md §2): row `i` is
/// `g_i / ||g_i||` with `g_i ~ N(0, I_n)` from `CounterRandom(seed, .sphereSample)`,
/// normalised in `Double`. Equal seeds give equal samples in every process.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func sphereSample<Scalar: BLASScalar>(points: Int, dimension: Int, seed: UInt64) throws -> Matrix<Scalar> {
    try checkSpherePoints(points)
    guard dimension > 0 else { throw EngineError.invalidArgument("the sphere dimension must be positive") }
    let (elements, overflow) = points.multipliedReportingOverflow(by: dimension)
    guard !overflow, elements <= 1 << 32 else {
        throw EngineError.invalidArgument("a sphere sample of \(points) x \(dimension) is too large")
    }
    let random = CounterRandom(seed: seed, stream: .sphereSample)
    var out = Matrix<Scalar>(rows: points, columns: dimension)
    var row = [Double](repeating: 0, count: dimension)
    for i in 0..<points {
        var norm = 0.0
        for j in 0..<dimension {
            row[j] = random.normal(row: i, column: j)
            norm += row[j] * row[j]
        }
        let scale = 1 / norm.squareRoot()
        for j in 0..<dimension { out[i, j] = Scalar(row[j] * scale) }
    }
    return out
}

/// The sphere sample of `sphereSample(points:dimension:seed:)` followed by the
/// `2 r` unit vectors `±v_j`, the right singular vectors of `w` with non-zero
/// singular values.
///
/// A finite sample covers a high-dimensional sphere poorly and misses the
/// directions where `x -> act(W x)` is largest; adding `±v_j` puts those
/// directions in, so values over the sample (e.g. `s_0`, a maximum over it)
/// come much closer to their suprema over the unit ball.
public func sphereSample<Scalar: BLASScalar>(
    points: Int, seed: UInt64, withSingularDirectionsOf w: MatrixView<Scalar>
) throws -> Matrix<Scalar> {
    let sample: Matrix<Scalar> = try sphereSample(points: points, dimension: w.columns, seed: seed)
    let svd = try thinSVD(of: w)
    let r = svd.numericalRank
    let n = w.columns
    var storage = sample.storage
    storage.reserveCapacity((points + 2 * r) * n)
    for sign in [Scalar(1), Scalar(-1)] {
        for j in 0..<r {
            for c in 0..<n { storage.append(sign * svd.vt[j, c]) }
        }
    }
    return Matrix(rows: points + 2 * r, columns: n, storage: storage)
}
