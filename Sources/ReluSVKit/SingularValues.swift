/// Singular values and truncated SVD factors by LAPACK's divide-and-conquer
/// `?gesdd` (MATH.md §1: `sigma_0 >= sigma_1 >= ...`, Eckart–Young).
///
/// The input is copied (gesdd overwrites its argument); the caller's matrix
/// is never modified. Non-finite entries are reported by position before
/// LAPACK sees them.

/// The thin SVD `W = U diag(s) Vt` of an `m x n` matrix, `p = min(m, n)`:
/// `u` is `m x p`, `s` has `p` descending values, `vt` is `p x n`.
public struct ThinSVD<Scalar: BLASScalar> {
    public let u: Matrix<Scalar>
    public let s: [Scalar]
    public let vt: Matrix<Scalar>

    /// Factors of the rank-`r` truncation `W_r = U[:, :r] diag(s[:r]) Vt[:r, :]`.
    public func truncated(rank r: Int) -> (u: Matrix<Scalar>, s: [Scalar], vt: Matrix<Scalar>) {
        precondition(r >= 0 && r <= u.columns, "rank out of range")
        var ur = Matrix<Scalar>(rows: u.rows, columns: r)
        for i in 0..<u.rows { for j in 0..<r { ur[i, j] = u[i, j] } }
        var vr = Matrix<Scalar>(rows: r, columns: vt.columns)
        for i in 0..<r { for j in 0..<vt.columns { vr[i, j] = vt[i, j] } }
        return (ur, Array(s[0..<r]), vr)
    }

    /// Numerical rank (`numericalRank(singularValues:rows:columns:epsilon:)`
    /// with `eps` of `Scalar`).
    public var numericalRank: Int {
        ReluSVKit.numericalRank(
            singularValues: s.map(Double.init), rows: u.rows, columns: vt.columns,
            epsilon: Double(Scalar.ulpOfOne))
    }
}

/// The numerical rank of an `m x n` matrix from its singular values
/// `sigma_0 >= sigma_1 >= ...`: the number of values above
/// `max(m, n) * eps * sigma_0`, `eps` the unit roundoff of the matrix's
/// precision (the NumPy `matrix_rank` convention). The one owner of this
/// rule: the bound curve's rank, `rank(W)` and `rank(X W^T)` of the layer
/// table (MATH.md §2: `s_k = 0` exactly from `rank(X W^T)` on) and pruning
/// all call it, through `relusv_numerical_rank` from C and Python.
public func numericalRank(singularValues s: [Double], rows: Int, columns: Int, epsilon: Double) -> Int {
    guard let top = s.first, top > 0 else { return 0 }
    let tolerance = Double(max(rows, columns)) * epsilon * top
    return s.filter { $0 > tolerance }.count
}

/// The numerical rank of `W` (its singular values by `singularValues(of:)`).
public func numericalRank<Scalar: BLASScalar>(of w: MatrixView<Scalar>) throws -> Int {
    let s = try singularValues(of: w)
    return numericalRank(
        singularValues: s.map(Double.init), rows: w.rows, columns: w.columns, epsilon: Double(Scalar.ulpOfOne))
}

/// A weight `W` (`rows x columns`) has at least one entry: the one owner of
/// this rule (the SVD, `ReluLayer`, and the C surface before it sizes anything).
public func checkWeight(rows: Int, columns: Int) throws {
    guard rows > 0, columns > 0 else {
        throw EngineError.empty("W has no \(rows == 0 ? "rows" : "columns") (it is \(rows) x \(columns))")
    }
}

/// The rank `r` of a truncation `W_r` of an `m x n` matrix: in `[0, min(m, n)]`.
public func checkTruncationRank(_ r: Int, rows m: Int, columns n: Int) throws {
    let p = min(m, n)
    guard r >= 0, r <= p else {
        throw EngineError.invalidArgument("rank = \(r) is out of range [0, min(m, n)] = [0, \(p)]")
    }
}

func copyChecked<Scalar: BLASScalar>(_ w: MatrixView<Scalar>) throws -> [Scalar] {
    try checkWeight(rows: w.rows, columns: w.columns)
    var a = [Scalar](repeating: 0, count: w.rows * w.columns)
    for i in 0..<w.rows {
        let r = w.row(i)
        for j in 0..<w.columns {
            guard r[j].isFinite else {
                throw EngineError.nonFinite("W contains NaN or infinity at row \(i), column \(j)")
            }
            a[i * w.columns + j] = r[j]
        }
    }
    return a
}

/// The singular values of `w`, descending (`?gesdd`, values only); a matrix
/// of several independent blocks as the union of the blocks' values
/// (`IndependentBlocks`), zeros completing it to `min(m, n)` values.
///
/// A `tolerance` (an absolute accuracy relative to `sigma_0`; default 0, LAPACK's
/// SVD) that `GramSpectrum` serves lets it give the values from the Gram matrix
/// where that resolves them (each within about `eps^(3/4) sigma_0`), in about
/// a third of the time; a matrix of independent blocks by this rule block by
/// block (each block's values within `eps^(3/4)` of its own largest).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func singularValues<Scalar: BLASScalar>(of w: MatrixView<Scalar>, tolerance: Double = 0) throws -> [Scalar] {
    try MemoryBudget.require(
        bytes: valuesMemoryBytes(rows: w.rows, columns: w.columns, scalarBytes: MemoryLayout<Scalar>.stride),
        for: "the singular values of W")
    var a = try copyChecked(w)
    let p = min(w.rows, w.columns)
    guard let split = IndependentBlocks.of(w) else {
        return try denseValues(&a, rows: w.rows, columns: w.columns, tolerance: tolerance)
    }
    var s: [Scalar] = []
    for b in split.blocks.indices where !split.blocks[b].rows.isEmpty && !split.blocks[b].columns.isEmpty {
        var block = split.gather(b, from: a, columns: w.columns)
        s += try denseValues(
            &block, rows: split.blocks[b].rows.count, columns: split.blocks[b].columns.count, tolerance: tolerance)
    }
    s += [Scalar](repeating: 0, count: p - s.count)
    return s.sorted(by: >)
}

/// Bytes `singularValues(of:tolerance:)` needs for an `m x n` matrix,
/// `p = min(m, n)`: the copy `?gesdd` overwrites (or a block's gathered
/// copy), a `p x p` square (the Gram matrix, or the QR's `R`) with its
/// Cholesky copy, and `?gesdd`'s values-only workspace (`max(m, n) + 8 p`).
func valuesMemoryBytes(rows m: Int, columns n: Int, scalarBytes: Int) -> Double {
    let (rows, columns) = (Double(m), Double(n))
    let p = min(rows, columns)
    return (2 * rows * columns + 2 * p * p + max(rows, columns) + 8 * p) * Double(scalarBytes)
}

/// `?gesdd`, values only, of the row-major `m x n` buffer `a` (overwritten).
/// A wide matrix that `?gesdd` would first reduce by an LQ (`n >= 11 m / 6`)
/// is, as stored, the column-major tall `W^T`: its Householder QR
/// (`householderR`) gives the `m x m` `R` with `W`'s values without the
/// transposed copy LAPACKE makes of a row-major matrix nor the LQ (about a
/// quarter less time on a `2048 x 12544` matrix); entries `?gesdd` would
/// rescale first keep `?gesdd`'s own path. With a `tolerance` it serves,
/// `GramSpectrum` first (the row-major buffer read as the column-major
/// `n x m` matrix `W^T`, whose values are `W`'s).
private func denseValues<Scalar: BLASScalar>(_ a: inout [Scalar], rows m: Int, columns n: Int, tolerance: Double = 0)
    throws -> [Scalar]
{
    if let gram = try GramSpectrum(columnMajor: a, rows: n, columns: m, tolerance: tolerance) { return gram.values }
    if m > 0, n > m, n >= gesddQRThreshold(columns: m), withinUnscaledRange(a) {
        var (r, _) = try householderR(&a, rows: n, columns: m)
        return try denseValues(&r, rows: m, columns: m)
    }
    var s = [Scalar](repeating: 0, count: min(m, n))
    let info = a.withUnsafeMutableBufferPointer { ap in
        s.withUnsafeMutableBufferPointer { sp in
            Scalar.gesdd(
                jobz: UInt8(ascii: "N"), m: m, n: n, a: ap.baseAddress!, lda: n,
                s: sp.baseAddress!, u: nil, ldu: max(m, n), vt: nil, ldvt: max(m, n))
        }
    }
    guard info == 0 else { throw EngineError.lapackFailure(routine: "gesdd", info: info) }
    try checkRepresentable(s)
    return s
}

/// Singular values of finite entries that exceed the range of `Scalar` (a
/// float32 `W` of entries near 1e37, say) come back from LAPACK as infinity
/// or NaN: an overflow, reported as such (MATH.md §1 values are never
/// returned as infinite).
func checkRepresentable<Scalar: BLASScalar>(_ s: [Scalar]) throws {
    guard s.allSatisfy(\.isFinite) else {
        throw EngineError.overflow(
            "the singular values of W exceed the range of \(Scalar.self); rescale W (or pass it in float64)")
    }
}

/// The thin SVD of `w` (`?gesdd` with `jobz = "S"`); a matrix of several
/// independent blocks whose pairs fill `min(m, n)` (`IndependentBlocks`) from
/// the blocks' SVDs, each pair placed on its block's rows and columns.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func thinSVD<Scalar: BLASScalar>(of w: MatrixView<Scalar>) throws -> ThinSVD<Scalar> {
    var a = try copyChecked(w)
    let m = w.rows
    let n = w.columns
    guard let split = IndependentBlocks.of(w), split.pairs == min(m, n) else {
        return try denseThinSVD(&a, rows: m, columns: n)
    }
    var parts: [ThinSVD<Scalar>] = []
    for b in split.blocks.indices {
        var block = split.gather(b, from: a, columns: n)
        let (rows, columns) = split.blocks[b]
        parts.append(
            rows.isEmpty || columns.isEmpty
                ? ThinSVD(
                    u: Matrix(rows: rows.count, columns: 0), s: [],
                    vt: Matrix(rows: 0, columns: columns.count))
                : try denseThinSVD(&block, rows: rows.count, columns: columns.count))
    }
    let order = unionOrder(parts.map(\.s))
    var u = Matrix<Scalar>(rows: m, columns: order.count)
    var vt = Matrix<Scalar>(rows: order.count, columns: n)
    var s = [Scalar](repeating: 0, count: order.count)
    for (t, pair) in order.enumerated() {
        let part = parts[pair.block]
        let (rows, columns) = split.blocks[pair.block]
        s[t] = part.s[pair.index]
        for (r, i) in rows.enumerated() { u[i, t] = part.u[r, pair.index] }
        for (c, j) in columns.enumerated() { vt[t, j] = part.vt[pair.index, c] }
    }
    return ThinSVD(u: u, s: s, vt: vt)
}

/// `?gesdd` with `jobz = "S"` of the row-major `m x n` buffer `a` (overwritten).
func denseThinSVD<Scalar: BLASScalar>(_ a: inout [Scalar], rows m: Int, columns n: Int) throws -> ThinSVD<
    Scalar
> {
    let p = min(m, n)
    var s = [Scalar](repeating: 0, count: p)
    var u = [Scalar](repeating: 0, count: m * p)
    var vt = [Scalar](repeating: 0, count: p * n)
    let info = a.withUnsafeMutableBufferPointer { ap in
        s.withUnsafeMutableBufferPointer { sp in
            u.withUnsafeMutableBufferPointer { up in
                vt.withUnsafeMutableBufferPointer { vp in
                    Scalar.gesdd(
                        jobz: UInt8(ascii: "S"), m: m, n: n, a: ap.baseAddress!, lda: n,
                        s: sp.baseAddress!, u: up.baseAddress!, ldu: p, vt: vp.baseAddress!, ldvt: n)
                }
            }
        }
    }
    guard info == 0 else { throw EngineError.lapackFailure(routine: "gesdd", info: info) }
    try checkRepresentable(s)
    return ThinSVD(u: Matrix(rows: m, columns: p, storage: u), s: s, vt: Matrix(rows: p, columns: n, storage: vt))
}
