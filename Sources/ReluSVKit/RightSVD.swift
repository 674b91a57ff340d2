/// The singular values and right singular vectors of a data matrix, without
/// its left factor (MATH.md §3: the data-aware candidates need `Sigma` and
/// `V` of `X W^T` and of `X`, never the `N x n` left factor).
///
/// On an `N x n` matrix with `n <= N < INT(11 n / 6)` (`?gesdd`'s threshold
/// for a QR first), LAPACK's `?gesdd` with `jobz = "S"` bidiagonalises it
/// (`A = Q B P^T`, `?gebrd`), solves the bidiagonal SVD by divide and
/// conquer (`?bdsdc`), then applies `Q` to the bidiagonal's left vectors
/// and `P` to its right vectors (`?ormbr`). `rightSVD(of:)` runs the same
/// steps with the same workspace (its size sets LAPACK's blocking) but
/// without the back-transformation of the left vectors (about a third of the
/// work of a square matrix), so its `s` and `vt` are those `?gesdd` returns,
/// bit for bit (`RightSVDTests`). A tall matrix (`N >= 2 n`) is first
/// reduced by a Householder QR (`A = Q_0 R`: `A` and `R` share `Sigma` and
/// `V`), then `R` takes the same steps.

/// The singular values and right singular vectors of `w` (`N x n`), `u`
/// empty (`0 x p`) for `N >= n`: the bidiagonal steps above where they give
/// `?gesdd`'s bits, else `?gesdd` itself (`INT(11 n / 6) <= N < 2 n`, where
/// it runs its own QR, and entries it would rescale). A wide `w` (`N < n`,
/// whose `V` is the larger factor) gets the whole `?gesdd`, `u` included. A
/// data matrix: always one dense SVD (the independent blocks of
/// `thinSVD(of:)` are a weight's structure).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
func rightSVD<Scalar: BLASScalar>(of w: MatrixView<Scalar>) throws -> ThinSVD<Scalar> {
    let rows = w.rows
    let n = w.columns
    var a = try copyChecked(w)
    if rows >= 2 * n {
        var r = try triangularFactor(&a, rows: rows, columns: n)
        return try bidiagonalRightSVD(&r, rows: n, columns: n) ?? rightOfDense(&r, rows: n, columns: n)
    }
    guard rows >= n else { return try denseThinSVD(&a, rows: rows, columns: n) }
    guard rows < gesddQRThreshold(columns: n) else { return try rightOfDense(&a, rows: rows, columns: n) }
    return try bidiagonalRightSVD(&a, rows: rows, columns: n) ?? rightOfDense(&a, rows: rows, columns: n)
}

/// `?gesdd`'s `s` and `vt` of the row-major `m x n` buffer `a` (overwritten), `u` left out.
private func rightOfDense<Scalar: BLASScalar>(_ a: inout [Scalar], rows m: Int, columns n: Int) throws
    -> ThinSVD<Scalar>
{
    let f = try denseThinSVD(&a, rows: m, columns: n)
    return ThinSVD(u: Matrix(rows: 0, columns: n, storage: []), s: f.s, vt: f.vt)
}

/// Whether every entry is finite and the largest magnitude lies where
/// `?gesdd` does not rescale the matrix first (zero, or within
/// `[sqrt(tiny) / eps, eps / sqrt(tiny)]`).
func withinUnscaledRange<Scalar: BLASScalar>(_ a: [Scalar]) -> Bool {
    let small = Scalar.leastNormalMagnitude.squareRoot() / Scalar.ulpOfOne
    guard a.allSatisfy(\.isFinite) else { return false }
    let largest = a.reduce(Scalar.zero) { max($0, abs($1)) }
    return largest == 0 || (largest >= small && largest <= 1 / small)
}

/// `?gesdd`'s threshold: an `N x n` matrix with `N >= INT(11 n / 6)` is
/// first reduced by its own Householder QR (`dgesdd` computes it in double,
/// `sgesdd` in single precision: the same integer for `n` below about 10^6).
func gesddQRThreshold(columns n: Int) -> Int { Int(Double(n) * 11.0 / 6.0) }

/// The `n x n` upper triangular `R` (row-major) of a Householder QR
/// `a = Q R` of the row-major `rows x n` buffer `a` (overwritten), `rows >= n`.
private func triangularFactor<Scalar: BLASScalar>(_ a: inout [Scalar], rows: Int, columns n: Int) throws -> [Scalar] {
    var tau = [Scalar](repeating: 0, count: n)
    let info = a.withUnsafeMutableBufferPointer { ap in
        tau.withUnsafeMutableBufferPointer {
            Scalar.geqrf(m: rows, n: n, a: ap.baseAddress!, lda: n, tau: $0.baseAddress!)
        }
    }
    guard info == 0 else { throw EngineError.lapackFailure(routine: "geqrf", info: info) }
    var r = [Scalar](repeating: 0, count: n * n)
    for i in 0..<n { for j in i..<n { r[i * n + j] = a[i * n + j] } }
    return r
}

/// `s` and `vt` of the row-major `m x n` buffer `a` (overwritten),
/// `n <= m < INT(11 n / 6)`, by `?gesdd`'s bidiagonal path without the left
/// factor: `?gebrd`, `?bdsdc`, and `P` applied to the bidiagonal's right
/// vectors, all three with the workspace `?gesdd` gives them (its own query,
/// less the `3 n` of `e`, `tauq` and `taup`; it holds `?bdsdc`'s
/// `3 n^2 + 4 n`). Nil, `a` untouched, where `?gesdd` would take another
/// path: a largest entry it rescales first (outside
/// `[sqrt(tiny) / eps, eps / sqrt(tiny)]`), a non-finite entry (an `R` whose
/// QR overflowed), or a workspace query that fails.
func bidiagonalRightSVD<Scalar: BLASScalar>(_ a: inout [Scalar], rows m: Int, columns n: Int) throws
    -> ThinSVD<Scalar>?
{
    guard withinUnscaledRange(a), let query = Scalar.gesddWorkspace(m: m, n: n),
        query - 3 * n >= max(m, 3 * n * n + 4 * n)
    else { return nil }
    let lwork = query - 3 * n
    var work = [Scalar](repeating: 0, count: lwork)
    var iwork = [Int32](repeating: 0, count: 8 * n)
    var d = [Scalar](repeating: 0, count: n)
    var e = [Scalar](repeating: 0, count: n)
    var tauq = [Scalar](repeating: 0, count: n)
    var taup = [Scalar](repeating: 0, count: n)
    var ub = [Scalar](repeating: 0, count: n * n)
    var vt = [Scalar](repeating: 0, count: n * n)
    let (reduce, solve, back) = a.withUnsafeMutableBufferPointer { ap in
        d.withUnsafeMutableBufferPointer { dp in
            e.withUnsafeMutableBufferPointer { ep in
                taup.withUnsafeMutableBufferPointer { pp in
                    vt.withUnsafeMutableBufferPointer { vp in
                        work.withUnsafeMutableBufferPointer { wp in
                            let reduce = tauq.withUnsafeMutableBufferPointer {
                                Scalar.gebrd(
                                    m: m, n: n, a: ap.baseAddress!, lda: n, d: dp.baseAddress!,
                                    e: ep.baseAddress!, tauq: $0.baseAddress!, taup: pp.baseAddress!,
                                    work: wp.baseAddress!, lwork: lwork)
                            }
                            guard reduce == 0 else { return (reduce, Int32(0), Int32(0)) }
                            let solve = ub.withUnsafeMutableBufferPointer { up in
                                iwork.withUnsafeMutableBufferPointer {
                                    Scalar.bdsdc(
                                        n: n, d: dp.baseAddress!, e: ep.baseAddress!, u: up.baseAddress!, ldu: n,
                                        vt: vp.baseAddress!, ldvt: n, work: wp.baseAddress!, iwork: $0.baseAddress!)
                                }
                            }
                            guard solve == 0 else { return (reduce, solve, Int32(0)) }
                            let back = Scalar.ormbrRightPT(
                                m: n, n: n, k: n, a: ap.baseAddress!, lda: n, taup: pp.baseAddress!,
                                c: vp.baseAddress!, ldc: n, work: wp.baseAddress!, lwork: lwork)
                            return (reduce, solve, back)
                        }
                    }
                }
            }
        }
    }
    guard reduce == 0 else { throw EngineError.lapackFailure(routine: "gebrd", info: reduce) }
    guard solve == 0 else { throw EngineError.lapackFailure(routine: "bdsdc", info: solve) }
    guard back == 0 else { throw EngineError.lapackFailure(routine: "ormbr", info: back) }
    try checkRepresentable(d)
    return ThinSVD(u: Matrix(rows: 0, columns: n, storage: []), s: d, vt: Matrix(rows: n, columns: n, storage: vt))
}
