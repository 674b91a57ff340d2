/// Every singular value of a weight `W` and the singular vectors of only its
/// `count` largest (MATH.md §2: the truncation `W_k` reads the first `k`
/// pairs, so a bound curve whose `k` stay at or below `count` needs no more).
///
/// A bound curve over `N` points has `k < rank(X W^T) <= N`: a `4096 x 25088`
/// classifier bounded over a few hundred points reads a few hundred of its
/// 4,096 pairs, while `?gesdd` with `jobz = "S"` forms all of them (on one
/// core more than twice the time of the steps below). With `A` the tall one
/// of `W` and `W^T` (`M x p`, `p = min(m, n)`):
///
/// 1. for `M >= 11 p / 6` (`?gesdd`'s threshold) `A = Q_0 R`, a Householder
///    QR (`?geqrf`), and the steps below on `R`, which has `A`'s values and
///    right vectors;
/// 2. `A = Q B P^T`, the bidiagonalisation (`?gebrd`), done once;
/// 3. every value of `B` (`?bdsdc`, values only), as `?gesdd` computes them;
/// 4. the `count` largest pairs of `B` (`?bdsvdx`: bisection and inverse
///    iteration on its Golub-Kahan matrix for those pairs only);
/// 5. their vectors lifted by `Q`, `P` (`?ormbr`) and `Q_0` (`?ormqr`), on
///    `count` columns.
///
/// The values are LAPACK's, accurate to `O(eps sigma_0)` like `?gesdd`'s; the
/// pairs are those of the same matrix by another algorithm, so they agree
/// with `thinSVD(of:)`'s to rounding, not bit for bit. No bound depends on
/// that: every bound is the exact error of the factors it returns.
///
/// With a `tolerance` (relative to `sigma_0`) that `GramSpectrum` serves,
/// and where `A^T A` resolves every value, steps 1-5 are replaced by the
/// Gram route: the values `sqrt(lambda_i(A^T A))`, `A`'s right vectors from
/// `A^T A`'s top `count` eigenvectors (`?stemr`, `?ormtr`) and the left ones
/// `A v_i / sigma_i` (one GEMM): about a third of the time on a
/// `4096 x 25088` matrix, each value within about `eps^(3/4) sigma_0`.
///
/// Returns `u` (`m x count`), `s` (all `p` values), `vt` (`count x n`); for
/// `count >= p`, a matrix that `thinSVD(of:)` decomposes by its independent
/// blocks (cheap), or where `?bdsvdx` returns another count of pairs (it
/// widens the index range to an interval of values), `thinSVD(of:)`, all
/// pairs. Throws on non-finite entries.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func leadingSVD<Scalar: BLASScalar>(
    of w: MatrixView<Scalar>, vectors count: Int, tolerance: Double = 0
) throws -> ThinSVD<Scalar> {
    let m = w.rows
    let n = w.columns
    let p = min(m, n)
    precondition(count >= 0, "a negative count of singular vectors")
    guard count < p else { return try thinSVD(of: w) }
    if let split = IndependentBlocks.of(w), split.pairs == p { return try thinSVD(of: w) }  // by its blocks
    let tall = max(m, n)
    var a = try tallColumnMajor(w)
    if let gram = try GramSpectrum(columnMajor: a, rows: tall, columns: p, tolerance: tolerance),
        let right = try gram.largestVectors(count)
    {
        let left = leftVectors(of: a, rows: tall, columns: p, right: right, values: gram.values, count: count)
        return oriented(left: left, right: right, values: gram.values, rows: m, columns: n, count: count)
    }
    // The matrix ?gebrd reduces: R (A then keeps Q_0's reflectors, with tau), or A itself, handed over
    // rather than copied (not read again).
    var reduced: [Scalar]
    var tau: [Scalar]?
    if tall >= gesddQRThreshold(columns: p) {
        (reduced, tau) = try householderR(&a, rows: tall, columns: p)
    } else {
        (reduced, a) = (a, [])
    }
    let rows = tau == nil ? tall : p
    let b = try Bidiagonal(&reduced, rows: rows, columns: p)
    let values = try b.values()
    // rows x count, p x count (column-major); LAPACK's rare other count of pairs: all pairs instead
    guard let pairs = try b.largestPairs(count) else { return try thinSVD(of: w) }
    var (left, right) = pairs
    try b.lift(&left, count: count, reflectors: reduced, vect: "Q")
    try b.lift(&right, count: count, reflectors: reduced, vect: "P")
    if let tau { left = try lift(left, by: a, tau: tau, rows: tall, columns: p, count: count) }
    return oriented(left: left, right: right, values: values, rows: m, columns: n, count: count)
}

/// `W`'s factors from `A`'s (`A = U_A S V_A^T`, `A` the tall one of `W` and
/// `W^T`; `left` column-major `max(m, n) x count`, `right` `p x count`).
/// Wide `W = A^T`: `u = V_A`, `vt = U_A^T`; tall `W = A`: `u = U_A`,
/// `vt = V_A^T`.
private func oriented<Scalar: BLASScalar>(
    left: [Scalar], right: [Scalar], values: [Scalar], rows m: Int, columns n: Int, count: Int
) -> ThinSVD<Scalar> {
    let (p, tall, wide) = (min(m, n), max(m, n), m <= n)
    var u = Matrix<Scalar>(rows: m, columns: count)
    var vt = Matrix<Scalar>(rows: count, columns: n)
    for j in 0..<count {
        for i in 0..<m { u[i, j] = wide ? right[i + j * p] : left[i + j * tall] }
        for c in 0..<n { vt[j, c] = wide ? left[c + j * tall] : right[c + j * p] }
    }
    return ThinSVD(u: u, s: values, vt: vt)
}

/// `A`'s left vectors `u_j = A v_j / sigma_j` (column-major `rows x count`)
/// from its right ones (column-major `columns x count`) and values (all
/// positive where `GramSpectrum` serves): one GEMM, `A` column-major.
private func leftVectors<Scalar: BLASScalar>(
    of a: [Scalar], rows: Int, columns p: Int, right: [Scalar], values: [Scalar], count: Int
) -> [Scalar] {
    var left = [Scalar](repeating: 0, count: rows * count)
    guard count > 0 else { return left }
    // Row-major, the column-major buffers are transposed: left^T = right^T A^T.
    right.withUnsafeBufferPointer { rp in
        a.withUnsafeBufferPointer { ap in
            left.withUnsafeMutableBufferPointer {
                Scalar.gemm(
                    transA: false, transB: false, m: count, n: rows, k: p, alpha: 1, a: rp.baseAddress!, lda: p,
                    b: ap.baseAddress!, ldb: rows, beta: 0, c: $0.baseAddress!, ldc: rows)
            }
        }
    }
    for j in 0..<count {
        let scale = 1 / values[j]
        for i in 0..<rows { left[i + j * rows] *= scale }
    }
    return left
}

/// `A = Q B P^T` of a column-major `rows x p` matrix (`?gebrd`), `rows >= p`:
/// the upper bidiagonal `B` (`d`, `e`) and the reflectors' scalars.
private struct Bidiagonal<Scalar: BLASScalar> {
    let rows: Int
    let order: Int
    let d: [Scalar]
    let e: [Scalar]
    let tauq: [Scalar]
    let taup: [Scalar]

    /// Reduces `a` (overwritten by the reflectors).
    init(_ a: inout [Scalar], rows: Int, columns p: Int) throws {
        var d = [Scalar](repeating: 0, count: p)
        var e = [Scalar](repeating: 0, count: max(p - 1, 1))
        var tauq = [Scalar](repeating: 0, count: p)
        var taup = [Scalar](repeating: 0, count: p)
        let info = a.withUnsafeMutableBufferPointer { ap in
            d.withUnsafeMutableBufferPointer { dp in
                e.withUnsafeMutableBufferPointer { ep in
                    tauq.withUnsafeMutableBufferPointer { qp in
                        taup.withUnsafeMutableBufferPointer {
                            Scalar.gebrdColumnMajor(
                                m: rows, n: p, a: ap.baseAddress!, lda: rows, d: dp.baseAddress!,
                                e: ep.baseAddress!, tauq: qp.baseAddress!, taup: $0.baseAddress!)
                        }
                    }
                }
            }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "gebrd", info: info) }
        (self.rows, order, self.d, self.e, self.tauq, self.taup) = (rows, p, d, e, tauq, taup)
    }

    /// Every singular value, descending (`?bdsdc`, values only).
    func values() throws -> [Scalar] {
        var s = d
        var f = e
        let info = s.withUnsafeMutableBufferPointer { sp in
            f.withUnsafeMutableBufferPointer { Scalar.bdsdcValues(n: order, d: sp.baseAddress!, e: $0.baseAddress!) }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "bdsdc", info: info) }
        try checkRepresentable(s)
        return s
    }

    /// `B`'s left (padded to `rows x count`, zeros below row `p`, ready for
    /// `Q`) and right (`p x count`) vectors of its `count` largest values,
    /// column-major (`?bdsvdx`, on copies of `d` and `e`); nil when LAPACK
    /// returns another count of pairs or a non-finite entry.
    func largestPairs(_ count: Int) throws -> (left: [Scalar], right: [Scalar])? {
        let p = order
        guard count > 0 else { return ([], []) }
        var (diagonal, off) = (d, e)
        // Room for every eigenpair of the 2p x 2p Golub-Kahan matrix LAPACK may find in its interval.
        var s = [Scalar](repeating: 0, count: 2 * p + 1)
        var z = [Scalar](repeating: 0, count: 2 * p * (2 * p + 1))
        var found: Int32 = 0
        let info = diagonal.withUnsafeMutableBufferPointer { dp in
            off.withUnsafeMutableBufferPointer { ep in
                s.withUnsafeMutableBufferPointer { sp in
                    z.withUnsafeMutableBufferPointer {
                        Scalar.bdsvdxLargest(
                            n: p, count: count, d: dp.baseAddress!, e: ep.baseAddress!, s: sp.baseAddress!,
                            z: $0.baseAddress!, found: &found)
                    }
                }
            }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "bdsvdx", info: info) }
        guard Int(found) == count, z[0..<(2 * p * count)].allSatisfy(\.isFinite) else { return nil }
        let height = rows
        var left = [Scalar](repeating: 0, count: height * count)
        var right = [Scalar](repeating: 0, count: p * count)
        for j in 0..<count {
            for i in 0..<p {
                left[i + j * height] = z[i + j * 2 * p]
                right[i + j * p] = z[p + i + j * 2 * p]
            }
        }
        return (left, right)
    }

    /// `c <- Q c` (`vect = "Q"`, `c` of `rows` rows) or `c <- P c`
    /// (`vect = "P"`, `c` of `p` rows) for the column-major `c` of `count`
    /// columns (`?ormbr`), `reflectors` the matrix `?gebrd` overwrote.
    func lift(_ c: inout [Scalar], count: Int, reflectors a: [Scalar], vect: Unicode.Scalar) throws {
        guard count > 0 else { return }
        let height = vect == "Q" ? rows : order
        let info = a.withUnsafeBufferPointer { ap in
            (vect == "Q" ? tauq : taup).withUnsafeBufferPointer { tp in
                c.withUnsafeMutableBufferPointer {
                    Scalar.ormbrLeftColumnMajor(
                        vect: UInt8(ascii: vect), m: height, n: count, k: vect == "Q" ? order : rows,
                        a: ap.baseAddress!, lda: rows, tau: tp.baseAddress!, c: $0.baseAddress!, ldc: height)
                }
            }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "ormbr", info: info) }
    }
}

/// The tall one of `w` and `w^T` as a column-major buffer (`max(m, n) x
/// min(m, n)`): a wide row-major `w` is already `w^T` column-major (a copy);
/// a tall one is transposed as it is copied. Entries checked finite.
private func tallColumnMajor<Scalar: BLASScalar>(_ w: MatrixView<Scalar>) throws -> [Scalar] {
    let m = w.rows
    let n = w.columns
    guard m > n else { return try copyChecked(w) }
    try checkWeight(rows: m, columns: n)
    var t = [Scalar](repeating: 0, count: m * n)
    for i in 0..<m {
        let r = w.row(i)
        for j in 0..<n {
            guard r[j].isFinite else {
                throw EngineError.nonFinite("W contains NaN or infinity at row \(i), column \(j)")
            }
            t[i + j * m] = r[j]
        }
    }
    return t
}

/// The orthonormal `Q` (column-major `rows x p`, `rows >= p`) of `A = Q R`
/// for the column-major `rows x p` buffer `a`, which keeps the reflectors
/// (`householderR`, then `Q [I; 0]` by `lift`).
func orthonormalColumns<Scalar: BLASScalar>(_ a: inout [Scalar], rows: Int, columns p: Int) throws -> [Scalar] {
    let (_, tau) = try householderR(&a, rows: rows, columns: p)
    var identity = [Scalar](repeating: 0, count: p * p)
    for j in 0..<p { identity[j + j * p] = 1 }
    return try lift(identity, by: a, tau: tau, rows: rows, columns: p, count: p)
}

/// `R` (`p x p`, column-major, zeros below the diagonal) of `A = Q R` for the
/// column-major `rows x p` buffer `a`, which keeps the reflectors (with `tau`).
func householderR<Scalar: BLASScalar>(_ a: inout [Scalar], rows: Int, columns p: Int) throws -> (
    r: [Scalar], tau: [Scalar]
) {
    var tau = [Scalar](repeating: 0, count: p)
    let info = a.withUnsafeMutableBufferPointer { ap in
        tau.withUnsafeMutableBufferPointer {
            Scalar.geqrfColumnMajor(m: rows, n: p, a: ap.baseAddress!, lda: rows, tau: $0.baseAddress!)
        }
    }
    guard info == 0 else { throw EngineError.lapackFailure(routine: "geqrf", info: info) }
    var r = [Scalar](repeating: 0, count: p * p)
    for j in 0..<p { for i in 0...j { r[i + j * p] = a[i + j * rows] } }
    return (r, tau)
}

/// `Q [left; 0]` (column-major `rows x count`): `R`'s left vectors as `A`'s,
/// `Q` from the reflectors in `a` and `tau` (`?ormqr`).
private func lift<Scalar: BLASScalar>(
    _ left: [Scalar], by a: [Scalar], tau: [Scalar], rows: Int, columns p: Int, count: Int
) throws -> [Scalar] {
    var c = [Scalar](repeating: 0, count: rows * count)
    for j in 0..<count { for i in 0..<p { c[i + j * rows] = left[i + j * p] } }
    guard count > 0 else { return c }
    let info = a.withUnsafeBufferPointer { ap in
        tau.withUnsafeBufferPointer { tp in
            c.withUnsafeMutableBufferPointer {
                Scalar.ormqrLeftColumnMajor(
                    m: rows, n: count, k: p, a: ap.baseAddress!, lda: rows, tau: tp.baseAddress!,
                    c: $0.baseAddress!, ldc: rows)
            }
        }
    }
    guard info == 0 else { throw EngineError.lapackFailure(routine: "ormqr", info: info) }
    return c
}
