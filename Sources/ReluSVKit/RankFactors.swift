/// A rank-`<= k` matrix `L = U V` kept as its factors: `u` is `m x k` and `v`
/// is `k x n`, both row-major. Rank 0 is the zero matrix.
public struct RankFactors<Scalar: BLASScalar> {
    public let k: Int
    public let m: Int
    public let n: Int
    public var u: [Scalar]
    public var v: [Scalar]

    public init(k: Int, m: Int, n: Int, u: [Scalar], v: [Scalar]) {
        precondition(u.count == m * k && v.count == k * n, "factor sizes do not match the rank")
        self.k = k
        self.m = m
        self.n = n
        self.u = u
        self.v = v
    }

    /// The balanced factors of the truncated SVD `W_k` (MATH.md §3):
    /// `U = U_k Sigma_k^(1/2)`, `V = Sigma_k^(1/2) V_k^T`.
    public init(truncating svd: ThinSVD<Scalar>, rank k: Int) {
        self.init(k: 0, m: svd.u.rows, n: svd.vt.columns, u: [], v: [])
        self = extended(by: svd, pairs: 0..<k)
    }

    /// `L + sum_{j in pairs} sigma_j u_j v_j^T`, of rank `<= k + pairs.count`,
    /// with each new pair split as `sqrt(sigma_j)` on both sides.
    public func extended(by svd: ThinSVD<Scalar>, pairs: Range<Int>) -> RankFactors {
        let add = pairs.count, k2 = k + add
        var u2 = [Scalar](repeating: 0, count: m * k2)
        for i in 0..<m {
            for r in 0..<k { u2[i * k2 + r] = u[i * k + r] }
            for (c, j) in pairs.enumerated() { u2[i * k2 + k + c] = svd.u[i, j] * svd.s[j].squareRoot() }
        }
        var v2 = v
        v2.reserveCapacity(k2 * n)
        for j in pairs {
            let root = svd.s[j].squareRoot()
            for c in 0..<n { v2.append(svd.vt[j, c] * root) }
        }
        return RankFactors(k: k2, m: m, n: n, u: u2, v: v2)
    }

    /// Calls `body` with pointers to `u` and `v` (valid also when `k = 0`).
    func withPointers<R>(_ body: (UnsafePointer<Scalar>, UnsafePointer<Scalar>) throws -> R) rethrows -> R {
        let dummy: [Scalar] = [0]
        return try (u.isEmpty ? dummy : u).withUnsafeBufferPointer { up in
            try (v.isEmpty ? dummy : v).withUnsafeBufferPointer { vp in try body(up.baseAddress!, vp.baseAddress!) }
        }
    }
}
