import Foundation

/// Singular values, and the leading vectors of one side, from the Gram
/// matrix where it resolves them (MATH.md §1: `sigma_i = sqrt(lambda_i(G))`,
/// `G = A^T A` or `A A^T`, whichever is `p x p`, `p = min(M, N)`).
///
/// Forming `G` (`?syrk`, `M p^2` multiply-adds at full BLAS-3 speed) and
/// reducing it to tridiagonal form (`?sytrd`, `4/3 p^3`) costs far less than
/// the SVD's QR (`2 M p^2`) and bidiagonalisation (`8/3 p^3`, half of it
/// matrix-vector products): on one core the values of a `4096 x 25088` matrix
/// in about a third of the time, of a `4096 x 4096` one too.
/// The price is accuracy in the small values. Rounding in `G` and in its
/// eigenvalues moves each `lambda_i` by about `eps lambda_0`, so `sigma_i` by
/// about `eps sigma_0^2 / sigma_i`, against `eps sigma_0` for an SVD. The
/// route therefore serves only where both hold:
///
/// 1. every eigenvalue resolves, `lambda_(p-1) >= sqrt(eps) lambda_0`
///    (`RoundBasis.resolves`, the rule Lawson's rounds use): no `sigma_i` is
///    below `eps^(1/4) sigma_0`, so every error is at most about
///    `eps^(3/4) sigma_0` (`1.8e-12 sigma_0` in `Double`);
/// 2. the caller's `tolerance` (an absolute accuracy relative to `sigma_0`)
///    is at least `eps^(3/4)` (`serves(tolerance:)`). The layer table of a
///    network stored in float32 asks float32's `eps`, the accuracy of an SVD
///    in the weights' own precision.
///
/// Elsewhere the initialiser returns nil and the caller takes the SVD. A
/// Cholesky factorisation of `G - t I`, `t = sqrt(eps) max_i G_ii` (a third
/// of the reduction's operations), tells most unresolved matrices (rank
/// deficient, or nearly) before the reduction is paid for.
struct GramSpectrum<Scalar: BLASScalar> {
    /// The `p` singular values, descending.
    let values: [Scalar]
    private let reduced: GramTridiagonal<Scalar>

    /// Whether a caller asking values to `tolerance` (relative to `sigma_0`)
    /// may receive them from `G`: `tolerance >= eps^(3/4)`.
    static func serves(tolerance: Double) -> Bool {
        tolerance.isFinite && tolerance >= pow(Double(Scalar.ulpOfOne), 0.75)
    }

    /// The spectrum of the column-major `rows x columns` matrix `a`, or nil
    /// where the route does not serve (see the type). `a` is only read.
    init?(columnMajor a: [Scalar], rows: Int, columns: Int, tolerance: Double) throws {
        guard Self.serves(tolerance: tolerance), rows > 0, columns > 0 else { return nil }
        let p = min(rows, columns)
        let g = a.withUnsafeBufferPointer {
            gramMatrix(columnMajor: $0.baseAddress!, rows: rows, columns: columns, leadingDimension: rows)
        }
        guard Self.mayResolve(g, order: p) else { return nil }
        reduced = try GramTridiagonal(g, order: p)
        let eigenvalues = try reduced.eigenvalues()
        guard RoundBasis.resolves(eigenvalues, rank: p, epsilon: Double(Scalar.ulpOfOne)) else { return nil }
        values = eigenvalues.map { Scalar($0.squareRoot()) }
        try checkRepresentable(values)
    }

    /// Whether `G - t I`, `t = sqrt(eps) max_i G_ii <= sqrt(eps) lambda_0`, is
    /// positive definite (`?potrf` on a copy): where it is not, `lambda_min`
    /// is below `sqrt(eps) lambda_0` (to rounding) and the eigenvalues cannot
    /// resolve. False also where `largestDiagonal` refuses the Gram matrix.
    private static func mayResolve(_ g: [Scalar], order p: Int) -> Bool {
        guard let top = largestDiagonal(g, order: p) else { return false }
        let shift = Scalar(Double(Scalar.ulpOfOne).squareRoot()) * top
        var c = g
        for i in 0..<p { c[i * p + i] -= shift }
        return c.withUnsafeMutableBufferPointer { Scalar.potrfLowerColumnMajor(n: p, a: $0.baseAddress!, lda: p) } == 0
    }

    /// The unit eigenvectors of `G` of its `count` largest eigenvalues, the
    /// largest first (`GramTridiagonal.largestVectors`): `A`'s right singular
    /// vectors for a tall (or square) `A` (`G = A^T A`), its left ones for a
    /// wide one.
    func largestVectors(_ count: Int) throws -> [Scalar]? { try reduced.largestVectors(count) }
}

/// The lower triangle of the Gram matrix of the column-major `rows x columns`
/// matrix at `a` (leading dimension `lda`), whichever side is smaller:
/// `A^T A` for `rows >= columns`, else `A A^T`; column-major `p x p`,
/// `p = min(rows, columns)` (`?syrk`).
func gramMatrix<Scalar: BLASScalar>(
    columnMajor a: UnsafePointer<Scalar>, rows: Int, columns: Int, leadingDimension lda: Int
) -> [Scalar] {
    let p = min(rows, columns)
    var g = [Scalar](repeating: 0, count: p * p)
    g.withUnsafeMutableBufferPointer {
        Scalar.syrkLowerColumnMajor(
            trans: rows >= columns, n: p, k: max(rows, columns), a: a, lda: lda, c: $0.baseAddress!, ldc: p)
    }
    return g
}

/// The largest diagonal entry of the column-major `p x p` matrix `g` (a Gram
/// matrix: a lower bound of its largest eigenvalue), nil where the Gram
/// matrix cannot serve: an entry not finite (the products overflowed), or
/// the largest below `tiny / eps^(3/2)` (`tiny` the smallest normal number):
/// there products that fell to subnormal numbers or zero may have moved the
/// entries by more than `eps lambda_0 / sqrt(eps)` would allow (a `W` of
/// singular values near `1e-160`: values off by `0.4 %`).
func largestDiagonal<Scalar: BLASScalar>(_ g: [Scalar], order p: Int) -> Scalar? {
    var top: Scalar = 0
    for i in 0..<p {
        guard g[i * p + i].isFinite else { return nil }
        top = max(top, g[i * p + i])
    }
    let floor = Scalar.leastNormalMagnitude / (Scalar.ulpOfOne * Scalar.ulpOfOne.squareRoot())
    return top >= floor ? top : nil
}

/// `G = Q T Q^T` of a symmetric `p x p` matrix (`?sytrd`, its lower
/// triangle), kept to read every eigenvalue (`?sterf`) and the eigenvectors
/// of the largest (`?stemr` or `?stedc`, `?ormtr`) from one reduction.
struct GramTridiagonal<Scalar: BLASScalar> {
    let order: Int
    /// The reflectors (in the `p x p` buffer), their scalars, `T`.
    private let reflectors: [Scalar]
    private let tau: [Scalar]
    private let diagonal: [Scalar]
    private let offDiagonal: [Scalar]

    /// Reduces the column-major `p x p` matrix `g` (its lower triangle read).
    init(_ g: [Scalar], order p: Int) throws {
        var g = g
        var d = [Scalar](repeating: 0, count: p)
        var e = [Scalar](repeating: 0, count: p)  // p - 1 used; ?stemr's workspace entry at the end
        var tau = [Scalar](repeating: 0, count: max(p - 1, 1))
        let info = g.withUnsafeMutableBufferPointer { gp in
            d.withUnsafeMutableBufferPointer { dp in
                e.withUnsafeMutableBufferPointer { ep in
                    tau.withUnsafeMutableBufferPointer {
                        Scalar.sytrdLowerColumnMajor(
                            n: p, a: gp.baseAddress!, lda: p, d: dp.baseAddress!, e: ep.baseAddress!,
                            tau: $0.baseAddress!)
                    }
                }
            }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "sytrd", info: info) }
        (order, reflectors, self.tau, diagonal, offDiagonal) = (p, g, tau, d, e)
    }

    /// Every eigenvalue of `T` (`?sterf` on copies), descending, in `Double`.
    func eigenvalues() throws -> [Double] {
        var (w, f) = (diagonal, offDiagonal)
        let info = w.withUnsafeMutableBufferPointer { wp in
            f.withUnsafeMutableBufferPointer { Scalar.sterf(n: order, d: wp.baseAddress!, e: $0.baseAddress!) }
        }
        guard info == 0 else { throw EngineError.lapackFailure(routine: "sterf", info: info) }
        return w.reversed().map { Double($0) }
    }

    /// The unit eigenvectors of `G` of its `count` largest eigenvalues
    /// (eigenvectors of `T` lifted by `?ormtr`), as the columns of a
    /// column-major `p x count` buffer, the largest first. `T`'s eigenvectors
    /// come from MRRR (`?stemr`, the `count` wanted) where `count` is at most
    /// `p / divideAndConquerFraction`, else from divide and conquer (`?stedc`,
    /// all `p`, the last `count` kept): MRRR's work grows with `count` and
    /// divide and conquer's does not (on `832 x 832` tridiagonals 85 ms
    /// against 42 ms for half the vectors, 29 ms against 57 ms for an
    /// eighth). Nil where the solver fails (`info > 0`), returns another
    /// count or a non-finite entry.
    func largestVectors(_ count: Int) throws -> [Scalar]? {
        let p = order
        guard count > 0 else { return [] }
        precondition(count <= p, "more vectors than the order")
        let divideAndConquer = count * GramTridiagonal.divideAndConquerFraction > p
        guard var z = divideAndConquer ? allVectors(keeping: count) : mrrr(count) else { return nil }
        let lifted = reflectors.withUnsafeBufferPointer { ap in
            tau.withUnsafeBufferPointer { tp in
                z.withUnsafeMutableBufferPointer {
                    Scalar.ormtrLowerColumnMajor(
                        m: p, n: count, a: ap.baseAddress!, lda: p, tau: tp.baseAddress!, c: $0.baseAddress!, ldc: p)
                }
            }
        }
        guard lifted == 0 else { throw EngineError.lapackFailure(routine: "ormtr", info: lifted) }
        // ascending from either solver: the largest last
        var out = [Scalar](repeating: 0, count: p * count)
        for j in 0..<count { for i in 0..<p { out[i + j * p] = z[i + (count - 1 - j) * p] } }
        return out
    }

    /// From `count > p / divideAndConquerFraction` on, `T`'s wanted
    /// eigenvectors come from divide and conquer (`largestVectors`).
    static var divideAndConquerFraction: Int { 4 }

    /// `T`'s eigenvectors of its `count` largest eigenvalues, ascending, by
    /// `?stemr` on copies of `T`; nil where it fails (`info > 0`: MRRR's
    /// representation tree did not converge, as `?stemr` documents it may),
    /// returns another count or a non-finite entry.
    private func mrrr(_ count: Int) -> [Scalar]? {
        let p = order
        var (d, e) = (diagonal, offDiagonal)
        var w = [Scalar](repeating: 0, count: p)
        var z = [Scalar](repeating: 0, count: p * count)
        var found: Int32 = 0
        let info = d.withUnsafeMutableBufferPointer { dp in
            e.withUnsafeMutableBufferPointer { ep in
                w.withUnsafeMutableBufferPointer { wp in
                    z.withUnsafeMutableBufferPointer {
                        Scalar.stemrLargest(
                            n: p, count: count, d: dp.baseAddress!, e: ep.baseAddress!, w: wp.baseAddress!,
                            z: $0.baseAddress!, found: &found)
                    }
                }
            }
        }
        guard info == 0, Int(found) == count, z.allSatisfy(\.isFinite) else { return nil }
        return z
    }

    /// `T`'s eigenvectors of its `count` largest eigenvalues, ascending: the
    /// last `count` of all `p` from `?stedc` on copies of `T`; nil where it
    /// fails (`info > 0`) or an entry is not finite.
    private func allVectors(keeping count: Int) -> [Scalar]? {
        let p = order
        var (d, e) = (diagonal, offDiagonal)
        var z = [Scalar](repeating: 0, count: p * p)
        let info = d.withUnsafeMutableBufferPointer { dp in
            e.withUnsafeMutableBufferPointer { ep in
                z.withUnsafeMutableBufferPointer {
                    Scalar.stedc(n: p, d: dp.baseAddress!, e: ep.baseAddress!, z: $0.baseAddress!)
                }
            }
        }
        guard info == 0 else { return nil }
        let kept = Array(z[((p - count) * p)...])
        return kept.allSatisfy(\.isFinite) ? kept : nil
    }
}
